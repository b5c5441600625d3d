"""Parallel stages (issue 7): independent stages overlap in time, bounded by the CPU count,
and the plain progress output stays readable when their steps interleave."""

from __future__ import annotations

import io

import pytest

from nbcontainer.cli.render import PlainRenderer
from nbcontainer.errors import BuildError
from nbcontainer.progress import Collector, ProgressEvent

from .conftest import needs_root

_TWO = ("FROM busybox AS a\nRUN sleep {s} && echo a > /a\n"
        "FROM busybox AS b\nRUN sleep {s} && echo b > /b\n"
        "FROM busybox\nCOPY --from=a /a /a\nCOPY --from=b /b /b\n")


def _intervals(events: Collector) -> dict[str, tuple[float, float]]:
    """RUN step title → (start, end) from the progress events' timestamps."""
    starts = {e.id: (e.text, e.timestamp) for e in events.kinds("start")}
    out = {}
    for e in events.events:
        if e.kind == "done" and "RUN" in starts[e.id][0]:
            out[starts[e.id][0]] = (starts[e.id][1], e.timestamp)
    return out


@needs_root
def test_independent_stages_overlap(do_build, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("nbcontainer.builder.solver.os.cpu_count", lambda: 2)  # any CI host
    events = Collector()
    do_build(_TWO.format(s=2), no_cache=True, progress=events)
    spans = _intervals(events)
    assert len(spans) == 2, spans
    (s1, e1), (s2, e2) = spans.values()
    assert max(s1, s2) < min(e1, e2), spans  # the two RUN steps ran at the same time


@needs_root
def test_stages_are_bounded_by_cpu_count(do_build, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("nbcontainer.builder.solver.os.cpu_count", lambda: 1)
    events = Collector()
    do_build(_TWO.format(s=0.2), no_cache=True, progress=events)
    (s1, e1), (s2, e2) = sorted(_intervals(events).values())
    assert e1 <= s2  # one worker: one stage after the other


@needs_root
def test_failed_stage_fails_the_build_with_its_line(do_build) -> None:
    df = ("FROM busybox AS a\nRUN exit 3\nFROM busybox AS b\nRUN sleep 0.3\n"
          "FROM busybox\nCOPY --from=a / /a\nCOPY --from=b / /b\n")
    with pytest.raises(BuildError, match="Dockerfile:2"):
        do_build(df, no_cache=True)


def test_plain_output_interleaves_readably() -> None:
    out = io.StringIO()
    render = PlainRenderer(out)
    for kind, ident, msg in [("start", "#2", "[a 2/2] RUN x"), ("start", "#3", "[b 2/2] RUN y"),
                             ("log", "#2", "one"), ("log", "#3", "two"),
                             ("done", "#2", "DONE 2.0s"), ("done", "#3", "DONE 2.0s")]:
        render(ProgressEvent(kind, ident, msg))
    lines = out.getvalue().splitlines()
    assert all(line.startswith(("#2 ", "#3 ")) for line in lines if line), lines
    blocks = [b.splitlines() for b in out.getvalue().strip().split("\n\n")]
    # every block that shows output starts with its step's title
    for block in blocks:
        assert block[0] in ("#2 [a 2/2] RUN x", "#3 [b 2/2] RUN y"), blocks
    two = next(b for b in blocks if b[-1].endswith(" two"))
    assert two[0] == "#3 [b 2/2] RUN y" and two[-1].startswith("#3 "), blocks

"""Where things are in the Dockerfile: the lines each history entry records (and what reads
them back), the step count announced before a build, BuildKit's excerpt under a failed
step, and a missing COPY source named with the context folder and close matches."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbcontainer.analysis import Source
from nbcontainer.errors import BuildError
from nbcontainer.progress import Collector, Kind
from tests.support.builds import write
from tests.support.marks import needs_root

pytestmark = needs_root


def test_each_layer_knows_its_dockerfile_lines(do_build, ctx: Path) -> None:
    write(ctx, {"a.txt": "a\n"})
    img = do_build("FROM busybox AS base\nRUN echo one > /one\n\n"
                   "FROM base\n# a comment\nCOPY a.txt /a/\nRUN echo two \\\n  > /two\n")
    tree = img.tree()
    assert [lt.source for lt in tree.layers[1:]] == [
        Source("Dockerfile", 2, 2),  # from the base stage, the same Dockerfile
        Source("Dockerfile", 6, 6), Source("Dockerfile", 7, 8)]
    assert tree.layers[0].source is None  # busybox: a base image
    assert tree.insight.own_from == 1
    # an image built FROM this one: its layers are its base's, without their lines
    child = do_build(f"FROM {img.id}\nRUN echo three > /three\n")
    child_tree = child.tree()
    assert [lt.source for lt in child_tree.layers] == [None, None, None, None,
                                                       Source("Dockerfile", 2, 2)]
    assert child_tree.insight.own_from == 4


def test_moving_an_instruction_keeps_the_cache(do_build, ctx: Path) -> None:
    first = Collector()
    do_build("FROM busybox\nRUN echo x > /x\n", progress=first)
    again = Collector()
    img = do_build("FROM busybox\n\n# moved down\nRUN echo x > /x\n", progress=again)
    assert [e.text for e in again.kinds(Kind.CACHED)] == ["RUN /bin/sh -c echo x > /x"]
    assert img.tree().layers[-1].source == Source("Dockerfile", 4, 4)


def test_the_step_count_is_known_before_the_first_step(do_build, ctx: Path) -> None:
    progress = Collector()
    write(ctx, {"a": "1"})
    do_build("FROM busybox AS one\nRUN true\n\nFROM busybox\nCOPY --from=one /bin/sh /x\n"
             "COPY a /a\nWORKDIR /w\nENV X=1\n", progress=progress)
    plan = progress.kinds(Kind.PLAN)
    assert len(plan) == 1 and plan[0].total == 6  # 2 FROMs, RUN, 2 COPYs, WORKDIR
    assert progress.events.index(plan[0]) < progress.events.index(progress.kinds(Kind.START)[0])
    numbered = {e.id for e in progress.events if e.kind == Kind.START and e.step is not None}
    assert len(numbered) == 6


def test_a_failed_run_shows_the_dockerfile_excerpt(do_build) -> None:
    with pytest.raises(BuildError) as e:
        do_build("FROM busybox\nRUN true\nRUN echo boom && \\\n    exit 3\nRUN true\n")
    exc = e.value
    assert exc.message.startswith("Dockerfile:3: RUN: process")
    assert exc.excerpt is not None and (exc.excerpt.start, exc.excerpt.end) == (3, 4)
    assert exc.excerpt.render() == [
        "Dockerfile:3", "-" * 20,
        "   2 |     RUN true",
        "   3 | >>> RUN echo boom && \\",
        "   4 | >>>     exit 3",
        "   5 |     RUN true",
        "-" * 20]
    assert "\n   3 | >>> RUN echo boom" in str(exc)  # the CLI and the notebook print it
    assert "last 1 line of output" in exc.message  # one line: singular


def test_a_missing_copy_source_names_the_context_and_close_matches(do_build, ctx: Path
                                                                   ) -> None:
    write(ctx, {"my-app.py": "print(1)\n", "data/train.csv": "x\n", "secret.txt": "s\n",
                ".dockerignore": "secret.txt\n"})
    with pytest.raises(BuildError) as e:
        do_build("FROM busybox\nCOPY my-ap.py /app/\n")
    assert f"not found in the build context ({ctx.resolve()})" in e.value.message
    assert e.value.hint == "did you mean my-app.py?"
    assert e.value.excerpt is not None and e.value.excerpt.start == 2
    with pytest.raises(BuildError) as e:
        do_build("FROM busybox\nCOPY data/trian.csv /app/\n")
    assert e.value.hint == "did you mean data/train.csv?"
    with pytest.raises(BuildError) as e:
        do_build("FROM busybox\nCOPY secret.txt /app/\n")
    assert e.value.hint == "secret.txt is there but .dockerignore excludes it"
    with pytest.raises(BuildError) as e:
        do_build("FROM busybox\nCOPY nothing-like-it /app/\n")
    assert "relative to the build context; the context holds" in (e.value.hint or "")

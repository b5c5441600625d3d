"""Builds on each rung of the isolation ladder, as root here (``--isolation`` forces the rung):
the same Dockerfile gives the same files and owners on the full, reduced (tree copies with a
user namespace mapping root's own ids) and ptrace rungs; on the ptrace and none rungs every
non-RUN step runs in-process and ownership comes from the plan and the layer records; a
fully cached build never probes; the rung is named once per build."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbcontainer import api
from nbcontainer.errors import BuildError
from nbcontainer.progress import Collector, Kind
from nbcontainer.sandbox import probe as probe_module
from nbcontainer.store import Store
from tests.support.builds import write
from tests.support.marks import needs_root_busybox

pytestmark = needs_root_busybox

DOCKERFILE = """\
FROM busybox AS files
COPY --chown=1000:2000 app.sh /src/app.sh
RUN mkdir -p /src/data && echo data > /src/data/f && chown -R 1000:1000 /src/data

FROM busybox
COPY --from=files /src /app
COPY --chown=1000:2000 app.sh /opt/app.sh
RUN echo ran > /ran && rm /bin/vi && mkdir /made
ENV MODE=test
"""


def owners(img) -> dict[str, tuple[int, int, str]]:
    return {e.path: (e.uid, e.gid, e.kind) for layer in img.layers[1:]
            for e in layer.entries()}


def build(store: Store, ctx: Path, isolation: str, events: Collector | None = None):
    return api.build(DOCKERFILE, ctx, tags=[f"ladder:{isolation}"], store=store,
                     isolation=isolation, progress=events)


@pytest.mark.parametrize("isolation", ["full", "reduced", "ptrace"])
def test_same_image_content_on_every_rung(bstore: Store, tmp_path: Path,
                                          isolation: str) -> None:
    ctx = tmp_path / "ctx"
    write(ctx, {"app.sh": "echo app\n"})
    events = Collector()
    img = build(bstore, ctx, isolation, events)
    got = owners(img)
    assert got["opt/app.sh"][:2] == (1000, 2000)
    assert got["app/app.sh"][:2] == (1000, 2000)  # COPY --from keeps the source's owners
    assert got["ran"][:2] == (0, 0) and got["made"][2] == "d"
    assert "bin/.wh.vi" in got
    lines = [e.text for e in events.events if e.kind in (Kind.INFO, Kind.WARNING)
             and e.text.startswith("isolation: ")]
    assert len(lines) == 1 and isolation in lines[0] or (
        isolation == "full" and "full namespaces" in lines[0])
    if isolation != "ptrace":  # ptrace fakes chown: RUN's ownership is not recorded
        assert got["app/data/f"][:2] == (1000, 1000)


def test_none_rung_builds_without_run_and_names_why(bstore: Store, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = tmp_path / "ctx"
    write(ctx, {"app.sh": "echo app\n"})
    monkeypatch.setenv("NBCONTAINER_ISOLATION", "none")
    img = api.build("FROM busybox\nCOPY --chown=7:8 app.sh /app.sh\nENV A=1\n", ctx,
                    tags=["norun:1"], store=bstore)
    assert owners(img)["app.sh"][:2] == (7, 8)
    with pytest.raises(BuildError, match="--isolation none was requested"):
        api.build("FROM busybox\nRUN true\n", ctx, tags=["run:1"], store=bstore)
    assert "docker.io/library/run:1" not in bstore.refs.read().tags
    assert api.fsck(store=bstore).ok


def test_cached_build_never_probes(bstore: Store, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = tmp_path / "ctx"
    write(ctx, {"app.sh": "echo app\n"})
    build(bstore, ctx, "full")
    calls = []
    real = probe_module._run
    monkeypatch.setattr(probe_module, "_run", lambda *a: calls.append(a) or real(*a))
    probe_module._cache.clear()
    events = Collector()
    build(bstore, ctx, "full", events)
    assert calls == []
    assert not [e for e in events.events if e.text.startswith("isolation: ")]


def test_run_a_container_on_the_ptrace_rung(bstore: Store) -> None:
    out: list[bytes] = []
    code = api.run("busybox", ["sh", "-c", "echo hello from $(cat /etc/hostname | wc -c); "
                               "exit 4"], store=bstore, output=out.append, isolation="ptrace")
    assert code == 4 and b"hello from" in b"".join(out)


CHAIN = """\
FROM busybox AS base
RUN echo one > /one && mkdir /d && echo x > /d/x
RUN true
RUN echo two > /two && rm /one && rm -r /d
RUN true

FROM busybox
COPY --from=base /two /copied
RUN cat /copied > /from-base
"""


@pytest.mark.parametrize("isolation", ["reduced", "ptrace"])
def test_tree_copies_hand_trees_on_and_match_the_full_rung(bstore: Store, tmp_path: Path,
                                                           isolation: str) -> None:
    """Consecutive RUNs take the tree the previous one published (or left unchanged) instead
    of a copy; a stage read later (COPY --from) is extracted again; the files are the same
    as on the full rung."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    full = api.build(CHAIN, ctx, tags=["chain:full"], store=bstore, isolation="full")
    other = api.build(CHAIN, ctx, tags=[f"chain:{isolation}"], store=bstore,
                      isolation=isolation, no_cache=True)

    def files(img) -> dict[str, tuple[str, int]]:
        return {p: (e.kind, e.size) for p, e in img.files().items()}

    assert files(other) == files(full)
    assert {"copied", "from-base"} <= set(files(other)) and "one" not in files(other)
    leftovers = [p for snaps in (bstore.home / "build").glob("snapshots-*")
                 for p in (snaps / "tmp").iterdir()
                 if p.name.startswith(("take-", "spare-"))] if (bstore.home / "build").is_dir() \
        else []
    assert leftovers == []

"""COPY/ADD flags of issue 7: --exclude (repeatable, COPY from the context or a stage, ADD)."""

from __future__ import annotations

import os
from pathlib import Path

from tests.support.builds import flatten, tree, write
from tests.support.marks import needs_root

pytestmark = needs_root


def test_exclude_is_repeatable_for_copy_and_add(do_build, ctx: Path, tmp_path: Path) -> None:
    write(ctx, {"app/a.py": "a", "app/b.log": "b", "app/sub/c.tmp": "c", "app/sub/d.py": "d"})
    img = do_build(
        "FROM busybox AS s\nRUN mkdir -p /src && touch /src/keep /src/drop.log\n"
        "FROM busybox\n"
        "COPY --exclude=*.log --exclude=**/*.tmp app /ctx/\n"
        "ADD --exclude=sub app /add/\n"
        "COPY --from=s --exclude=*.log /src /stage/\n")
    flat = flatten(img, tmp_path / "f")
    assert sorted(p.name for p in (flat / "ctx").rglob("*")) == ["a.py", "d.py", "sub"]
    assert sorted(p.name for p in (flat / "add").rglob("*")) == ["a.py", "b.log"]
    assert sorted(p.name for p in (flat / "stage").iterdir()) == ["keep"]


def test_exclude_changes_the_cache_key(do_build, ctx: Path) -> None:
    write(ctx, {"d/x": "x", "d/y": "y"})
    one = do_build("FROM busybox\nCOPY --exclude=x d /d/\n")
    two = do_build("FROM busybox\nCOPY --exclude=y d /d/\n")
    assert one.id != two.id


# ---------------------------------------------------------------------- --link

_LINK_DF = ("FROM busybox AS base\nARG V\nRUN echo $V > /v && mkdir -p /etc && "
            "echo 'app:x:1234:4321::/:/bin/sh' > /etc/passwd\n"
            "FROM base\nCOPY --link --chown=app app /opt/app/\nADD --link a.tar /unpacked/\n"
            "RUN test -f /v && test -f /opt/app/a.py\n")


def _link_ctx(ctx: Path) -> None:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("pkg/f")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"z"))
    write(ctx, {"app/a.py": "a", "app/sub/b.py": "b", "a.tar": buf.getvalue()})


def test_link_layer_survives_a_changed_base(do_build, ctx: Path) -> None:
    from nbcontainer.progress import Collector
    from nbcontainer.wording import step_title

    _link_ctx(ctx)
    one = do_build(_LINK_DF, build_args={"V": "1"})
    events = Collector()
    two = do_build(_LINK_DF, build_args={"V": "2"}, progress=events)
    l1, l2 = one.manifest.layers, two.manifest.layers
    # layers: busybox, the base's RUN, COPY --link, ADD --link (the last RUN adds none)
    assert len(l1) == len(l2) == 4
    assert l1[1] != l2[1]  # the base's RUN layer changed ...
    assert l1[2:] == l2[2:]  # ... the linked layers did not
    starts = {e.id: step_title(e) for e in events.kinds("start")}
    cached = [starts[e.id] for e in events.kinds("cached")]
    assert any("COPY --chown=app app /opt/app/" in c for c in cached), cached
    assert any("ADD a.tar /unpacked/" in c for c in cached), cached


def test_link_layer_holds_only_its_files(do_build, ctx: Path, tmp_path: Path) -> None:
    import tarfile

    _link_ctx(ctx)
    img = do_build(_LINK_DF, build_args={"V": "1"})
    with tarfile.open(img.store.blobs.path(img.manifest.layers[2].digest)) as tar:
        got = {m.name.rstrip("/"): (m.type, m.mode, m.uid, m.gid) for m in tar.getmembers()}
    # the destination's parents are created in the layer (0755, the --chown owner), nothing
    # comes from the base; a user name alone gives gid = uid (Docker's documented rule)
    assert got["opt"] == (tarfile.DIRTYPE, 0o755, 1234, 1234)
    assert got["opt/app"][2:] == (1234, 1234)  # --chown name resolved in the target image
    assert got["opt/app/sub/b.py"][2:] == (1234, 1234)
    assert sorted(got) == ["opt", "opt/app", "opt/app/a.py", "opt/app/sub", "opt/app/sub/b.py"]
    t = tree(flatten(img, tmp_path / "f"))
    assert t["unpacked/pkg/f"][5] == b"z" and t["v"][5] == b"1\n"


def test_link_without_cache_is_reproducible_across_bases(do_build, ctx: Path) -> None:
    _link_ctx(ctx)
    args = {"SOURCE_DATE_EPOCH": "1700000000"}
    one = do_build(_LINK_DF, build_args={**args, "V": "1"}, no_cache=True)
    two = do_build(_LINK_DF, build_args={**args, "V": "2"}, no_cache=True)
    assert one.manifest.layers[2:] == two.manifest.layers[2:]
    assert one.manifest.layers[1] != two.manifest.layers[1]


def test_copy_keeps_hard_links(do_build, ctx: Path) -> None:
    """Two names of one file in the context stay one file in the layer (BuildKit's rule),
    and whether they are linked is part of the COPY's cache key."""
    from tests.support.builds import layer_members

    write(ctx, {"d/a": "same\n", "d/c": "other\n"})
    os.link(ctx / "d/a", ctx / "d/b")
    img = do_build("FROM busybox\nCOPY d /d\n")
    top = [m for m, _ in layer_members(img) if m.name.startswith("d/")]
    links = {m.name: m.linkname for m in top if m.islnk()}
    assert links in ({"d/b": "d/a"}, {"d/a": "d/b"}), links
    assert {m.name for m in top} == {"d/a", "d/b", "d/c"}
    (ctx / "d/b").unlink()
    (ctx / "d/b").write_text("same\n")  # same bytes, no longer the same file
    again = do_build("FROM busybox\nCOPY d /d\n")
    assert again.digest != img.digest
    assert not [m for m, _ in layer_members(again) if m.islnk()]

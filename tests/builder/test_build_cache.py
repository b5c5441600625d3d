"""Cache behaviour, reproducibility with SOURCE_DATE_EPOCH, and secrets."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from nbcontainer import api
from nbcontainer.api import build
from nbcontainer.builder.sources import context as ctxmod
from nbcontainer.progress import Collector
from nbcontainer.store import Store

from .conftest import needs_root, write

pytestmark = needs_root

DF = ("FROM busybox\nCOPY a.txt /a.txt\nRUN cat /a.txt > /copy\nCOPY b.txt /b.txt\n"
      "RUN echo done\n")


def statuses(events: Collector) -> list[str]:
    """'run'/'cached' per numbered step after FROM."""
    out = {}
    for e in events.events:
        if e.kind == "cached":
            out[e.id] = "cached"
        elif e.kind == "done" and e.id not in out:
            out[e.id] = "run"
    return [v for k, v in sorted(out.items(), key=lambda kv: int(kv[0][1:]))][1:]


def test_unchanged_rebuild_same_digest_and_touch(do_build, ctx: Path) -> None:
    write(ctx, {"a.txt": "aaaa", "b.txt": "bbbb"})
    first = do_build(DF)
    ev = Collector()
    again = do_build(DF, progress=ev)
    assert statuses(ev) == ["cached"] * 4
    assert again.digest == first.digest
    os.utime(ctx / "a.txt")  # touched, same content: still cached
    (ctx / "b.txt").write_text("bbbb")  # rewritten with the same bytes: still cached
    ev = Collector()
    assert do_build(DF, progress=ev).digest == first.digest
    assert statuses(ev) == ["cached"] * 4


def test_same_size_same_second_change_misses_from_first_use(do_build, ctx: Path,
                                                            monkeypatch) -> None:
    write(ctx, {"a.txt": "aaaa", "b.txt": "bbbb"})
    first = do_build(DF)
    # rewrite b.txt within the same second, same size, then restore its mtime exactly
    st = os.stat(ctx / "b.txt")
    (ctx / "b.txt").write_text("bbbc")
    os.utime(ctx / "b.txt", ns=(st.st_atime_ns, st.st_mtime_ns))
    ev = Collector()
    changed = do_build(DF, progress=ev)
    assert statuses(ev) == ["cached", "cached", "run", "run"]
    assert changed.digest != first.digest


def test_stat_cache_skips_rereads_but_ctime_and_inode_catch_rewrites(tmp_path: Path,
                                                                     monkeypatch) -> None:
    monkeypatch.setattr(ctxmod, "RACY_NS", -10**18)  # remember even brand-new files
    f = tmp_path / "f"
    f.write_text("1234")
    cache = ctxmod.StatCache(tmp_path / "sc.json")
    d1 = cache.digest(f, os.stat(f))
    assert cache.digest(f, os.stat(f)) == d1 and cache.hashed == 1
    st = os.stat(f)
    f.write_text("5678")  # same size; put the mtime back: only ctime tells
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert cache.digest(f, os.stat(f)) != d1 and cache.hashed == 2
    cache.save()
    again = ctxmod.StatCache(tmp_path / "sc.json")
    again.digest(f, os.stat(f))
    assert again.hashed == 0  # persisted across builds


def test_racy_entries_are_not_trusted(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_text("x")
    cache = ctxmod.StatCache(None)
    cache.digest(f, os.stat(f))
    cache.digest(f, os.stat(f))
    assert cache.hashed == 2  # a file changed just now is re-read every time


def test_no_cache_and_build_arg_miss(do_build, ctx: Path) -> None:
    write(ctx, {"a.txt": "a", "b.txt": "b"})
    do_build(DF)
    ev = Collector()
    do_build(DF, no_cache=True, progress=ev)
    assert statuses(ev) == ["run"] * 4
    df = "FROM busybox\nARG X=1\nRUN echo one\nRUN echo $X\n"
    do_build(df)
    ev = Collector()
    do_build(df, build_args={"X": "2"}, progress=ev)
    assert statuses(ev) == ["run", "run"]  # every RUN after the ARG uses it


@pytest.mark.parametrize("with_run", [False, True])
def test_source_date_epoch_reproducible(tmp_path: Path, busybox_rootfs: Path, monkeypatch,
                                        with_run: bool) -> None:
    ctx = tmp_path / "ctx"
    write(ctx, {"app.py": "print('hi')\n", "d/x": "x"})
    df = ("FROM busybox\nENV A=1\nCOPY app.py /app/\nCOPY d /d\nWORKDIR /w\n"
          'CMD ["sh"]\n')
    if with_run:
        df += "RUN echo deterministic > /out && mkdir -p /o && touch /o/f\n"
    digests = []
    for n in range(2):
        monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
        st = Store(tmp_path / f"store{n}")
        api.import_image(busybox_rootfs, "busybox:latest", store=st)
        monkeypatch.delenv("SOURCE_DATE_EPOCH")
        time.sleep(1.1 if n == 0 else 0)
        img = build(df, ctx, store=st, build_args={"SOURCE_DATE_EPOCH": "1700000000"})
        assert img.config.created == "2023-11-14T22:13:20Z"
        assert img.history[-1].created == "2023-11-14T22:13:20Z"
        digests.append(img.digest)
        base = st.image("busybox:latest")
        assert img.manifest.layers[0].digest == base.manifest.layers[0].digest
    assert digests[0] == digests[1]


def test_secret_is_readable_but_never_stored(do_build, ctx: Path, bstore: Store,
                                             tmp_path: Path) -> None:
    secret = b"s3cr3t-Value-42"
    write(ctx, {"x": "x"})
    img = do_build("FROM busybox\nRUN --mount=type=secret,id=tok cat /run/secrets/tok > "
                   "/seen && ls /run/secrets\n"
                   "RUN --mount=type=secret,id=tok,env=TOKEN echo ${#TOKEN} > /len\n",
                   secrets={"tok": secret})
    from .conftest import flatten
    flat = flatten(img, tmp_path / "flat")
    assert (flat / "seen").read_bytes() == secret
    assert not (flat / "run/secrets/tok").exists()
    assert (flat / "len").read_text() == "15\n"
    for layer in img.manifest.layers[1:]:
        from nbcontainer.layers import open_layer
        with open_layer(bstore.blobs.open(layer.digest)) as s:
            data = s.read()
        # the only copy is the file the RUN itself wrote on purpose
        assert data.count(secret) <= 1
    for h in img.history:
        assert secret.decode() not in (h.created_by or "")
    assert secret not in bstore.blobs.read(img.manifest.config.digest)
    img2 = do_build("FROM busybox\nRUN --mount=type=secret,id=tok cat /run/secrets/tok\n",
                    secrets={"tok": secret})
    for layer in img2.manifest.layers[1:]:
        assert secret not in bstore.blobs.read(layer.digest)
    for p in Path(bstore.home / "build").rglob("*"):
        if p.is_file() and p.name != "seen" and p.stat().st_size < 10_000_000:
            assert secret not in p.read_bytes(), p

"""Layer entries read from real tars and stores; the one entry cache; an image's merged
view, tree and diff read from its store."""

from __future__ import annotations

import io
import tarfile

from nbcontainer.analysis import ENTRIES, EntryCache, LayerEntry, read_entries, store_reader
from nbcontainer.image import Image
from nbcontainer.oci.digest import Digest
from nbcontainer.store import Store
from tests.support.images import make_image


def tar_of(members: list[tarfile.TarInfo], data: dict[str, bytes]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for ti in members:
            body = data.get(ti.name)
            if body is not None:
                ti.size = len(body)
            tar.addfile(ti, io.BytesIO(body) if body is not None else None)
    buf.seek(0)
    return buf


def info(name: str, kind: bytes = tarfile.REGTYPE, **kw) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.mode = kw.pop("mode", 0o644)
    ti.mtime = kw.pop("mtime", 1_700_000_000)
    for k, v in kw.items():
        setattr(ti, k, v)
    return ti


def test_read_entries_normalises_paths_and_kinds() -> None:
    stream = tar_of([
        info("./", tarfile.DIRTYPE, mode=0o755),
        info("./etc/", tarfile.DIRTYPE, mode=0o40755),
        info("./etc/passwd", uid=0, gid=42, mode=0o104755),
        info("/bin/sh", tarfile.SYMTYPE, linkname="busybox", mode=0o777),
        info("bin/ash", tarfile.LNKTYPE, linkname="bin/busybox"),
        info("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3),
        info("run/fifo", tarfile.FIFOTYPE),
        info("etc/.wh.old"),
    ], {"./etc/passwd": b"root:x:0:0\n"})
    entries = read_entries(stream)
    assert entries == [
        LayerEntry("etc", "d", 0, 0o755, 0, 0, 1_700_000_000),
        LayerEntry("etc/passwd", "f", 11, 0o4755, 0, 42, 1_700_000_000),
        LayerEntry("bin/sh", "l", 0, 0o777, 0, 0, 1_700_000_000, "busybox"),
        LayerEntry("bin/ash", "h", 0, 0o644, 0, 0, 1_700_000_000, "bin/busybox"),
        LayerEntry("dev/null", "c", 0, 0o644, 0, 0, 1_700_000_000),
        LayerEntry("run/fifo", "p", 0, 0o644, 0, 0, 1_700_000_000),
        LayerEntry("etc/.wh.old", "f", 0, 0o644, 0, 0, 1_700_000_000),
    ]
    assert entries[-1].is_whiteout and entries[-1].name == ".wh.old"
    assert entries[0].is_dir and not entries[1].is_whiteout


def test_entry_cache_keeps_the_last_few() -> None:
    cache = EntryCache(size=2)
    keys = [Digest.of(bytes([i])) for i in range(3)]
    for i, k in enumerate(keys):
        cache.put(k, [LayerEntry(str(i), "f", 0, 0, 0, 0, 0)])
        if i == 1:
            assert cache.get(keys[0]) is not None  # used: now the newest
    assert cache.get(keys[1]) is None and cache.get(keys[0]) and cache.get(keys[2])
    cache.clear()
    assert cache.get(keys[0]) is None


def test_an_image_from_its_store(store: Store) -> None:
    digest = make_image(store, [
        {"etc": None, "etc/a": b"1", "opt": None, "opt/x": None, "opt/x/big": b"B" * 100,
         "lib": None, "lib/libc.so": b"c" * 10},
        {"etc/a": b"22", ".wh.opt": b"", "lib/.wh..wh..opq": b"", "lib/new.so": b"n"},
    ], tag="an/image:1")
    img = Image(store, store.image_by_digest(digest))
    layer = img.layers[1]
    assert layer.entries() is layer.entries()  # read once
    assert layer.entries() is ENTRIES.get(layer.digest)
    assert store_reader(store)(layer.digest) is layer.entries()
    files = img.files()
    assert sorted(files) == ["etc", "etc/a", "lib", "lib/new.so"]
    assert files["etc/a"].size == 2
    tree = img.tree()
    assert tree is img.tree()  # one cache of trees
    assert tree.size == sum(e.size for e in files.values()) == 3
    top = tree.layers[1]
    assert (top.entries, top.added, top.modified, top.removed) == (2, 1, 1, 2)
    assert top.removed_size == 100 + 10
    assert tree.reclaimable == (1 + 2 - 1) + 100 + 10  # Σ(cumulative − min) per path

    first = Image(store, store.image_by_digest(make_image(store, [
        {"etc": None, "etc/a": b"1", "opt": None, "opt/x": None, "opt/x/big": b"B" * 100,
         "lib": None, "lib/libc.so": b"c" * 10}])))
    diff = first.diff(img)
    assert [e.path for e in diff.added] == ["lib/new.so"]
    assert [new.path for _, new in diff.changed] == ["etc/a"]
    assert [e.path for e in diff.removed] == ["lib/libc.so", "opt", "opt/x", "opt/x/big"]

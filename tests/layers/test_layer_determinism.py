"""The same tree always gives the same bytes, digest and diff_id."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import random
from pathlib import Path

import pytest
import zstandard

from nbcontainer.layers import Compression, layer_info, write_layer, write_tar
from nbcontainer.layers.compression import GZIP_BLOCK_SIZE

EPOCH = 1_700_000_000
GOLDEN_DIFF_ID = "sha256:82054cf62ed672db07ac910cdafc26c56b9107e3c1e3f28b1701d66e4e106dd1"
GOLDEN_GZIP_DIGEST = "sha256:71bd5c0775f0e4a1b7875e0cf0b07046e670abbfec1681e3445ba514c58be9d7"


def make_tree(root: Path, *, order_seed: int, mtime: float) -> None:
    """The same content created in a different order (so different inode and readdir
    order) and stamped with a different mtime."""
    rng = random.Random(order_seed)
    items = [f"dir{i}/file{j}.txt" for i in range(5) for j in range(8)]
    rng.shuffle(items)
    for rel in items:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes((rel * 200).encode())
    big = random.Random(7).randbytes(GZIP_BLOCK_SIZE * 2 + 4321)  # several pipeline blocks
    (root / "big.bin").write_bytes(big)
    (root / "link").symlink_to("dir1/file1.txt")
    os.link(root / "dir2/file3.txt", root / "hard")
    os.setxattr(root / "dir3", "user.b", b"2")
    os.setxattr(root / "dir3", "user.a", b"1")
    (root / ("long-" + "é" * 80)).write_text("unicode and > 100 bytes")
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.utime(Path(dirpath, name), (mtime, mtime), follow_symlinks=False)


@pytest.fixture
def two_trees(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    make_tree(a, order_seed=1, mtime=EPOCH + 1000.25)
    make_tree(b, order_seed=2, mtime=EPOCH + 99999.75)
    return a, b


@pytest.mark.parametrize("compression", list(Compression))
def test_same_tree_same_bytes(two_trees, compression):
    a, b = two_trees
    out_a, out_b = io.BytesIO(), io.BytesIO()
    info_a = write_layer(a, out_a, compression=compression, source_date_epoch=EPOCH)
    info_b = write_layer(b, out_b, compression=compression, source_date_epoch=EPOCH)
    assert out_a.getvalue() == out_b.getvalue()
    assert info_a == info_b
    assert info_a.digest.hex == hashlib.sha256(out_a.getvalue()).hexdigest()
    assert info_a.size == len(out_a.getvalue())
    assert info_a.media_type == compression.media_type
    # written twice from the same tree: identical too
    again = io.BytesIO()
    assert write_layer(a, again, compression=compression, source_date_epoch=EPOCH) == info_a
    assert again.getvalue() == out_a.getvalue()


def test_diff_id_is_the_uncompressed_tar(two_trees):
    a, _ = two_trees
    plain, gz, zst = io.BytesIO(), io.BytesIO(), io.BytesIO()
    t = write_tar(a, plain, source_date_epoch=EPOCH)
    g = write_layer(a, gz, source_date_epoch=EPOCH)
    z = write_layer(a, zst, compression=Compression.ZSTD, source_date_epoch=EPOCH)
    assert t.digest == t.diff_id == g.diff_id == z.diff_id
    assert gzip.decompress(gz.getvalue()) == plain.getvalue()
    assert (
        zstandard.ZstdDecompressor().decompressobj().decompress(zst.getvalue()) == plain.getvalue()
    )
    assert g.uncompressed_size == len(plain.getvalue()) == z.uncompressed_size
    for blob, info in ((gz, g), (zst, z), (plain, t)):
        blob.seek(0)
        assert layer_info(blob) == info


def test_thread_count_does_not_change_output(two_trees):
    a, _ = two_trees
    outs = {}
    for threads in (1, 2, 3):
        for compression in (Compression.GZIP, Compression.ZSTD):
            buf = io.BytesIO()
            write_layer(a, buf, compression=compression, threads=threads, source_date_epoch=EPOCH)
            outs.setdefault(compression, set()).add(buf.getvalue())
    assert all(len(v) == 1 for v in outs.values())


def test_gzip_header_is_fixed(two_trees):
    a, _ = two_trees
    buf = io.BytesIO()
    write_layer(a, buf)
    head = buf.getvalue()[:10]
    assert head == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # no name, mtime 0


def test_mtime_clamping_and_subsecond(tmp_path):
    """Sub-second parts are never written; only mtimes after the epoch are clamped."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "old").write_text("x")
    (src / "new").write_text("y")
    os.utime(src / "old", (1000.9, 1000.9))
    os.utime(src / "new", (EPOCH + 50.5, EPOCH + 50.5))
    plain = io.BytesIO()
    write_tar(src, plain, source_date_epoch=EPOCH)
    import tarfile

    members = {m.name: m for m in tarfile.open(fileobj=io.BytesIO(plain.getvalue()))}
    assert members["old"].mtime == 1000
    assert members["new"].mtime == EPOCH
    assert all(not m.pax_headers or "mtime" not in m.pax_headers for m in members.values())
    unclamped = io.BytesIO()
    write_tar(src, unclamped)
    members = {m.name: m for m in tarfile.open(fileobj=io.BytesIO(unclamped.getvalue()))}
    assert members["new"].mtime == EPOCH + 50


def test_format_conventions(tmp_path):
    """PAX only where needed, empty uname/gname, dirs with a slash, no root entry,
    sockets skipped, entries depth-first in byte order."""
    import socket
    import tarfile

    src = tmp_path / "src"
    (src / "b").mkdir(parents=True)
    (src / "a.b").write_text("1")
    (src / "b" / "z").write_text("2")
    (src / "B").write_text("3")
    (src / ("x" * 120)).write_text("long")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(src / "sock"))
    try:
        buf = io.BytesIO()
        write_tar(src, buf)
    finally:
        sock.close()
    tf = tarfile.open(fileobj=io.BytesIO(buf.getvalue()))
    members = tf.getmembers()
    assert [m.name for m in members] == ["B", "a.b", "b", "b/z", "x" * 120]
    raw = buf.getvalue()
    assert raw[0:2] == b"B\0" and raw[257:265] == b"ustar\x0000"
    assert b"b/\0" in raw  # directories are written as name/
    assert all(m.uname == "" and m.gname == "" for m in members)
    assert [bool(m.pax_headers) for m in members] == [False, False, False, False, True]
    assert set(members[-1].pax_headers) == {"path"}
    assert raw.endswith(bytes(1024)) and len(raw) % 512 == 0


@pytest.mark.parametrize("size", [5000, 3 << 20])  # within one block, across blocks
def test_tree_modified_while_reading_is_an_error(tmp_path, monkeypatch, size):
    from nbcontainer.errors import LayerError
    from nbcontainer.layers import tarwriter

    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_bytes(b"x" * size)
    real = tarwriter.BlockWriter.file

    def shrink_then_copy(self, header, fd, length, name):
        with open(src / "f", "r+b") as f:
            f.truncate(10)
        return real(self, header, fd, length, name)

    monkeypatch.setattr(tarwriter.BlockWriter, "file", shrink_then_copy)
    with pytest.raises(LayerError, match="f: file shrank"):
        write_layer(src, io.BytesIO())


def test_write_layer_in_a_forked_child(two_trees):
    """The shared compression pool must not hang a child forked after it started."""
    a, _ = two_trees
    parent = write_layer(a, io.BytesIO(), source_date_epoch=EPOCH)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            info = write_layer(a, io.BytesIO(), source_date_epoch=EPOCH)
            os.write(w, str(info.digest).encode())
        finally:
            os._exit(0)
    os.close(w)
    _, status = os.waitpid(pid, 0)
    with os.fdopen(r) as f:
        assert f.read() == str(parent.digest)
    assert status == 0


def _golden_tree(root: Path) -> None:
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "os-release").write_bytes(b"NAME=golden\n" * 50)
    (root / "bin").mkdir()
    (root / "bin" / "tool").write_bytes(bytes(range(256)) * 5000)
    (root / "bin" / "sh").symlink_to("tool")
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            os.chown(p, 0, 0, follow_symlinks=False)
            if not p.is_symlink():
                os.chmod(p, 0o755 if p.is_dir() or name == "tool" else 0o644)
            os.utime(p, (1_000_000_000, 1_000_000_000), follow_symlinks=False)


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to 0 needs root")
def test_golden_digests(tmp_path):
    """Pinned bytes: if this changes, every layer digest changes (e.g. a new isal deflate
    or a format change) and reproducibility across versions is lost: do it on purpose."""
    _golden_tree(tmp_path / "g")
    info = write_layer(tmp_path / "g", io.BytesIO(), source_date_epoch=EPOCH)
    assert str(info.diff_id) == GOLDEN_DIFF_ID
    assert str(info.digest) == GOLDEN_GZIP_DIGEST


@pytest.mark.parametrize("compression", list(Compression))
def test_compress_stream_keeps_the_tar_byte_for_byte(two_trees, compression):
    """docker import of a tarball: the tar is kept as is, only compressed and hashed."""
    from nbcontainer.layers import compress_stream, open_layer

    a, _ = two_trees
    gz = io.BytesIO()
    original = write_layer(a, gz, source_date_epoch=EPOCH)
    gz.seek(0)
    out = io.BytesIO()
    with open_layer(gz) as tar:
        info = compress_stream(tar, out, compression=compression)
    assert info.diff_id == original.diff_id
    assert info.digest.hex == hashlib.sha256(out.getvalue()).hexdigest()
    out.seek(0)
    assert layer_info(out) == info
    if compression is Compression.GZIP:
        assert info == original  # same pipeline, same bytes

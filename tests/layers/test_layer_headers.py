"""The tree walk's inlined header fast path gives exactly encode_header's bytes, and every
reason to leave it (xattrs, long or non-ASCII names, ids and mtimes out of octal range)
still goes the PAX way."""

from __future__ import annotations

import errno
import io
import os
import random
import tarfile

import pytest

from nbcontainer.errors import LayerError
from nbcontainer.layers import tarwriter, write_tar
from nbcontainer.layers.tarwriter import BLOCKSIZE, REGTYPE, encode_header

BIG_ID = 3_000_000  # over 8**7 - 1: does not fit a ustar id field


def _flat_tree(root) -> list[bytes]:
    """Regular files only, one per way in or out of the fast path; returns their names."""
    root.mkdir()
    files = {
        b"plain.txt": b"hello\n" * 100,
        b"empty": b"",
        b"exactly-512": b"x" * 512,
        b"with-xattr": b"xattr body",
        b"n" * 100: b"a 100-byte name still fits ustar",
        b"l" * 130: b"a long name needs PAX",
        "caf\u00e9".encode(): b"non-ASCII UTF-8 name",
        b"raw-\xff": b"a name that is not UTF-8",
        b"pre-1970": b"negative mtime",
        b"big-owner": b"uid and gid over the ustar range",
    }
    for name, data in files.items():
        with open(os.path.join(os.fsencode(root), name), "wb") as f:
            f.write(data)
    base = os.fsencode(root)
    os.setxattr(os.path.join(base, b"with-xattr"), "user.note", b"v")
    os.utime(os.path.join(base, b"pre-1970"), (-86400 * 400, -86400 * 400))
    os.chown(os.path.join(base, b"big-owner"), BIG_ID, BIG_ID + 1)
    return sorted(files)


def _expected_stream(root, names: list[bytes]) -> bytes:
    """What the walk must write for a flat directory, built from encode_header alone."""
    out = io.BytesIO()
    base = os.fsencode(root)
    for name in names:
        path = os.path.join(base, name)
        st = os.lstat(path)
        xattrs = {x: os.getxattr(path, x) for x in sorted(os.listxattr(path))}
        with open(path, "rb") as f:
            data = f.read()
        out.write(
            encode_header(
                name,
                REGTYPE,
                mode=st.st_mode,
                uid=st.st_uid,
                gid=st.st_gid,
                size=st.st_size,
                mtime=st.st_mtime_ns // 1_000_000_000,
                xattrs=xattrs or None,
            )
        )
        out.write(data + bytes(-len(data) % BLOCKSIZE))
    out.write(bytes(1024))
    return out.getvalue()


def test_fast_path_headers_equal_encode_header(tmp_path):
    root = tmp_path / "flat"
    names = _flat_tree(root)
    got = io.BytesIO()
    write_tar(root, got)
    assert got.getvalue() == _expected_stream(root, names)
    # and a standard reader agrees (checksums, PAX records)
    with tarfile.open(fileobj=io.BytesIO(got.getvalue())) as tf:
        members = {m.name: m for m in tf}
    assert members["pre-1970"].mtime == -86400 * 400
    assert (members["big-owner"].uid, members["big-owner"].gid) == (BIG_ID, BIG_ID + 1)
    assert members["l" * 130].size == len(b"a long name needs PAX")
    assert members["with-xattr"].pax_headers["SCHILY.xattr.user.note"] == "v"
    assert members["caf\u00e9"].isreg()


def test_byte_sum_is_sum_for_any_148_bytes():
    rng = random.Random(5)
    for head in [bytes(148), b"\xff" * 148] + [rng.randbytes(148) for _ in range(2000)]:
        assert tarwriter._byte_sum(head) == sum(head)


def test_noatime_refused_once_then_plain_open(tmp_path, monkeypatch):
    """Files of other owners refuse O_NOATIME (EPERM): same bytes, and the walk stops
    asking after the first refusal instead of paying a failed open per file."""
    root = tmp_path / "many"
    root.mkdir()
    for i in range(50):
        (root / f"f{i:02d}").write_bytes(b"%d" % i)
    reference = io.BytesIO()
    write_tar(root, reference)

    real_open = os.open
    noatime = getattr(os, "O_NOATIME", 0)
    refused = []

    def open_without_noatime(path, flags, *args, **kwargs):
        if noatime and flags & noatime:
            refused.append(path)
            raise PermissionError(errno.EPERM, "Operation not permitted")
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_without_noatime)
    got = io.BytesIO()
    write_tar(root, got)
    assert got.getvalue() == reference.getvalue()
    if noatime:
        assert 1 <= len(refused) <= 2  # the fast try and _open_at's, for the first file only


def test_file_replaced_after_listing_goes_the_careful_way(tmp_path, monkeypatch):
    """A file the listing saw as regular but is no longer one when opened (here: fstat says
    FIFO) is looked up again by name; the stream is unchanged when it still is a file."""
    root = tmp_path / "t"
    root.mkdir()
    for name in ("a", "b", "c"):
        (root / name).write_bytes(name.encode() * 700)
    reference = io.BytesIO()
    write_tar(root, reference)

    real_fstat = os.fstat
    calls = []

    def fstat_says_fifo(fd):
        st = real_fstat(fd)
        calls.append(fd)
        if len(calls) == 2:  # the second file: pretend it changed type
            fields = list(st)
            fields[0] = (st.st_mode & 0o7777) | 0o010000
            return os.stat_result(fields)
        return st

    monkeypatch.setattr(os, "fstat", fstat_says_fifo)
    got = io.BytesIO()
    write_tar(root, got)
    assert got.getvalue() == reference.getvalue()
    assert len(calls) == 3


def test_file_that_cannot_be_opened_is_a_layer_error(tmp_path, monkeypatch):
    root = tmp_path / "t"
    root.mkdir()
    (root / "gone").write_bytes(b"x")
    real_open = os.open

    def open_fails(path, flags, *args, **kwargs):
        if path == b"gone":
            raise FileNotFoundError(errno.ENOENT, "No such file or directory")
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_fails)
    with pytest.raises(LayerError, match="gone: cannot open: No such file"):
        write_tar(root, io.BytesIO())

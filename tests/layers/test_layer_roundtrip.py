"""write_layer -> apply_layer reproduces random trees exactly (property test)."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nbcontainer.layers import Compression, apply_layer, write_layer
from tests.support.layers import snapshot

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for ownership and xattrs")

# One path component: unicode (no surrogates, no '/' or NUL), sometimes very long.
_char = st.characters(blacklist_categories=("Cs",), blacklist_characters="/\0")
component = st.one_of(
    st.text(_char, min_size=1, max_size=12),
    st.text(st.sampled_from("abcdefgh"), min_size=1, max_size=6),
    st.text(st.sampled_from("xyz-_."), min_size=90, max_size=130),
).filter(lambda n: n not in (".", "..") and not n.startswith(".wh.") and len(n.encode()) <= 255)

ids = st.sampled_from([0, 1, 33, 1000, 65534, 100000, 3_000_000])
mtime_ns = st.integers(0, 2_000_000_000).map(lambda s: s * 1_000_000_000) | st.integers(
    0, 4_000_000_000_000_000_000
)
xattrs = st.dictionaries(
    st.text(st.sampled_from("abcdefghij._-"), min_size=1, max_size=20).map(lambda k: "user." + k),
    st.binary(max_size=40),
    max_size=3,
)
content = st.one_of(
    st.binary(max_size=600), st.binary(min_size=1, max_size=3000).map(lambda b: b * 40)
)

meta = st.tuples(ids, ids, mtime_ns, xattrs)
op = st.one_of(
    st.tuples(
        st.just("dir"),
        st.integers(0, 50),
        component,
        st.sampled_from([0o755, 0o700, 0o1777, 0o2775, 0o555, 0o750]),
        meta,
    ),
    st.tuples(
        st.just("file"),
        st.integers(0, 50),
        component,
        st.sampled_from([0o644, 0o600, 0o755, 0o4755, 0o2711, 0o444, 0o1644]),
        meta,
        content,
    ),
    st.tuples(
        st.just("symlink"),
        st.integers(0, 50),
        component,
        st.one_of(component, st.text(_char, min_size=1, max_size=300)),
        meta,
    ),
    st.tuples(st.just("hardlink"), st.integers(0, 50), component, st.integers(0, 50), meta),
    st.tuples(st.just("fifo"), st.integers(0, 50), component, st.just(0o640), meta),
)


def build(root: Path, ops) -> None:
    dirs: list[Path] = [root]
    files: list[Path] = []
    made: list[tuple[Path, tuple]] = []
    for item in ops:
        kind, parent_i, name = item[0], item[1], item[2]
        parent = dirs[parent_i % len(dirs)]
        path = parent / name
        if os.path.lexists(path) or len(os.fsencode(path)) > 3000:
            continue
        if kind == "dir":
            path.mkdir()
            dirs.append(path)
        elif kind == "file":
            path.write_bytes(item[5])
            files.append(path)
        elif kind == "symlink":
            os.symlink(item[3], path)
        elif kind == "hardlink":
            if not files:
                continue
            os.link(files[item[3] % len(files)], path)
        else:
            os.mkfifo(path)
        made.append((path, item))
    # metadata deepest first, so children do not disturb their parents' mtimes
    for path, item in sorted(made, key=lambda pm: -len(pm[0].parts)):
        kind = item[0]
        uid, gid, mt, xa = item[4]
        os.chown(path, uid, gid, follow_symlinks=False)
        if kind in ("dir", "file", "fifo"):
            os.chmod(path, item[3])
        if kind in ("dir", "file") and xa:
            for k, v in xa.items():
                os.setxattr(path, k, v)
        os.utime(path, ns=(mt, mt), follow_symlinks=False)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    ops=st.lists(op, min_size=1, max_size=20),
    epoch=st.one_of(st.none(), st.integers(0, 2_000_000_000)),
    compression=st.sampled_from(list(Compression)),
)
def test_round_trip(ops, epoch, compression):
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp, "src"), Path(tmp, "dst")
        src.mkdir()
        build(src, ops)
        blob = io.BytesIO()
        info = write_layer(src, blob, compression=compression, source_date_epoch=epoch)
        blob.seek(0)
        report = apply_layer(dst, blob)
        assert report.diff_id == info.diff_id
        assert report.digest == info.digest
        assert report.compression is compression

        def clamp(secs: int) -> int:
            return secs if epoch is None else min(secs, epoch)

        assert snapshot(dst) == snapshot(src, mtime=clamp)


def test_round_trip_big_and_nested(tmp_path):
    """Files larger than a pipeline block, deep paths over 255 and 4000 bytes."""
    src = tmp_path / "src"
    deep = src
    for i in range(40):
        deep = deep / (f"level{i:02d}-" + "n" * 90)
    deep.mkdir(parents=True)
    (deep / "leaf").write_bytes(b"leaf")
    big = os.urandom(3 << 20) + b"z" * (5 << 20) + os.urandom(12345)
    (src / "big.bin").write_bytes(big)
    os.link(src / "big.bin", deep / "big-link")
    blob = io.BytesIO()
    info = write_layer(src, blob)
    assert info.uncompressed_size > len(big)
    blob.seek(0)
    apply_layer(tmp_path / "dst", blob)
    assert snapshot(tmp_path / "dst") == snapshot(src)

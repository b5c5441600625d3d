"""Interop with the real GNU tar (and gzip/zstd binaries) in both directions."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from nbcontainer.layers import Compression, apply_layer, layer_info, write_layer
from tests.support.layers import snapshot

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for ownership")

TAR = shutil.which("tar")
XATTR_FLAGS = ["--xattrs", "--xattrs-include=*"]


@pytest.fixture(scope="module", autouse=True)
def tools():
    for tool in ("tar", "gzip", "zstd"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is required (apt-get install tar gzip zstd)")


@pytest.fixture
def tree(tmp_path) -> Path:
    src = tmp_path / "src"
    (src / "etc" / "deep" / ("d" * 120)).mkdir(parents=True)
    (src / "etc" / "hosts").write_text("127.0.0.1 localhost\n")
    (src / "etc" / "deep" / ("d" * 120) / "f").write_text("long path\n")
    (src / "bin").mkdir()
    (src / "bin" / "tool").write_bytes(os.urandom(200_000))
    os.chmod(src / "bin" / "tool", 0o4755)
    os.link(src / "bin" / "tool", src / "bin" / "tool-again")
    (src / "bin" / "sh").symlink_to("/bin/busybox")
    (src / "bin" / ("long-link-" + "l" * 100)).symlink_to("t" * 150)
    (src / "ünïcödé.txt").write_text("ü")
    (src / "tmp").mkdir()
    os.chmod(src / "tmp", 0o1777)
    os.mkfifo(src / "fifo")
    (src / "owned").write_text("x")
    os.chown(src / "owned", 1234, 5678)
    os.setxattr(src / "etc" / "hosts", "user.comment", b"hello")
    for dirpath, dirnames, filenames in os.walk(src):
        for name in dirnames + filenames:
            os.utime(Path(dirpath, name), (1_600_000_000, 1_600_000_000), follow_symlinks=False)
    return src


@pytest.mark.parametrize(
    "compression,flag",
    [(Compression.NONE, ""), (Compression.GZIP, "-z"), (Compression.ZSTD, "--zstd")],
)
def test_gnu_tar_reads_our_layers(tmp_path, tree, compression, flag):
    blob = tmp_path / "layer"
    with open(blob, "wb") as f:
        write_layer(tree, f, compression=compression)
    args = [a for a in (flag,) if a]
    listing = subprocess.run(
        [TAR, *args, "-tvf", str(blob)], check=True, capture_output=True, text=True
    ).stdout
    assert "bin/tool-again link to bin/tool" in listing
    assert "bin/sh -> /bin/busybox" in listing
    assert "1234/5678" in listing
    assert "ünïcödé.txt" in listing
    assert "-rwsr-xr-x" in listing and "drwxrwxrwt" in listing
    out = tmp_path / "gnu"
    out.mkdir()
    subprocess.run(
        [TAR, *args, *XATTR_FLAGS, "--same-owner", "-xpf", str(blob), "-C", str(out)],
        check=True,
        capture_output=True,
    )
    assert snapshot(out) == snapshot(tree)
    # the integrity tools of the compressors agree too
    if compression is Compression.GZIP:
        subprocess.run(["gzip", "-t", str(blob)], check=True)
    elif compression is Compression.ZSTD:
        subprocess.run(["zstd", "-q", "-t", str(blob)], check=True)


def test_python_tarfile_reads_our_layers(tree):
    buf = io.BytesIO()
    write_layer(tree, buf)
    buf.seek(0)
    with tarfile.open(fileobj=buf, mode="r:gz") as tf:
        names = tf.getnames()
        hosts = tf.getmember("etc/hosts")
    assert f"etc/deep/{'d' * 120}/f" in names
    assert hosts.pax_headers["SCHILY.xattr.user.comment"] == "hello"


@pytest.mark.parametrize("fmt", ["pax", "gnu", "ustar"])
def test_we_apply_gnu_tar_archives(tmp_path, tree, fmt):
    """GNU tar's own archives (with './' prefixes, GNU long names, a root entry)."""
    if fmt == "ustar":
        shutil.rmtree(tree / "etc" / "deep")  # ustar cannot hold the long names
        os.unlink(tree / "bin" / ("long-link-" + "l" * 100))
    blob = tmp_path / "gnu.tar.gz"
    extra = XATTR_FLAGS if fmt == "pax" else []
    subprocess.run(
        [TAR, f"--format={fmt}", *extra, "-czf", str(blob), "-C", str(tree), "."], check=True
    )
    target = tmp_path / "ours"
    report = apply_layer(target, blob)
    assert report.compression is Compression.GZIP
    expected = snapshot(tree)
    got = snapshot(target)
    if fmt != "pax":  # only the PAX format carries xattrs
        expected = {
            k: v[:7] + ((),) + v[8:] if isinstance(v, tuple) and len(v) > 8 else v
            for k, v in expected.items()
        }
    assert got == expected
    info = layer_info(blob)
    assert info.diff_id == report.diff_id and info.digest == report.digest


def test_gzip_cli_output_and_multimember(tmp_path, tree):
    """Layers compressed by other tools (gzip -9, concatenated members) are accepted."""
    plain = tmp_path / "layer.tar"
    with open(plain, "wb") as f:
        write_layer(tree, f, compression=Compression.NONE)
    data = plain.read_bytes()
    half = len(data) // 2
    (tmp_path / "a").write_bytes(data[:half])
    (tmp_path / "b").write_bytes(data[half:])
    gz = subprocess.run(
        ["gzip", "-9c", str(tmp_path / "a")], check=True, capture_output=True
    ).stdout
    gz += subprocess.run(
        ["gzip", "-1c", str(tmp_path / "b")], check=True, capture_output=True
    ).stdout
    report = apply_layer(tmp_path / "out", io.BytesIO(gz))
    assert snapshot(tmp_path / "out") == snapshot(tree)
    assert report.diff_id == layer_info(plain).diff_id

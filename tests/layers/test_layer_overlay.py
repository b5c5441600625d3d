"""overlayfs upper dir -> OCI layer: whiteouts, opaque dirs, xattrs, exclusions, id shifts."""

from __future__ import annotations

import io
import os
import shutil
import stat
import struct
import subprocess
import tarfile
from pathlib import Path

import pytest

from nbcontainer.errors import LayerError
from nbcontainer.layers import IdMap, apply_layer, write_layer, write_tar
from tests.support.layers import snapshot

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mknod, trusted.* xattrs)")

# VFS_CAP_REVISION_2 granting cap_net_raw (bit 13), permitted
CAPABILITY = struct.pack("<IIIII", 0x02000001, 1 << 13, 0, 0, 0)


def whiteout(path: Path) -> None:
    os.mknod(path, stat.S_IFCHR | 0o000, os.makedev(0, 0))


def members(blob: bytes) -> list[tarfile.TarInfo]:
    return tarfile.open(fileobj=io.BytesIO(blob)).getmembers()


@pytest.fixture
def upper(tmp_path) -> Path:
    up = tmp_path / "upper"
    up.mkdir()
    whiteout(up / "deleted")
    whiteout(up / "!gone")
    (up / "!bang").write_text("sorts before '.wh.'")
    (up / "a-file").write_text("new")
    sub = up / "sub"
    sub.mkdir()
    (sub / "new.txt").write_text("recreated dir content")
    os.setxattr(sub, "trusted.overlay.opaque", b"y")
    os.setxattr(sub, "trusted.overlay.origin", b"\x00\xfb\x21")
    os.setxattr(sub, "user.keep", b"kept")
    usr = up / "usr"
    usr.mkdir()
    (usr / "only.txt").write_text("rootless opaque dir")
    os.setxattr(usr, "user.overlay.opaque", b"y")
    os.setxattr(usr, "user.overlay.impure", b"y")
    bin_ = up / "bin"
    bin_.mkdir()
    (bin_ / "ping").write_bytes(b"\x7fELF fake")
    os.setxattr(bin_ / "ping", "security.capability", CAPABILITY)
    whiteout(bin_ / "old-tool")
    os.setxattr(up, "trusted.overlay.impure", b"y")  # bookkeeping on the upper root
    dev = up / "dev"
    dev.mkdir()
    (dev / "null").write_text("")  # a `>/dev/null` artifact without a /dev bind
    os.mknod(up / "realdev", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    return up


def test_conversion(upper):
    buf = io.BytesIO()
    write_tar(upper, buf, overlay_upper=True, exclude=lambda p: p == "dev" or p.startswith("dev/"))
    entries = members(buf.getvalue())
    names = [m.name for m in entries]
    # whiteouts first in their directory, the opaque marker right after its directory
    assert names == [
        ".wh.!gone",
        ".wh.deleted",
        "!bang",
        "a-file",
        "bin",
        "bin/.wh.old-tool",
        "bin/ping",
        "realdev",
        "sub",
        "sub/.wh..wh..opq",
        "sub/new.txt",
        "usr",
        "usr/.wh..wh..opq",
        "usr/only.txt",
    ]
    by_name = {m.name: m for m in entries}
    for wh in (".wh.!gone", ".wh.deleted", "bin/.wh.old-tool", "sub/.wh..wh..opq"):
        assert by_name[wh].isreg() and by_name[wh].size == 0
    assert by_name["realdev"].ischr() and (
        by_name["realdev"].devmajor,
        by_name["realdev"].devminor,
    ) == (1, 3)
    assert by_name["sub"].pax_headers == {"SCHILY.xattr.user.keep": "kept"}
    assert not by_name["usr"].pax_headers  # user.overlay.* dropped too
    cap = by_name["bin/ping"].pax_headers["SCHILY.xattr.security.capability"]
    assert cap.encode("utf-8", "surrogateescape") == CAPABILITY
    assert not any("overlay" in k for m in entries for k in m.pax_headers)


def test_sandbox_artifact_predicate(upper):
    from nbcontainer.layers import sandbox_artifact

    assert sandbox_artifact("dev") and sandbox_artifact("dev/null") and sandbox_artifact("proc/1")
    assert sandbox_artifact("etc/resolv.conf") and not sandbox_artifact("etc/passwd")
    assert not sandbox_artifact("device") and not sandbox_artifact("usr/dev")
    buf = io.BytesIO()
    write_tar(upper, buf, overlay_upper=True, exclude=sandbox_artifact)
    assert not any(m.name.startswith("dev") for m in members(buf.getvalue()))


def test_without_overlay_mode_whiteout_devices_stay_devices(upper):
    buf = io.BytesIO()
    write_tar(upper, buf, exclude=lambda p: p.startswith("dev"))
    by_name = {m.name: m for m in members(buf.getvalue())}
    assert by_name["deleted"].ischr()
    assert "sub/.wh..wh..opq" not in by_name
    assert not any("overlay" in k for m in by_name.values() for k in m.pax_headers)


def test_real_files_named_like_whiteouts_are_refused(tmp_path):
    (tmp_path / ".wh.sneaky").write_text("x")
    with pytest.raises(LayerError, match=r"\.wh\.sneaky"):
        write_tar(tmp_path, io.BytesIO())


def test_applying_the_converted_layer(tmp_path, upper):
    lower = tmp_path / "lower"
    for rel in (
        "deleted",
        "!gone",
        "keep-me",
        "sub/old1",
        "sub/deep/old2",
        "usr/lib/x",
        "bin/old-tool",
        "bin/sh",
    ):
        p = lower / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(rel)
    base, diff = io.BytesIO(), io.BytesIO()
    write_layer(lower, base)
    write_layer(upper, diff, overlay_upper=True, exclude=lambda p: p.split("/")[0] == "dev")
    target = tmp_path / "rootfs"
    for blob in (base, diff):
        blob.seek(0)
    apply_layer(target, base)
    report = apply_layer(target, diff)
    assert report.whiteouts == 3 and report.opaque_dirs == 2
    got = sorted(str(p.relative_to(target)) for p in target.rglob("*"))
    assert got == sorted(
        [
            "!bang",
            "a-file",
            "bin",
            "bin/ping",
            "bin/sh",
            "keep-me",
            "realdev",
            "sub",
            "sub/new.txt",
            "usr",
            "usr/only.txt",
        ]
    )
    assert os.getxattr(target / "bin/ping", "security.capability") == CAPABILITY
    assert os.getxattr(target / "sub", "user.keep") == b"kept"
    assert "trusted.overlay.opaque" not in os.listxattr(target / "sub")


def test_rootless_id_shift(tmp_path):
    up = tmp_path / "upper"
    up.mkdir()
    for name, uid in (("root-file", 1000), ("apt-file", 100041), ("user1", 100000)):
        (up / name).write_text(name)
        os.chown(up / name, uid, uid)
    idmap = IdMap.rootless(uid=1000, gid=1000, subuid=100000, subgid=100000)
    buf = io.BytesIO()
    write_tar(up, buf, overlay_upper=True, id_map=idmap)
    owners = {m.name: (m.uid, m.gid) for m in members(buf.getvalue())}
    assert owners == {"apt-file": (42, 42), "root-file": (0, 0), "user1": (1, 1)}
    # the inverse on extraction (a rootless snapshot owned by the mapped host ids)
    buf.seek(0)
    target = tmp_path / "snap"
    apply_layer(target, buf, id_map=idmap)
    assert os.lstat(target / "apt-file").st_uid == 100041
    assert os.lstat(target / "root-file").st_uid == 1000
    os.chown(up / "root-file", 5, 5)  # not in the map: cannot have come from the namespace
    with pytest.raises(LayerError, match="root-file.*outside the id map"):
        write_tar(up, io.BytesIO(), overlay_upper=True, id_map=idmap)


def test_idmap_parse():
    m = IdMap.parse("0 1000 1\n1 100000 65536\n")
    assert m.to_container(100041, 100041) == (42, 42)
    assert m.to_host(42, 0) == (100041, 1000)
    with pytest.raises(LayerError):
        IdMap.parse("0 x 1")


def _run_in_overlay(lower: Path, root: Path, script: str) -> None:
    for d in ("upper", "work", "merged"):
        (root / d).mkdir()
    subprocess.run(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-euc",
            f"mount -t overlay overlay -o lowerdir={lower},upperdir={root}/upper,"
            f"workdir={root}/work {root}/merged\ncd {root}/merged\n{script}\n"
            f"cp -a {root}/merged {root}/expected",
        ],
        check=True,
    )


def test_real_overlayfs_upper_dir(tmp_path):
    """Changes made through a real overlay mount: lower + converted upper == merged view."""
    if shutil.which("unshare") is None:
        pytest.fail("unshare (util-linux) is required")
    lower = tmp_path / "lower"
    for rel in (
        "etc/a.conf",
        "etc/b.conf",
        "var/lib/apt/lists/x_Release",
        "var/lib/apt/lists/y",
        "usr/bin/tool",
        "usr/bin/other",
        "home/user/.profile",
        "opt/app/data",
    ):
        p = lower / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(rel)
    (lower / "etc/link").symlink_to("a.conf")
    work = tmp_path / "ov"
    work.mkdir()
    _run_in_overlay(
        lower,
        work,
        "echo new > newfile; mkdir -p new/dir && echo x > new/dir/f\n"
        "rm etc/b.conf; echo appended >> etc/a.conf\n"
        "rm -rf var/lib/apt/lists && mkdir -p var/lib/apt/lists && echo z > var/lib/apt/lists/z\n"
        "mv usr/bin usr/bin2\n"
        "rm -rf opt/app\n"
        "chmod 4755 newfile && ln newfile newhard && ln -sf /etc/a.conf etc/link\n"
        "setfattr -n user.note -v hi newfile 2>/dev/null || python3 -c "
        "\"import os; os.setxattr('newfile', 'user.note', b'hi')\"",
    )
    upper = work / "upper"
    base, diff = io.BytesIO(), io.BytesIO()
    write_layer(lower, base)
    write_layer(upper, diff, overlay_upper=True)
    target = tmp_path / "rootfs"
    for blob in (base, diff):
        blob.seek(0)
        apply_layer(target, blob)
    assert snapshot(target) == snapshot(work / "expected")

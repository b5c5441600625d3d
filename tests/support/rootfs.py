"""Test helper: an arm64 busybox root filesystem (Debian's busybox-static:arm64, which
scripts/setup.sh caches), for multi-platform base images made on an amd64 machine."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ARM64_BUSYBOX = Path("/var/cache/nbcontainer-test/busybox-arm64/busybox")


def make_arm64_rootfs(dest: Path) -> Path:
    """The busybox rootfs layout of nbcontainer.rootfs with the arm64 binary; the applet
    list comes from the host's busybox (same Debian version), so nothing runs emulated."""
    from nbcontainer.rootfs import _GROUP, _PASSWD, _static_busybox

    if not ARM64_BUSYBOX.is_file():
        pytest.fail(f"{ARM64_BUSYBOX} is missing: run scripts/setup.sh (it caches "
                    "busybox-static:arm64)")
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "dev", "tmp", "sys", "root"):
        (dest / d).mkdir(parents=True, exist_ok=True)
    os.chmod(dest / "tmp", 0o1777)
    os.chmod(dest / "root", 0o700)
    shutil.copy2(ARM64_BUSYBOX, dest / "bin/busybox")
    os.chmod(dest / "bin/busybox", 0o755)
    applets = subprocess.run([_static_busybox(), "--list-full"], capture_output=True,
                             text=True, check=True).stdout.split()
    for applet in applets:
        link = dest / applet
        if applet == "bin/busybox" or link.is_symlink():
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to("/bin/busybox")
    (dest / "etc/passwd").write_text(_PASSWD)
    (dest / "etc/group").write_text(_GROUP)
    return dest

"""Root filesystems for test base images: the product's busybox rootfs with the users the
tests rely on, an arm64 busybox rootfs (Debian's busybox-static:arm64, which
scripts/setup.sh caches) for multi-platform bases made on an amd64 machine, and the
debootstrap Debian, made at most once a day and cached."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CACHE = Path("/var/cache/nbcontainer-test")
ARM64_BUSYBOX = CACHE / "busybox-arm64/busybox"
PASSWD = ("root:x:0:0:root:/root:/bin/sh\n"
          "app:x:1000:1000:app:/home/app:/bin/sh\n"
          "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
GROUP = "root:x:0:\napp:x:1000:\nextra:x:2000:app\nnogroup:x:65534:\n"


def make_busybox_rootfs(root: Path, *, etc_files: bool = True) -> Path:
    """The product's busybox rootfs plus what these tests rely on: users app/1000 and
    friends, a /home/app owned by 1000, and (``etc_files``) empty network files."""
    from nbcontainer.rootfs import make_busybox_rootfs as make

    make(root)
    (root / "home/app").mkdir(parents=True, exist_ok=True)
    (root / "etc/passwd").write_text(PASSWD)
    (root / "etc/group").write_text(GROUP)
    if etc_files:
        for name in ("hosts", "resolv.conf", "hostname"):
            (root / "etc" / name).write_text("")
    os.chown(root / "home/app", 1000, 1000)
    return root


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


def debian_rootfs() -> Path:
    """debootstrap minbase bookworm, made at most once a day and reused by every run (the
    demo, scripts/notebook_env.py, shares the same cache)."""
    from nbcontainer.rootfs import cached_debian_rootfs

    return cached_debian_rootfs(CACHE)

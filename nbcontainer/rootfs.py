"""Small root filesystems made on this machine, for base images without a registry.

Lecturers and CI without Docker Hub still need a base: ``busybox`` (from Debian's
busybox-static, about 2 MB) and ``debootstrap`` minbase Debian (about 200 MB, needs root).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from .errors import NbcontainerError

BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")

_PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
_GROUP = "root:x:0:\nnogroup:x:65534:\n"


def _static_busybox() -> str:
    for cand in BUSYBOX_CANDIDATES:
        if os.path.isfile(cand):
            out = subprocess.run(["file", "-L", cand], capture_output=True, text=True).stdout \
                if shutil.which("file") else "statically linked"
            if "dynamically linked" not in out:
                return cand
    raise NbcontainerError("no static busybox found",
                           hint="install it: apt-get install busybox-static")


def make_busybox_rootfs(dest: Path) -> Path:
    """A busybox root filesystem with its applets as symlinks to ``/bin/busybox``."""
    dest = Path(dest)
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "dev", "tmp", "sys", "root"):
        (dest / d).mkdir(parents=True, exist_ok=True)
    os.chmod(dest / "tmp", 0o1777)
    os.chmod(dest / "root", 0o700)
    bb = dest / "bin" / "busybox"
    shutil.copy2(_static_busybox(), bb)
    os.chmod(bb, 0o755)
    applets = subprocess.run([str(bb), "--list-full"], capture_output=True, text=True,
                             check=True).stdout.split()
    for applet in applets:
        link = dest / applet
        if applet == "bin/busybox" or link.exists() or link.is_symlink():
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to("/bin/busybox")
    (dest / "etc" / "passwd").write_text(_PASSWD)
    (dest / "etc" / "group").write_text(_GROUP)
    return dest


def make_debian_rootfs(dest: Path, suite: str = "bookworm",
                       mirror: str = "http://deb.debian.org/debian") -> Path:
    """``debootstrap --variant=minbase`` (root only; about 30 s), with apt's .deb cache emptied."""
    if os.geteuid() != 0:
        raise NbcontainerError("debootstrap needs root", hint="run as root, or use a busybox base")
    if not shutil.which("debootstrap"):
        raise NbcontainerError("debootstrap is not installed", hint="apt-get install debootstrap")
    dest = Path(dest)
    subprocess.run(["debootstrap", "--variant=minbase", suite, str(dest), mirror], check=True,
                   stdout=subprocess.DEVNULL)
    for deb in (dest / "var/cache/apt/archives").glob("*.deb"):
        deb.unlink()
    return dest

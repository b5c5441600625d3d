"""Small root filesystems made on this machine, for base images without a registry.

Lecturers and CI without Docker Hub still need a base: ``busybox`` (from Debian's
busybox-static, about 2 MB) and ``debootstrap`` minbase Debian (about 200 MB, needs root;
``cached_debian_rootfs`` makes it at most once a day).
"""

from __future__ import annotations

import datetime
import os
import shutil
import subprocess
from pathlib import Path

from .errors import NbcontainerError

BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
DEBIAN_MIRROR = "http://deb.debian.org/debian"

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
                       mirror: str = DEBIAN_MIRROR) -> Path:
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


def cached_debian_rootfs(cache_dir: Path, suite: str = "bookworm",
                         mirror: str = DEBIAN_MIRROR) -> Path:
    """``make_debian_rootfs`` at most once a day: ``<cache_dir>/debian-<suite>-<YYYYMMDD>``,
    shared by every process that asks the same day (made in a temporary sibling and
    published by rename, marked ``.complete``; earlier days are left for their users)."""
    dest = Path(cache_dir) / f"debian-{suite}-{datetime.date.today():%Y%m%d}"
    if (dest / ".complete").exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f"{dest.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        make_debian_rootfs(tmp, suite, mirror)
    except subprocess.CalledProcessError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise NbcontainerError(f"debootstrap {suite} from {mirror} failed (exit {e.returncode})",
                               hint="check the network and the Debian mirror") from e
    except BaseException:  # interrupted or refused: no half-made tree stays behind
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    (tmp / ".complete").touch()
    try:
        os.rename(tmp, dest)
    except OSError:  # another process published the same day's tree first
        shutil.rmtree(tmp, ignore_errors=True)
    return dest

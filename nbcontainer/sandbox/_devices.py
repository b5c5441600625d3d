"""The minimal ``/dev`` every RUN gets, the way runc/Docker lay it out.

A fresh tmpfs holds empty files onto which the host's device nodes are bind-mounted: bind mounts
work inside a user namespace where ``mknod`` does not, and nothing under ``/dev`` ever reaches the
overlay's upper dir. Loaded by the helper process (stdlib + siblings only).
"""

from __future__ import annotations

import os

from . import _namespaces as ns

DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
SYMLINKS = (
    ("pts/ptmx", "ptmx"),
    ("/proc/self/fd", "fd"),
    ("/proc/self/fd/0", "stdin"),
    ("/proc/self/fd/1", "stdout"),
    ("/proc/self/fd/2", "stderr"),
)


def setup_dev(dev: str, *, tty_group: bool, host_dev: str = "/dev") -> None:
    """Populate ``dev`` (an empty, freshly mounted tmpfs) with devices, devpts and shm."""
    for name in DEVICES:
        path = f"{dev}/{name}"
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o666))
        ns.mount(f"{host_dev}/{name}", path, None, ns.MS_BIND)
    os.mkdir(f"{dev}/pts", 0o755)
    # gid=5 (tty) only exists when the id map covers it (root or a subordinate range).
    opts = "newinstance,ptmxmode=0666,mode=0620" + (",gid=5" if tty_group else "")
    ns.mount("devpts", f"{dev}/pts", "devpts", ns.MS_NOSUID | ns.MS_NOEXEC, opts)
    os.mkdir(f"{dev}/shm")
    ns.mount("shm", f"{dev}/shm", "tmpfs", ns.MS_NOSUID | ns.MS_NODEV | ns.MS_NOEXEC,
             "mode=1777,size=65536k")
    for target, name in SYMLINKS:
        os.symlink(target, f"{dev}/{name}")

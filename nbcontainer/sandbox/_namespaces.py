"""Thin ctypes wrappers for the namespace and mount syscalls Python 3.11 lacks.

Python 3.11 has no ``os.unshare``/``os.mount``; ``pivot_root``, ``openat2`` and ``mount_setattr``
have no glibc wrapper at all, so they go through ``syscall(2)`` by number. Loaded only inside the
helper process (stdlib only). Every failure raises ``OSError`` with the real errno and the step.
"""

from __future__ import annotations

import ctypes
import os
import struct

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_STRICTATIME = 1 << 24
MNT_DETACH = 2

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
PR_CAPBSET_DROP = 24

RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_IN_ROOT = 0x10
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
MOUNT_ATTR_RDONLY = 0x1

# Syscall numbers: pivot_root differs per arch; openat2/mount_setattr share the unified table.
_SYSCALLS = {
    "x86_64": {"pivot_root": 155, "openat2": 437, "mount_setattr": 442},
    "aarch64": {"pivot_root": 41, "openat2": 437, "mount_setattr": 442},
    "riscv64": {"pivot_root": 41, "openat2": 437, "mount_setattr": 442},
    "ppc64le": {"pivot_root": 203, "openat2": 437, "mount_setattr": 442},
    "s390x": {"pivot_root": 217, "openat2": 437, "mount_setattr": 442},
}
_NR = _SYSCALLS.get(os.uname().machine, _SYSCALLS["x86_64"])  # not platform: slow to import

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                        ctypes.c_ulong]
_libc.syscall.restype = ctypes.c_long
_libc.socket.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]


def _fs(value: str | bytes | None) -> bytes | None:
    return os.fsencode(value) if value is not None else None


def _check(ret: int, step: str) -> int:
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{step}: {os.strerror(err)}")
    return ret


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def mount(source: str | None, target: str, fstype: str | None = None, flags: int = 0,
          data: str | None = None) -> None:
    step = f"mount {fstype or 'bind'} on {target}"
    _check(_libc.mount(_fs(source), _fs(target), _fs(fstype), flags, _fs(data)), step)


def umount(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(_fs(target), flags), f"umount {target}")


def pivot_root(new_root: str, put_old: str) -> None:
    ret = _libc.syscall(_NR["pivot_root"], _fs(new_root), _fs(put_old))
    _check(ret, "pivot_root")


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(_libc.sethostname(raw, len(raw)), "sethostname")


def prctl(option: int, arg2: int = 0) -> None:
    _check(_libc.prctl(option, arg2, 0, 0, 0), f"prctl {option}")


def openat2(dirfd: int, path: str, flags: int, resolve: int) -> int:
    """``openat2`` with ``RESOLVE_IN_ROOT``: image symlinks resolve inside the image."""
    how = struct.pack("QQQ", flags | os.O_CLOEXEC, 0, resolve)
    ret = _libc.syscall(_NR["openat2"], ctypes.c_int(dirfd), _fs(path), how,
                        ctypes.c_size_t(len(how)))
    return _check(ret, f"open {path}")


def open_in_root(rootfd: int, path: str) -> int:
    """O_PATH fd for ``path`` resolved as if ``rootfd`` were ``/`` (follows image symlinks)."""
    return openat2(rootfd, path.lstrip("/") or ".", os.O_PATH,
                   RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)


def make_readonly(path: str, recursive: bool = True) -> None:
    """Make a mount and (with ``mount_setattr``) all its submounts read-only in one call."""
    attr = struct.pack("QQQQ", MOUNT_ATTR_RDONLY, 0, 0, 0)
    flags = AT_RECURSIVE if recursive else 0
    ret = _libc.syscall(_NR["mount_setattr"], ctypes.c_int(-100), _fs(path),
                        ctypes.c_uint(flags), attr, ctypes.c_size_t(len(attr)))
    if ret < 0 and ctypes.get_errno() == 38:  # ENOSYS: pre-5.12 kernel, top mount only
        st = os.statvfs(path)
        keep = st.f_flag & (MS_NOSUID | MS_NODEV | MS_NOEXEC)
        mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | keep)
        return
    _check(ret, f"read-only remount of {path}")


def drop_bounding_caps(keep: frozenset[int]) -> None:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            last = int(f.read())
    except OSError:
        last = 40
    for cap in range(last + 1):
        if cap not in keep:
            _check(_libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), f"drop capability {cap}")


def loopback_up() -> None:
    """Bring ``lo`` up in a fresh network namespace (``ip link set lo up`` without ``ip``)."""
    import fcntl

    fd = _check(_libc.socket(2, 2, 0), "socket")  # AF_INET, SOCK_DGRAM
    try:
        req = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(fd, 0x8913, req))[1]  # SIOCGIFFLAGS
        fcntl.ioctl(fd, 0x8914, struct.pack("16sH22x", b"lo", flags | 0x1))  # SIOCSIFFLAGS, IFF_UP
    finally:
        os.close(fd)

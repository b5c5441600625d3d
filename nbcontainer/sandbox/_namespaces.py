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
MS_MOVE = 8192

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
PR_CAPBSET_DROP = 24
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4

RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_IN_ROOT = 0x10
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
KEYCTL_JOIN_SESSION_KEYRING = 1

# Syscall numbers: pivot_root differs per arch; openat2/mount_setattr share the unified table.
_SYSCALLS = {
    "x86_64": {"pivot_root": 155, "keyctl": 250, "openat2": 437, "mount_setattr": 442},
    "aarch64": {"pivot_root": 41, "keyctl": 219, "openat2": 437, "mount_setattr": 442},
    "riscv64": {"pivot_root": 41, "keyctl": 219, "openat2": 437, "mount_setattr": 442},
    "ppc64le": {"pivot_root": 203, "keyctl": 280, "openat2": 437, "mount_setattr": 442},
    "s390x": {"pivot_root": 217, "keyctl": 280, "openat2": 437, "mount_setattr": 442},
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
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.capset.argtypes = [ctypes.c_void_p, ctypes.c_void_p]


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


def set_mount_attrs(path: str, attrs: int, recursive: bool = True) -> None:
    """Add ``MOUNT_ATTR_*`` flags to a mount (and its submounts) in one call."""
    attr = struct.pack("QQQQ", attrs, 0, 0, 0)
    flags = AT_RECURSIVE if recursive else 0
    ret = _libc.syscall(_NR["mount_setattr"], ctypes.c_int(-100), _fs(path),
                        ctypes.c_uint(flags), attr, ctypes.c_size_t(len(attr)))
    if ret < 0 and ctypes.get_errno() == 38:  # ENOSYS: pre-5.12 kernel, top mount only
        st = os.statvfs(path)
        keep = st.f_flag & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
        add = (MS_RDONLY if attrs & MOUNT_ATTR_RDONLY else 0) | \
            (MS_NODEV if attrs & MOUNT_ATTR_NODEV else 0) | \
            (MS_NOSUID if attrs & MOUNT_ATTR_NOSUID else 0)
        mount(None, path, None, MS_REMOUNT | MS_BIND | keep | add)
        return
    _check(ret, f"remount of {path}")


def setns(fd: int, nstype: int) -> None:
    _check(_libc.setns(fd, nstype), "setns")


def join_session_keyring() -> None:
    """A new, empty anonymous session keyring (what runc gives every container)."""
    ret = _libc.syscall(_NR["keyctl"], ctypes.c_int(KEYCTL_JOIN_SESSION_KEYRING),
                        ctypes.c_void_p(None))
    _check(ret, "keyctl(JOIN_SESSION_KEYRING)")


def set_capabilities(effective: int, permitted: int, inheritable: int) -> None:
    """capset(2), version 3 (64-bit sets); then the ambient set emptied."""
    header = struct.pack("Ii", 0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this thread
    data = struct.pack("IIIIII", effective & 0xFFFFFFFF, permitted & 0xFFFFFFFF,
                       inheritable & 0xFFFFFFFF, effective >> 32, permitted >> 32,
                       inheritable >> 32)
    _check(_libc.capset(header, data), "capset")
    _check(_libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "clear ambient caps")


# Landlock (unified syscall numbers): ABI 6 (Linux 6.12) scopes abstract unix sockets and
# signals to the domain, which the ptrace rung needs: it has no network namespace of its own.
LANDLOCK_CREATE_RULESET, LANDLOCK_RESTRICT_SELF = 444, 446
LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET, LANDLOCK_SCOPE_SIGNAL = 0x1, 0x2
PR_SET_NO_NEW_PRIVS = 38


def landlock_abi() -> int:
    """The kernel's Landlock ABI version (0: none)."""
    abi = _libc.syscall(LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    return max(int(abi), 0)


def landlock_scope() -> bool:
    """Keep this process and its descendants from connecting to abstract unix sockets and
    signalling processes made outside (sets no_new_privs); False where the kernel cannot."""
    if landlock_abi() < 6:
        return False
    attr = struct.pack("QQQ", 0, 0, LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | LANDLOCK_SCOPE_SIGNAL)
    fd = _libc.syscall(LANDLOCK_CREATE_RULESET, attr, ctypes.c_size_t(len(attr)),
                       ctypes.c_uint32(0))
    if fd < 0:
        return False
    try:
        _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
        return bool(_libc.syscall(LANDLOCK_RESTRICT_SELF, ctypes.c_int(fd),
                                  ctypes.c_uint32(0)) == 0)
    finally:
        os.close(fd)


def last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return 40


def drop_bounding_caps(keep: frozenset[int]) -> None:
    for cap in range(last_cap() + 1):
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

"""The sandbox's seccomp programs: small filters the rungs need, and Docker-format profiles.

Small filters, assembled by hand (stdlib only, no libseccomp):

* ``statx`` → ENOSYS under ptrace: Debian's proot 5.1.0 does not translate ``statx``, so
  ``ls``/``stat`` would see the host; refused, glibc and coreutils fall back to
  ``newfstatat``, which proot translates. ERRNO outranks proot's TRACE, so proot never sees it.
* ``chown`` to an id a single-id map lacks → success without effect (what ``proot -0`` and
  fakeroot do): only container root exists, and ``chown app`` must not fail the RUN. The
  builder says once that such ownership is not kept.
* ``socket`` for any family but AF_UNIX → EACCES: the ptrace rung has no network namespace,
  so a RUN without network (the private network unavailable, or ``--network=none``) gets no
  sockets that could reach one.

Profiles (Docker's default, ``_seccomp_profile.py``, or a user's ``--security-opt
seccomp=FILE``) are compiled by the caller through libseccomp (``compile_profile``).

Every program is loaded in the helper just before ``execve`` (``install``); filters stack
with each other and with any the caller runs under (the strictest answer wins).
"""

from __future__ import annotations

import ctypes
import os
import struct

TYPE_CHECKING = False  # (the helper does not import typing)
if TYPE_CHECKING:
    from typing import Any

    Json = dict[str, Any]

# seccomp_data offsets and BPF opcodes (linux/filter.h, linux/seccomp.h)
_NR, _ARCH, _ARGS = 0, 4, 16
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_RET_K = 0x06
RET_ALLOW = 0x7FFF0000
RET_ERRNO = 0x00050000
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
ENOSYS, EACCES = 38, 13
AF_UNIX = 1
_ANY_ID = 0xFFFFFFFF  # chown's "leave unchanged"
_X32 = 0x40000000


class _Arch:
    """What the hand-made filters need to know about an architecture."""

    def __init__(self, audit: int, statx: int, chowns: dict[int, tuple[int, int]],
                 sockets: tuple[int, ...], compat: tuple[int, tuple[int, ...]] | None) -> None:
        self.audit, self.statx, self.chowns = audit, statx, chowns
        self.sockets = sockets  # syscall numbers of socket() (native and x32)
        self.compat = compat  # (AUDIT_ARCH, socket-making syscalls) of the 32-bit ABI


# {chown-like syscall: (uid arg, gid arg)}; compat: i386's socketcall and socket, arm's socket
_ARCHES = {
    "x86_64": _Arch(0xC000003E, 332, {92: (1, 2), 93: (1, 2), 94: (1, 2), 260: (2, 3)},
                    (41, _X32 | 41), (0x40000003, (102, 359))),
    "aarch64": _Arch(0xC00000B7, 291, {55: (1, 2), 54: (2, 3)}, (198,), (0x40000028, (281,))),
}


class _Program:
    """A BPF program with forward jumps to labels."""

    def __init__(self) -> None:
        self.code: list[tuple[int, int | str, int | str, int]] = []
        self.labels: dict[str, int] = {}

    def op(self, code: int, k: int, jt: int | str = 0, jf: int | str = 0) -> None:
        self.code.append((code, jt, jf, k))

    def label(self, name: str) -> None:
        self.labels[name] = len(self.code)

    def assemble(self) -> bytes:
        out = b""
        for index, (code, jt, jf, k) in enumerate(self.code):
            out += struct.pack("HBBI", code, self._rel(jt, index), self._rel(jf, index), k)
        return out

    def _rel(self, target: int | str, index: int) -> int:
        return self.labels[target] - index - 1 if isinstance(target, str) else target


def build(*, statx_enosys: bool = False, fake_chown: bool = False, sockets: bool = True,
          machine: str | None = None) -> bytes | None:
    """The filter program, or None when there is nothing to filter on this architecture."""
    arch = _ARCHES.get(machine or os.uname().machine)
    if arch is None or not (statx_enosys or fake_chown or not sockets):
        return None
    p = _Program()
    p.op(_LD_W_ABS, _ARCH)
    p.op(_JEQ_K, arch.audit, "native", 0)
    if not sockets and arch.compat is not None:  # the 32-bit ABI's ways to a socket
        p.op(_JEQ_K, arch.compat[0], 0, "allow")
        p.op(_LD_W_ABS, _NR)
        for nr in arch.compat[1]:
            p.op(_JEQ_K, nr, "eacces", 0)
    p.op(_RET_K, RET_ALLOW)
    p.label("native")
    p.op(_LD_W_ABS, _NR)
    if statx_enosys:
        p.op(_JEQ_K, arch.statx, "enosys", 0)
    if fake_chown:
        for nr in arch.chowns:
            p.op(_JEQ_K, nr, f"chown{nr}", 0)
    if not sockets:
        for nr in arch.sockets:
            p.op(_JEQ_K, nr, "socket", 0)
    p.op(_RET_K, RET_ALLOW)
    if fake_chown:
        _chown_checks(p, arch.chowns)
    if not sockets:
        p.label("socket")  # socket(domain, ...): only AF_UNIX
        p.op(_LD_W_ABS, _ARGS)
        p.op(_JEQ_K, AF_UNIX, "allow", "eacces")
        p.label("eacces")
        p.op(_RET_K, RET_ERRNO | EACCES)
    if statx_enosys:
        p.label("enosys")
        p.op(_RET_K, RET_ERRNO | ENOSYS)
    p.label("allow")
    p.op(_RET_K, RET_ALLOW)
    return p.assemble()


def _chown_checks(p: _Program, chowns: dict[int, tuple[int, int]]) -> None:
    for nr, (uid_arg, gid_arg) in chowns.items():
        # Root (0) and "unchanged" (-1) are real; any other id is faked as success.
        p.label(f"chown{nr}")
        p.op(_LD_W_ABS, _ARGS + 8 * uid_arg)
        p.op(_JEQ_K, 0, f"gid{nr}", 0)
        p.op(_JEQ_K, _ANY_ID, f"gid{nr}", "fake")
        p.label(f"gid{nr}")
        p.op(_LD_W_ABS, _ARGS + 8 * gid_arg)
        p.op(_JEQ_K, 0, "allow", 0)
        p.op(_JEQ_K, _ANY_ID, "allow", "fake")
    p.label("fake")
    p.op(_RET_K, RET_ERRNO | 0)


def install(program: bytes, *, no_new_privs: bool) -> None:
    """Load ``program`` into this thread (and what it execs). Without CAP_SYS_ADMIN in its
    user namespace a process must set no_new_privs first."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong,
                           ctypes.c_ulong]
    if no_new_privs and libc.prctl(PR_SET_NO_NEW_PRIVS, 1, None, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(NO_NEW_PRIVS): {os.strerror(err)}")
    buf = ctypes.create_string_buffer(program, len(program))
    fprog = struct.pack("HxxxxxxP", len(program) // 8, ctypes.addressof(buf))
    raw = ctypes.create_string_buffer(fprog, len(fprog))
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.cast(raw, ctypes.c_void_p), 0,
                  0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"seccomp filter: {os.strerror(err)}")


# ---------------------------------------------------------------- Docker-format profiles
# Compiled through the system's libseccomp (ctypes; libseccomp2 is part of Debian's and
# Ubuntu's base): it knows every architecture's syscall numbers and builds the multi-arch
# BPF with 64-bit argument checks. Only the caller compiles (once per profile and capability
# set); the helper just loads the bytes with ``install``.

_ACTIONS = {"SCMP_ACT_KILL": 0x00000000, "SCMP_ACT_KILL_THREAD": 0x00000000,
            "SCMP_ACT_KILL_PROCESS": 0x80000000, "SCMP_ACT_TRAP": 0x00030000,
            "SCMP_ACT_ERRNO": RET_ERRNO, "SCMP_ACT_TRACE": 0x7FF00000,
            "SCMP_ACT_LOG": 0x7FFC0000, "SCMP_ACT_ALLOW": RET_ALLOW}
_OPS = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4,
        "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}
_EPERM = 1
_ATTR_BADARCH, _ATTR_NNP, _ATTR_OPTIMIZE = 2, 3, 8
# uname's machine -> Go's GOARCH, the names Docker profiles use in "includes"/"excludes"
_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "i686": "386", "armv7l": "arm",
           "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}
_NATIVE_ARCH = {"x86_64": "SCMP_ARCH_X86_64", "aarch64": "SCMP_ARCH_AARCH64",
                "ppc64le": "SCMP_ARCH_PPC64LE", "s390x": "SCMP_ARCH_S390X",
                "riscv64": "SCMP_ARCH_RISCV64"}


class ProfileError(ValueError):
    """A profile libseccomp cannot compile (unknown action, operator, architecture)."""


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64)]


def libseccomp() -> ctypes.CDLL | None:
    """The system's libseccomp.so.2, or None where it is not installed."""
    for name in ("libseccomp.so.2", "libseccomp.so"):
        try:
            lib = ctypes.CDLL(name, use_errno=True)
        except OSError:
            continue
        lib.seccomp_init.restype = ctypes.c_void_p
        lib.seccomp_init.argtypes = [ctypes.c_uint32]
        for fn in ("seccomp_arch_add", "seccomp_export_bpf", "seccomp_attr_set"):
            getattr(lib, fn).restype = ctypes.c_int
        lib.seccomp_arch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
        lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
        lib.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
        lib.seccomp_syscall_resolve_name.restype = ctypes.c_int
        lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
        lib.seccomp_rule_add_array.restype = ctypes.c_int
        lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                               ctypes.c_uint, ctypes.POINTER(_ArgCmp)]
        lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
        lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.seccomp_release.argtypes = [ctypes.c_void_p]
        return lib
    return None


def libseccomp_version() -> str:
    lib = libseccomp()
    if lib is None:
        return ""

    class _Version(ctypes.Structure):
        _fields_ = [("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint)]

    lib.seccomp_version.restype = ctypes.POINTER(_Version)
    v = lib.seccomp_version().contents
    return f"{v.major}.{v.minor}.{v.micro}"


def _kernel(release: str) -> tuple[int, ...]:
    parts = []
    for piece in release.split("-")[0].split(".")[:3]:
        digits = "".join(c for c in piece if c.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def _applies(entry: Json, caps: frozenset[str], goarch: str, kernel: tuple[int, ...]) -> bool:
    """Docker's ``includes``/``excludes``: capabilities, architectures, minimum kernel."""
    inc, exc = entry.get("includes") or {}, entry.get("excludes") or {}
    if inc.get("caps") and not all(c in caps for c in inc["caps"]):
        return False
    if inc.get("arches") and goarch not in inc["arches"]:
        return False
    if inc.get("minKernel") and kernel < _kernel(inc["minKernel"]):
        return False
    if exc.get("caps") and any(c in caps for c in exc["caps"]):
        return False
    return not (exc.get("arches") and goarch in exc["arches"])


def _action(name: str, errno: int | None, default_errno: int) -> int:
    if name not in _ACTIONS:
        raise ProfileError(f"unsupported seccomp action {name!r}")
    value = _ACTIONS[name]
    if name == "SCMP_ACT_ERRNO":
        value |= (default_errno if errno is None else errno) & 0xFFFF
    return value


def _conditions(args: list[Json]) -> list[list[_ArgCmp]]:
    """runc's rule: conditions on distinct arguments are ANDed in one rule; when one argument
    has several, each condition becomes a rule of its own (ORed)."""
    conds = []
    for a in args:
        if a["op"] not in _OPS:
            raise ProfileError(f"unsupported seccomp operator {a['op']!r}")
        conds.append(_ArgCmp(a["index"], _OPS[a["op"]], a["value"], a.get("valueTwo", 0)))
    indexes = [a["index"] for a in args]
    if len(set(indexes)) != len(indexes):
        return [[c] for c in conds]
    return [conds]


def _arches(profile: Json, machine: str) -> list[str]:
    native = _NATIVE_ARCH.get(machine)
    if native is None:
        raise ProfileError(f"no seccomp architecture for {machine}")
    for entry in profile.get("archMap") or []:
        if entry.get("architecture") == native:
            return [native, *entry.get("subArchitectures", [])]
    listed = profile.get("architectures") or [native]
    return [native, *[a for a in listed if a != native]]


def compile_profile(profile: Json, caps: frozenset[str], *, machine: str | None = None,
                    release: str | None = None) -> bytes:
    """A Docker-format seccomp profile as a BPF program for this architecture (and its
    compat ones), evaluated for a process holding ``caps`` (``CAP_*`` names)."""
    lib = libseccomp()
    if lib is None:
        raise ProfileError("libseccomp.so.2 is not installed")
    uname = os.uname()
    machine, release = machine or uname.machine, release or uname.release
    default_errno = profile.get("defaultErrnoRet") or _EPERM
    default = _action(profile.get("defaultAction", "SCMP_ACT_ERRNO"), None, default_errno)
    ctx = lib.seccomp_init(default)
    if not ctx:
        raise ProfileError("seccomp_init failed")
    try:
        lib.seccomp_attr_set(ctx, _ATTR_NNP, 0)  # we export, the helper decides on NNP
        lib.seccomp_attr_set(ctx, _ATTR_OPTIMIZE, 2)  # binary tree (2.5+; ignored before)
        for arch in _arches(profile, machine)[1:]:
            token = lib.seccomp_arch_resolve_name(arch.removeprefix("SCMP_ARCH_").lower().encode())
            if token and lib.seccomp_arch_add(ctx, token) not in (0, -17):  # -EEXIST: native
                raise ProfileError(f"libseccomp does not know architecture {arch}")
        goarch, kernel = _GOARCH.get(machine, machine), _kernel(release)
        for entry in profile.get("syscalls") or []:
            if not _applies(entry, caps, goarch, kernel):
                continue
            action = _action(entry["action"], entry.get("errnoRet"), default_errno)
            if action == default:
                continue  # libseccomp refuses a rule that repeats the default
            for name in entry.get("names") or [entry.get("name")]:
                nr = lib.seccomp_syscall_resolve_name(str(name).encode())
                if nr == -1:  # __NR_SCMP_ERROR: not a syscall this libseccomp knows
                    continue
                for conds in _conditions(entry.get("args") or []):
                    array = (_ArgCmp * len(conds))(*conds)
                    rc = lib.seccomp_rule_add_array(ctx, action, nr, len(conds), array)
                    if rc < 0 and rc != -17:
                        raise ProfileError(f"seccomp rule for {name}: {os.strerror(-rc)}")
        return _export(lib, ctx)
    finally:
        lib.seccomp_release(ctx)


def _export(lib: ctypes.CDLL, ctx: int) -> bytes:
    fd = os.memfd_create("nbseccomp", os.MFD_CLOEXEC)
    try:
        rc = lib.seccomp_export_bpf(ctx, fd)
        if rc < 0:
            raise ProfileError(f"seccomp_export_bpf: {os.strerror(-rc)}")
        os.lseek(fd, 0, os.SEEK_SET)
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)

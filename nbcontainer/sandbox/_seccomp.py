"""Small seccomp filters the rungs need, assembled by hand (no libseccomp, stdlib only).

* ``statx`` → ENOSYS under ptrace: Debian's proot 5.1.0 does not translate ``statx``, so
  ``ls``/``stat`` would see the host; refused, glibc and coreutils fall back to
  ``newfstatat``, which proot translates. ERRNO outranks proot's TRACE, so proot never sees it.
* ``chown`` to an id a single-id map lacks → success without effect (what ``proot -0`` and
  fakeroot do): only container root exists, and ``chown app`` must not fail the RUN. The
  builder says once that such ownership is not kept.

Loaded in the helper just before ``execve``; filters stack with any the caller runs under.
"""

from __future__ import annotations

import ctypes
import os
import struct

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
ENOSYS = 38
_ANY_ID = 0xFFFFFFFF  # chown's "leave unchanged"

# arch -> (AUDIT_ARCH, statx, {chown-like syscall: (uid arg, gid arg)})
_ARCHES = {
    "x86_64": (0xC000003E, 332, {92: (1, 2), 93: (1, 2), 94: (1, 2), 260: (2, 3)}),
    "aarch64": (0xC00000B7, 291, {55: (1, 2), 54: (2, 3)}),
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


def build(*, statx_enosys: bool = False, fake_chown: bool = False,
          machine: str | None = None) -> bytes | None:
    """The filter program, or None when there is nothing to filter on this architecture."""
    arch = _ARCHES.get(machine or os.uname().machine)
    if arch is None or not (statx_enosys or fake_chown):
        return None
    audit_arch, statx, chowns = arch
    p = _Program()
    p.op(_LD_W_ABS, _ARCH)
    p.op(_JEQ_K, audit_arch, 0, "allow")
    p.op(_LD_W_ABS, _NR)
    if statx_enosys:
        p.op(_JEQ_K, statx, "enosys", 0)
    if fake_chown:
        for nr in chowns:
            p.op(_JEQ_K, nr, f"chown{nr}", 0)
    p.op(_RET_K, RET_ALLOW)
    if fake_chown:
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
    if statx_enosys:
        p.label("enosys")
        p.op(_RET_K, RET_ERRNO | ENOSYS)
    p.label("allow")
    p.op(_RET_K, RET_ALLOW)
    return p.assemble()


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

"""The hand-assembled seccomp filters, loaded for real in a child process."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from nbcontainer.sandbox import _seccomp

CHILD = textwrap.dedent("""
    import ctypes, os, subprocess, sys
    sys.path.insert(0, sys.argv[1])
    import _seccomp
    path = sys.argv[2]
    _seccomp.install(_seccomp.build(statx_enosys=True, fake_chown=True), no_new_privs=True)
    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(256)
    rc = libc.syscall(332, -100, path.encode(), 0, 0x7ff, buf)
    print("statx", rc, ctypes.get_errno())
    os.chown(path, 4321, 4321)  # faked: succeeds, changes nothing
    print("owner", os.stat(path).st_uid)
    os.chown(path, 0, -1)  # root and "unchanged" are real
    print("stat", subprocess.run(["stat", "-c", "%s", path], capture_output=True,
                                 text=True).stdout.strip())
""")


def test_program_shape() -> None:
    assert _seccomp.build() is None
    assert _seccomp.build(statx_enosys=True, machine="s390x") is None
    program = _seccomp.build(statx_enosys=True, fake_chown=True, machine="x86_64")
    assert program is not None and len(program) % 8 == 0
    assert _seccomp.build(fake_chown=True, machine="aarch64") is not None


def test_statx_refused_and_chown_faked(tmp_path: Path) -> None:
    if _seccomp.build(statx_enosys=True, machine=None) is None or \
            subprocess.run(["uname", "-m"], capture_output=True, text=True).stdout.strip() \
            != "x86_64":
        return  # the syscall numbers below are x86_64's
    target = tmp_path / "f"
    target.write_text("12345")
    owner = target.stat().st_uid
    out = subprocess.run([sys.executable, "-c", CHILD, str(Path(_seccomp.__file__).parent),
                          str(target)], capture_output=True, text=True, check=True).stdout
    assert "statx -1 38" in out  # ENOSYS: glibc and coreutils fall back to newfstatat
    assert f"owner {owner}" in out
    assert "stat 5" in out  # coreutils' stat still works

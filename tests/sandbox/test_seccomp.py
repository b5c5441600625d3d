"""The hand-assembled seccomp filters, loaded for real in a child process."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

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


# ---------------------------------------------------------------- Docker-format profiles
PROFILE_CHILD = textwrap.dedent("""
    import ctypes, os, sys
    sys.path.insert(0, sys.argv[1])
    import _seccomp
    _seccomp.install(open(sys.argv[2], "rb").read(), no_new_privs=True)
    libc = ctypes.CDLL(None, use_errno=True)
    for name, nr, args in (("getpid", 39, ()), ("keyctl", 250, (0, -3, 0)),
                           ("socket_vsock", 41, (40, 1, 0)), ("socket_inet", 41, (2, 1, 0)),
                           ("unshare_user", 272, (0x10000000,)), ("chdir", 80, (b"/",))):
        rc = libc.syscall(nr, *args)
        print(name, "ok" if rc >= 0 else os.strerror(ctypes.get_errno()))
""")


def _profile_run(tmp_path: Path, caps: frozenset[str]) -> dict[str, str]:
    from nbcontainer.sandbox._seccomp_profile import PROFILE

    program = tmp_path / "prog"
    program.write_bytes(_seccomp.compile_profile(PROFILE, caps))
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", PROFILE_CHILD,
                           str(Path(_seccomp.__file__).parent), str(program)],
                          capture_output=True, text=True, check=True)
    return dict(line.split(" ", 1) for line in proc.stdout.splitlines())


def test_docker_profile_compiled_through_libseccomp(tmp_path: Path) -> None:
    got = _profile_run(tmp_path, frozenset({"CAP_CHOWN", "CAP_SETUID"}))
    assert got["getpid"] == "ok" and got["chdir"] == "ok" and got["socket_inet"] == "ok"
    refused = "Operation not permitted"
    assert got["keyctl"] == refused and got["socket_vsock"] == refused
    assert got["unshare_user"] == refused  # namespaces only with CAP_SYS_ADMIN


def test_profile_rules_follow_the_capabilities(tmp_path: Path) -> None:
    # with CAP_SYS_ADMIN, Docker's profile allows unshare (the kernel decides then)
    got = _profile_run(tmp_path, frozenset({"CAP_SYS_ADMIN"}))
    assert got["unshare_user"] == "ok"
    assert _seccomp._applies({"includes": {"caps": ["CAP_SYS_ADMIN"]}},
                             frozenset({"CAP_SYS_ADMIN"}), "amd64", (6, 1))
    assert not _seccomp._applies({"excludes": {"caps": ["CAP_SYS_ADMIN"]}},
                                 frozenset({"CAP_SYS_ADMIN"}), "amd64", (6, 1))
    assert not _seccomp._applies({"includes": {"minKernel": "6.9"}}, frozenset(), "amd64", (6, 1))
    two = [{"index": 0, "op": "SCMP_CMP_EQ", "value": 1},
           {"index": 0, "op": "SCMP_CMP_EQ", "value": 2}]
    assert len(_seccomp._conditions(two)) == 2  # one argument twice: ORed as two rules


def test_bad_profile_is_named() -> None:
    with pytest.raises(_seccomp.ProfileError, match="unsupported seccomp action"):
        _seccomp.compile_profile({"defaultAction": "SCMP_ACT_NOPE"}, frozenset())

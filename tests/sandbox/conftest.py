"""Fixtures for the sandbox tests: a busybox rootfs (sandbox notes section 7), per-RUN scratch
dirs, and an unprivileged user ``nbtest`` with a subordinate id range for rootless runs."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import zstandard

REPO = Path(__file__).resolve().parents[2]
# The unprivileged user's interpreter finds the project and its dependencies (the sandbox
# imports nbcontainer.layers, which needs the compression modules) on PYTHONPATH.
USER_PATH = f"{REPO}:{Path(zstandard.__file__).parents[1]}"
DRIVER = Path(__file__).with_name("rootless_driver.py")
BUSYBOX = shutil.which("busybox")
PASSWD = ("root:x:0:0:root:/root:/bin/sh\n"
          "app:x:1000:1000:app:/home/app:/bin/sh\n"
          "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
GROUP = "root:x:0:\napp:x:1000:\nextra:x:2000:app\nnogroup:x:65534:\n"

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


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


@pytest.fixture(scope="session")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if BUSYBOX is None or os.geteuid() != 0:
        pytest.skip("needs root and busybox-static")
    return make_busybox_rootfs(tmp_path_factory.mktemp("busybox") / "rootfs")


@pytest.fixture(scope="session")
def bare_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """No /etc/hosts, resolv.conf, hostname, /proc, /sys: mount targets must be stubbed."""
    if BUSYBOX is None or os.geteuid() != 0:
        pytest.skip("needs root and busybox-static")
    root = make_busybox_rootfs(tmp_path_factory.mktemp("bare") / "rootfs", etc_files=False)
    (root / "proc").rmdir()
    (root / "sys").rmdir()
    os.chmod(root / "etc", 0o750)
    os.utime(root / "etc", ns=(1_000_000_000 * 10**9, 1_000_000_000 * 10**9))
    return root


@dataclass
class Scratch:
    upper: Path
    work: Path
    base: Path


@pytest.fixture
def scratch(tmp_path: Path) -> Callable[[], Scratch]:
    counter = iter(range(1000))

    def make() -> Scratch:
        base = tmp_path / f"run{next(counter)}"
        (base / "upper").mkdir(parents=True)
        (base / "work").mkdir()
        return Scratch(base / "upper", base / "work", base)

    return make


# ------------------------------------------------------------------ rootless


@dataclass
class RootlessEnv:
    user: str
    uid: int
    gid: int
    subuid: int
    base: Path
    rootfs: Path
    python: str

    def run(self, request: dict) -> dict:
        """Run the driver as the unprivileged user; returns its JSON answer."""
        proc = subprocess.run(
            ["runuser", "-u", self.user, "--", "env", f"PYTHONPATH={USER_PATH}", self.python,
             str(DRIVER)], input=json.dumps(request).encode(), capture_output=True,
            timeout=60, cwd="/")
        assert proc.returncode == 0, proc.stderr.decode()
        return json.loads(proc.stdout)

    def scratch(self, name: str) -> tuple[Path, Path]:
        base = self.base / name
        for d in (base, base / "upper", base / "work"):
            d.mkdir()
            os.chown(d, self.uid, self.gid)
        return base / "upper", base / "work"


def _ensure_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "-m", name], check=False, capture_output=True)
        return pwd.getpwnam(name)  # another session may have created it meanwhile


def _ensure_subids(name: str, path: str) -> int:
    from nbcontainer.layers.idmap import subid_range

    found = subid_range(path, name, pwd.getpwnam(name).pw_uid)
    if found:
        return found[0]
    subprocess.run(["usermod", "--add-subuids" if "uid" in path else "--add-subgids",
                    "300000-365535", name], check=True)
    found = subid_range(path, name, pwd.getpwnam(name).pw_uid)
    assert found
    return found[0]


@pytest.fixture(scope="session")
def rootless(rootfs: Path) -> Iterator[RootlessEnv]:
    """``nbtest`` (created if missing) with a subuid range and a rootfs shifted into it."""
    if shutil.which("runuser") is None or shutil.which("newuidmap") is None:
        pytest.skip("needs runuser and uidmap")
    from nbcontainer.layers.idmap import IdMap, shift_tree

    entry = _ensure_user("nbtest")
    subuid = _ensure_subids("nbtest", "/etc/subuid")
    subgid = _ensure_subids("nbtest", "/etc/subgid")
    # The venv's interpreter lives under /root (mode 0700 here); the user needs one it can
    # execute: the system python3 of the same minor version, with USER_PATH.
    check = "import sys; assert sys.version_info >= (3, 11); import nbcontainer.sandbox"
    for python in (sys.executable, "/usr/bin/python3.11", "/usr/bin/python3"):
        if subprocess.run(["runuser", "-u", "nbtest", "--", "env", f"PYTHONPATH={USER_PATH}",
                           python, "-c", check],
                          capture_output=True).returncode == 0:
            break
    else:
        pytest.skip("no Python >= 3.11 the unprivileged user can execute")
    base = Path(tempfile.mkdtemp(prefix="nbsandbox-rootless-"))
    os.chown(base, entry.pw_uid, entry.pw_gid)
    lower = base / "rootfs"
    shutil.copytree(rootfs, lower, symlinks=True)
    mapping = IdMap.rootless(entry.pw_uid, entry.pw_gid, subuid, subgid)
    shift_tree(lower, mapping)
    try:
        yield RootlessEnv("nbtest", entry.pw_uid, entry.pw_gid, subuid, base, lower, python)
    finally:
        shutil.rmtree(base, ignore_errors=True)

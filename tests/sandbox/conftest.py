"""Fixtures for the sandbox tests: a busybox rootfs (sandbox notes section 7), per-RUN scratch
dirs, and an unprivileged user ``nbtest`` with a subordinate id range for rootless runs."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.rootfs import make_busybox_rootfs
from tests.support.sandbox import RootlessEnv, Scratch
from tests.support.scratch import fixture_dir
from tests.support.users import USER, ensure_subids, ensure_user, user_deps, user_python

BUSYBOX = shutil.which("busybox")


@pytest.fixture(scope="session")
def rootfs(request: pytest.FixtureRequest) -> Path:
    if BUSYBOX is None or os.geteuid() != 0:
        pytest.skip("needs root and busybox-static")
    return make_busybox_rootfs(fixture_dir(request, "busybox") / "rootfs")


@pytest.fixture(scope="session")
def bare_rootfs(request: pytest.FixtureRequest) -> Path:
    """No /etc/hosts, resolv.conf, hostname, /proc, /sys: mount targets must be stubbed."""
    if BUSYBOX is None or os.geteuid() != 0:
        pytest.skip("needs root and busybox-static")
    root = make_busybox_rootfs(fixture_dir(request, "bare") / "rootfs", etc_files=False)
    (root / "proc").rmdir()
    (root / "sys").rmdir()
    os.chmod(root / "etc", 0o750)
    os.utime(root / "etc", ns=(1_000_000_000 * 10**9, 1_000_000_000 * 10**9))
    return root


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


@pytest.fixture(scope="session")
def rootless(rootfs: Path) -> Iterator[RootlessEnv]:
    """``nbtest`` (created if missing) with a subuid range and a rootfs shifted into it."""
    if shutil.which("runuser") is None or shutil.which("newuidmap") is None:
        pytest.skip("needs runuser and uidmap")
    from nbcontainer.layers.idmap import IdMap, shift_tree

    entry = ensure_user(USER)
    subuid = ensure_subids(USER, "/etc/subuid")
    subgid = ensure_subids(USER, "/etc/subgid")
    # The venv's interpreter lives under /root (mode 0700 here); the user needs one it can
    # execute (the system python3 of the same minor version) and a readable copy of the
    # compiled dependencies (the sandbox imports nbcontainer.layers, which needs them).
    deps = user_deps()
    python = user_python(deps)
    base = Path(tempfile.mkdtemp(prefix="nbsandbox-rootless-"))
    os.chown(base, entry.pw_uid, entry.pw_gid)
    lower = base / "rootfs"
    shutil.copytree(rootfs, lower, symlinks=True)
    mapping = IdMap.rootless(entry.pw_uid, entry.pw_gid, subuid, subgid)
    shift_tree(lower, mapping)
    try:
        yield RootlessEnv(USER, entry.pw_uid, entry.pw_gid, subuid, base, lower, python,
                          (deps,))
    finally:
        shutil.rmtree(base, ignore_errors=True)

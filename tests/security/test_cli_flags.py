"""The containment flags on the command line (``build`` and ``run``), end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from nbcontainer.store import Store
from tests.support.marks import needs_root

pytestmark = needs_root


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nbcontainer.cli", "--root", str(home), *args],
                          capture_output=True, text=True, timeout=300)


def test_run_limits_and_network_flags(store: Store) -> None:
    home = store.home
    res = _cli(home, "run", "--pids-limit", "77", "busybox", "cat", "/sys/fs/cgroup/pids.max")
    assert res.returncode == 0 and res.stdout.strip() == "77", res.stderr
    res = _cli(home, "run", "--network", "host", "busybox", "true")
    assert res.returncode == 1 and "network.host entitlement" in res.stderr
    assert "--allow network.host" in res.stderr  # the hint
    res = _cli(home, "run", "--security-opt", "seccomp=unconfined", "busybox", "grep",
               "^Seccomp:", "/proc/self/status")
    assert res.stdout.split() == ["Seccomp:", "0"], res.stderr


def test_build_allow_flag(store: Store, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN --network=host true\n")
    res = _cli(store.home, "build", "-q", str(ctx))
    assert res.returncode == 1 and "network.host entitlement" in res.stderr
    res = _cli(store.home, "build", "-q", "--allow", "network.host", "-m", "256m", str(ctx))
    assert res.returncode == 0, res.stderr

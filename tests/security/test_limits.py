"""Limits: the build's cgroup as root (pids and memory), rlimits where none can be made."""

from __future__ import annotations

import os
from pathlib import Path

from nbcontainer.sandbox import Hardening, NamespaceExecutor, RunSpec
from nbcontainer.sandbox.limits import make_limits
from tests.support.marks import needs_root

pytestmark = needs_root


def test_root_build_gets_a_cgroup_with_both_limits(probe_rootfs: Path, tmp_path: Path) -> None:
    box = NamespaceExecutor(hardening=Hardening.parse(memory="64m", pids_limit=300))
    try:
        limits = box.limits
        assert limits.how == "cgroup"
        files = {name: Path(d, name).read_text().strip() for d in limits.dirs
                 for name in os.listdir(d) if name in ("pids.max", "memory.limit_in_bytes",
                                                       "memory.max")}
        assert files["pids.max"] == "300"
        assert int(files.get("memory.limit_in_bytes") or files["memory.max"]) == 64 << 20
        (tmp_path / "u").mkdir()
        (tmp_path / "w").mkdir()
        out: list[bytes] = []
        result = box.run(RunSpec([probe_rootfs], tmp_path / "u", tmp_path / "w",
                                 ["cat", "/sys/fs/cgroup/pids.max"], output=out.append))
        assert result.exit_code == 0 and b"".join(out).strip() == b"300"
        procs = Path(limits.procs[0]).read_text().split()
        assert procs  # the fork server and its spares run in it
        dirs = list(limits.dirs)
    finally:
        box.close()
    assert not any(os.path.exists(d) for d in dirs)  # removed with the executor


def test_memory_limit_is_enforced(probe_rootfs: Path, tmp_path: Path) -> None:
    (tmp_path / "u").mkdir()
    (tmp_path / "w").mkdir()
    with NamespaceExecutor(hardening=Hardening.parse(memory="32m")) as box:
        result = box.run(RunSpec([probe_rootfs], tmp_path / "u", tmp_path / "w",
                                 ["dd", "if=/dev/zero", "of=/dev/null", "bs=100M", "count=1"]))
    assert result.exit_code == 137 and result.signal == 9  # the OOM killer (no swap here)


def test_no_limits_at_all() -> None:
    limits = make_limits(None, None)
    assert limits.how == "none" and limits.describe() == "no limits"

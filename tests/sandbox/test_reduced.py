"""Pieces of the reduced and lower rungs, run for real as root: no pid namespace (the
helper reaps and kills what the command leaves), rbind /proc and chroot, and the refusal of
a RUN where no rung can run it, with every cause and remedy."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from nbcontainer.sandbox import NamespaceExecutor, PtraceExecutor, RunSpec, SandboxError
from nbcontainer.sandbox.ladder import Finding, Settings
from tests.support.sandbox import Scratch


def _sleepers(marker: str) -> list[str]:
    time.sleep(0.2)
    return subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.split()


def test_no_pid_namespace_leaves_no_process(rootfs: Path,
                                            scratch: Callable[[], Scratch]) -> None:
    s = scratch()
    box = NamespaceExecutor(settings=Settings(pid=False, proc="bind", pivot=False, uts=False))
    try:
        result = box.run(RunSpec([rootfs], s.upper, s.work, argv=[
            "/bin/sh", "-c", "sleep 7123 & setsid sleep 7124 & cat /proc/1/comm; hostname"]))
    finally:
        box.close()
    assert result.ok
    assert b"buildkitsandbox" not in result.output_tail  # no uts namespace: host's name
    assert _sleepers("sleep 712[34]") == []


def test_none_rung_names_every_cause(rootfs: Path, scratch: Callable[[], Scratch]) -> None:
    s = scratch()
    box = PtraceExecutor(None, why_not=[
        Finding("user namespaces", "a seccomp filter refuses unshare(CLONE_NEWUSER)",
                "install proot", "seccompProfile: Unconfined"),
        Finding("ptrace", "no proot on PATH", "install proot")])
    with pytest.raises(SandboxError) as err:
        box.run(RunSpec([rootfs], s.upper, s.work, argv=["true"]))
    assert "seccomp filter refuses unshare" in err.value.message
    assert "no proot on PATH" in err.value.message
    assert err.value.hint == "install proot; seccompProfile: Unconfined"

"""``info`` says which measures are in force on the rung builds use."""

from __future__ import annotations

from nbcontainer import api
from nbcontainer.store import Store


def _measures(tmp_path, isolation: str | None = None) -> dict[str, dict]:
    found = api.info(store=Store(tmp_path / "store"), isolation=isolation).to_dict()
    return {m["name"]: m for m in found["sandbox"]["measures"]}


def test_full_rung_measures(tmp_path) -> None:
    m = _measures(tmp_path, "full")
    for name in ("network namespace", "seccomp", "session keyring", "capabilities", "devices",
                 "masked paths", "pids limit"):
        assert m[name]["active"], name
    assert "slirp4netns" in m["network namespace"]["detail"]
    assert "libseccomp" in m["seccomp"]["detail"]
    assert "cgroup" in m["pids limit"]["detail"]  # root here: the pids controller


def test_ptrace_rung_says_what_it_lacks(tmp_path) -> None:
    m = _measures(tmp_path, "ptrace")
    assert not m["network namespace"]["active"]
    assert "AF_UNIX" in m["network namespace"]["detail"]
    assert m["seccomp"]["active"] and m["session keyring"]["active"]
    assert not m["devices"]["active"] and not m["masked paths"]["active"]
    assert "rlimits" in m["pids limit"]["detail"]

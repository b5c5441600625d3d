"""Where the private network cannot be made: said, and never the host's network silently.
(Unit tests of ``hardening`` and ``network``: the missing device is simulated.)"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nbcontainer.errors import NbcontainerError
from nbcontainer.sandbox import network
from nbcontainer.sandbox.hardening import EntitlementError, Hardening, effective_network


def test_default_network_without_a_stack_is_none_unless_host_is_allowed() -> None:
    assert effective_network("default", Hardening(), private=True) == "sandbox"
    assert effective_network("default", Hardening(), private=False) == "none"
    allowed = Hardening.parse(allow=["network.host"])
    assert effective_network("default", allowed, private=False) == "host"
    with pytest.raises(EntitlementError):
        effective_network("host", Hardening(), private=True)


def test_unusable_tun_is_explained(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setattr(network, "TUN", str(tmp_path / "no-tun"))
    stack = network.detect(refresh=True)
    try:
        assert not stack.usable
        assert "cannot be opened" in stack.problem and "--device /dev/net/tun" in stack.remedy
    finally:
        monkeypatch.undo()
        assert network.detect(refresh=True).usable


@pytest.mark.parametrize("flags, message", [
    ({"allow": ["network.everything"]}, "unknown entitlement"),
    ({"security_opt": ["apparmor=x"]}, "unsupported --security-opt"),
    ({"memory": "1k"}, "below the minimum"),
    ({"memory": "lots"}, "invalid --memory"),
])
def test_bad_options_are_named(flags: dict, message: str) -> None:
    with pytest.raises(NbcontainerError, match=message):
        Hardening.parse(**flags)


def test_options_parse() -> None:
    h = Hardening.parse(allow=["network.host"], security_opt=["seccomp=unconfined"],
                        memory="512m", pids_limit=0)
    assert h.allow == {"network.host"} and h.seccomp == "unconfined"
    assert h.memory == 512 << 20 and h.pids_limit is None
    assert Hardening().pids_limit == 2048


def test_build_without_a_usable_tun_says_so_and_gets_no_network(
        store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pod without /dev/net/tun (simulated: the device path points nowhere)."""
    from nbcontainer import api
    from nbcontainer.progress import Collector, Kind

    monkeypatch.setattr(network, "TUN", str(tmp_path / "no-tun"))
    network.detect(refresh=True)
    try:
        ctx = tmp_path / "ctx"
        ctx.mkdir()
        events = Collector()
        dest = tmp_path / "out"
        api.build("FROM busybox\nRUN ls /sys/class/net > /out\n", ctx, store=store,
                  progress=events, output=f"type=local,dest={dest}")
        warnings = [e.text for e in events.events if e.kind == Kind.WARNING]
        assert any("no private network for RUN steps" in w and "/dev/net/tun" in w
                   for w in warnings), warnings
        assert (dest / "out").read_text().split() == ["lo"]  # none, not the host's
        api.build("FROM busybox\nRUN ls /sys/class/net > /out\n", ctx, store=store,
                  no_cache=True, allow=["network.host"], output=f"type=local,dest={dest}")
        host = sorted(os.listdir("/sys/class/net"))
        assert (dest / "out").read_text().split() == host  # the host's, as explicitly allowed
    finally:
        monkeypatch.undo()
        network.detect(refresh=True)

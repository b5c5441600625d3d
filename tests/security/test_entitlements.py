"""Entitlements as BuildKit spells them: host network and insecure mode only when the build
allows them (CLI, API, notebook cell alike); the private network and ``--network=none``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from nbcontainer import api
from nbcontainer.errors import NbcontainerError
from nbcontainer.store import Store
from tests.support.bait import Bait
from tests.support.marks import needs_root

pytestmark = needs_root


def _build(store: Store, tmp_path: Path, run: str, **kw: object) -> str:
    """Build ``FROM busybox`` + ``run`` (which writes /out); return /out."""
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    dest = tmp_path / "dest"
    shutil.rmtree(dest, ignore_errors=True)
    api.build(f"FROM busybox\n{run}\n", ctx, store=store, no_cache=True,
              output=f"type=local,dest={dest}", **kw)  # type: ignore[arg-type]
    return (dest / "out").read_text()


def test_host_network_needs_the_entitlement(store: Store, tmp_path: Path) -> None:
    with pytest.raises(NbcontainerError, match="network.host entitlement") as e:
        _build(store, tmp_path, "RUN --network=host true > /out")
    assert "--allow network.host" in str(e.value.hint)


def test_host_network_with_the_entitlement_reaches_host_loopback(store: Store, tmp_path: Path,
                                                                 bait: Bait) -> None:
    url = f"http://127.0.0.1:{bait.http_port}/"
    out = _build(store, tmp_path, f"RUN --network=host timeout 10 wget -qO /out {url}",
                 allow=["network.host"])
    assert out == bait.marker


def test_default_network_is_private(store: Store, tmp_path: Path, bait: Bait) -> None:
    url = f"http://127.0.0.1:{bait.http_port}/"
    out = _build(store, tmp_path, "RUN (ls /sys/class/net; cat /etc/resolv.conf; "
                 f"timeout 10 wget -qO- {url} || echo refused) > /out 2>&1",
                 allow=["network.host"])  # allowed, but not asked for
    assert "tap0" in out and "nameserver 10.0.2.3" in out and "refused" in out
    assert bait.marker not in out


def test_network_none_has_only_loopback(store: Store, tmp_path: Path) -> None:
    out = _build(store, tmp_path, "RUN --network=none ls /sys/class/net > /out")
    assert out.split() == ["lo"]


def test_insecure_needs_the_entitlement(store: Store, tmp_path: Path) -> None:
    with pytest.raises(NbcontainerError, match="security.insecure"):
        _build(store, tmp_path, "RUN --security=insecure true > /out")


def test_insecure_with_the_entitlement(store: Store, tmp_path: Path) -> None:
    out = _build(store, tmp_path, "RUN --security=insecure grep -E '^(CapEff|Seccomp):' "
                 "/proc/self/status > /out", allow=["security.insecure"])
    fields = dict(line.split(":\t") for line in out.splitlines())
    assert fields["Seccomp"] == "0"
    assert int(fields["CapEff"], 16) >> 21 & 1  # every capability, as BuildKit's insecure


def test_seccomp_unconfined_and_pids_limit_options(store: Store, tmp_path: Path) -> None:
    out = _build(store, tmp_path, "RUN (grep '^Seccomp:' /proc/self/status; "
                 "cat /sys/fs/cgroup/pids.max) > /out",
                 security_opt=["seccomp=unconfined"], pids_limit=100)
    assert out.split() == ["Seccomp:", "0", "100"]


def test_no_entitlement_from_the_environment(store: Store, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUILDKIT_ALLOW", "network.host")  # nothing reads entitlements there
    monkeypatch.setenv("NBCONTAINER_ALLOW", "network.host")
    with pytest.raises(NbcontainerError, match="network.host entitlement"):
        _build(store, tmp_path, "RUN --network=host true > /out")


MOBY_PROFILE = Path("/usr/share/gocode/src/github.com/docker/docker/profiles/seccomp/"
                    "default.json")


def test_a_docker_profile_file(store: Store, tmp_path: Path) -> None:
    """moby's own default.json (Debian's golang-github-docker-docker-dev), as docker takes it."""
    out = _build(store, tmp_path, "RUN (grep '^Seccomp:' /proc/self/status; "
                 "unshare -U true || echo refused) > /out 2>&1",
                 security_opt=[f"seccomp={MOBY_PROFILE}"])
    assert out.startswith("Seccomp:\t2\n") and "refused" in out


def test_run_host_network_needs_the_entitlement(store: Store) -> None:
    with pytest.raises(NbcontainerError, match="network.host entitlement"):
        api.run("busybox", ["true"], store=store, network="host")
    out: list[bytes] = []
    assert api.run("busybox", ["ls", "/sys/class/net"], store=store, network="host",
                   allow=["network.host"], output=out.append) == 0
    assert b"lo" in b"".join(out) and b"tap0" not in b"".join(out)
    out.clear()
    assert api.run("busybox", ["ls", "/sys/class/net"], store=store, output=out.append) == 0
    assert b"".join(out).split() == [b"lo", b"tap0"]  # the private network by default


def test_a_remembered_build_is_not_answered_without_the_entitlement(store: Store,
                                                                     tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    df = "FROM busybox\nRUN --network=host true\n"
    api.build(df, ctx, store=store, allow=["network.host"])
    with pytest.raises(NbcontainerError, match="network.host entitlement"):
        api.build(df, ctx, store=store)

"""Each escape vector of the sandbox notes, tried by the probe as a RUN step: blocked in a
root build and a rootless build, and at least everything the references block."""

from __future__ import annotations

import pytest

from tests.support.bait import Verdicts
from tests.support.marks import needs_root

pytestmark = needs_root

VECTORS = (
    "http_loopback", "abstract_socket", "listen_port", "packet_socket", "raw_socket",
    "session_keyring", "user_keyring", "keyctl", "add_key", "unshare_user", "io_uring",
    "userfaultfd", "perf_event_open", "bpf", "af_vsock", "af_alg", "mknod_loop", "mknod_kmsg",
    "dev_kmsg", "cap_sys_admin", "cap_inheritable", "sys_firmware", "proc_acpi", "proc_kcore",
    "pids_limit", "seccomp")
# docker's probe runs with --network none (the private dockerd has no bridge)
NETWORK = ("http_loopback", "abstract_socket", "listen_port", "packet_socket", "raw_socket")


def _open(verdicts: Verdicts) -> dict[str, str]:
    return {v: detail for v, (verdict, detail) in verdicts.items() if verdict == "open"}


def test_root_build_blocks_every_vector(root_verdicts: Verdicts) -> None:
    assert sorted(root_verdicts) == sorted(VECTORS)
    assert _open(root_verdicts) == {}


def test_rootless_build_blocks_every_vector(rootless_verdicts: Verdicts) -> None:
    assert sorted(rootless_verdicts) == sorted(VECTORS)
    assert _open(rootless_verdicts) == {}


def test_ptrace_rung_blocks_every_vector(ptrace_verdicts: Verdicts) -> None:
    """No namespace to use: no sockets but AF_UNIX, proot's binds over the masked paths,
    Docker's capabilities without CAP_MKNOD, the profile, a fresh keyring, RLIMIT_NPROC."""
    assert sorted(ptrace_verdicts) == sorted(VECTORS)
    assert _open(ptrace_verdicts) == {}


def test_inheritable_sys_admin_of_the_caller_does_not_reach_run(root_run: dict,
                                                                root_verdicts: Verdicts) -> None:
    assert int(root_run["cap_inh"], 16) >> 21 & 1  # the builder ran with it inheritable
    verdict, detail = root_verdicts["cap_sys_admin"]
    assert verdict == "blocked", detail
    assert root_verdicts["cap_inheritable"][0] == "blocked"


def test_device_nodes_can_be_made_but_not_opened(root_verdicts: Verdicts) -> None:
    # as Docker's device cgroup: mknod works (CAP_MKNOD), opening the node does not (nodev)
    assert root_verdicts["mknod_kmsg"][1].startswith("mknod ok, open:")


def test_pids_limit_visible_inside(root_verdicts: Verdicts, rootless_verdicts: Verdicts) -> None:
    assert "pids.max 2048" in root_verdicts["pids_limit"][1]
    detail = rootless_verdicts["pids_limit"][1]
    assert "pids.max 2048" in detail or "RLIMIT_NPROC 2048" in detail


@pytest.mark.parametrize("build", ["root", "rootless"])
def test_blocks_at_least_what_podman_blocks(build: str, request: pytest.FixtureRequest,
                                            podman_verdicts: Verdicts) -> None:
    ours: Verdicts = request.getfixturevalue(f"{build}_verdicts")
    assert sorted(podman_verdicts) == sorted(VECTORS)
    weaker = {v: (ours[v], podman_verdicts[v]) for v in VECTORS
              if podman_verdicts[v][0] == "blocked" and ours[v][0] != "blocked"}
    assert weaker == {}


@pytest.mark.parametrize("build", ["root", "rootless"])
def test_blocks_at_least_what_docker_blocks(build: str, request: pytest.FixtureRequest,
                                            docker_verdicts: Verdicts) -> None:
    ours: Verdicts = request.getfixturevalue(f"{build}_verdicts")
    weaker = {v: (ours[v], docker_verdicts[v]) for v in VECTORS if v not in NETWORK
              and docker_verdicts[v][0] == "blocked" and ours[v][0] != "blocked"}
    assert weaker == {}

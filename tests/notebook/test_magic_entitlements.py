"""Entitlements in the notebook: a cell gets the host's network only by asking for it on
its own line (``--allow network.host``), as on the command line."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from nbcontainer.store import Store
from tests.support.bait import Bait
from tests.support.marks import needs_root

pytestmark = needs_root


@pytest.fixture
def server() -> Iterator[str]:
    """An HTTP server on the host's loopback (the Jupyter server's place)."""
    bait = Bait().start()
    try:
        yield f"http://127.0.0.1:{bait.http_port}/"
    finally:
        bait.stop()


def test_dockerfile_cell_gets_host_network_only_by_flag(ip, bb_store: Store, server: str) -> None:
    cell = f"FROM busybox\nRUN --network=host timeout 10 wget -qO- {server}\n"
    r = ip.run_cell(f"%%dockerfile -t nb-net\n{cell}")
    assert r.error_in_exec is not None and "network.host" in str(r.error_in_exec)
    r = ip.run_cell(f"%%dockerfile -t nb-net --allow network.host\n{cell}")
    assert r.error_in_exec is None, r.error_in_exec


def test_container_run_magic_gets_host_network_only_by_flag(ip, bb_store: Store) -> None:
    r = ip.run_cell("%container_run --network host busybox true")
    assert r.error_in_exec is not None and "network.host" in str(r.error_in_exec)
    r = ip.run_cell("%container_run --network host --allow network.host busybox true")
    assert r.error_in_exec is None, r.error_in_exec

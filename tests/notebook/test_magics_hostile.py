"""``%pull`` from a hostile registry (every mode of ``tests/support/registry.py``): the cell
fails with the NbcontainerError itself, shown as one line and its hint, no traceback; nothing
is tagged and the store stays consistent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from nbcontainer import api
from nbcontainer.errors import NbcontainerError
from tests.support.registry import HOSTILE_PULL, FaultProxy, Hostile, Registry
from tests.support.scratch import fixture_dir


@pytest.fixture(scope="module")
def hostile(request: pytest.FixtureRequest) -> Iterator[FaultProxy]:
    reg = Registry("plain", fixture_dir(request, "registry")).start()
    proxy = FaultProxy(reg.port).start()
    try:
        yield proxy
    finally:
        proxy.stop()
        reg.stop()


@pytest.mark.parametrize("mode", HOSTILE_PULL, ids=lambda m: m.name)
def test_pull_magic_from_a_hostile_registry(ip, home: Path, hostile: FaultProxy,  # noqa: ANN001
                                            mode: Hostile) -> None:
    repo = f"hostile/nb-{mode.name}"
    hostile.faults[:] = mode.faults(hostile, repo)
    r = ip.run_cell(f"%pull -q {hostile.host}/{repo}:1")
    exc = r.error_in_exec
    assert isinstance(exc, NbcontainerError), repr(exc)
    lines = [line for line in exc._render_traceback_()
             if not line.lstrip("\x1b[2m").startswith("hint: ")]
    assert len(lines) == 1 and mode.expect in lines[0], lines
    assert "Traceback" not in "\n".join(exc._render_traceback_())
    store = api.get_store()
    assert api.fsck().ok and not store.refs.read().tags

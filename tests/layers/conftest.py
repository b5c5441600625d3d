"""Fixtures for the layer codec tests (the helpers live in tests/support/layers.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.layers import Snapshot, TarBuilder, outside_state, snapshot


@pytest.fixture
def tar_builder() -> type[TarBuilder]:
    return TarBuilder


@pytest.fixture
def snap() -> Callable[..., Snapshot]:
    return snapshot


@pytest.fixture
def outside() -> Callable[[Path, Path], dict[str, tuple]]:
    return outside_state

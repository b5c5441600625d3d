"""Fixtures: three real registries (plain HTTP; TLS + htpasswd bcrypt; Bearer tokens from a
test issuer), a fault proxy, an isolated credential environment and a fresh store."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbcontainer.store import Store
from tests.support.registry import FaultProxy, Registry

_names = itertools.count()


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads or writes the real user's credentials or registry config."""
    for var in ("REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR", "NBCONTAINER_INSECURE_REGISTRIES",
                "NBCONTAINER_REGISTRY_MIRRORS", "NBCONTAINER_CERTS_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("NBCONTAINER_REGISTRIES_CONF", str(tmp_path / "registries.json"))


def _start(mode: str, factory: pytest.TempPathFactory) -> Iterator[Registry]:
    reg = Registry(mode, factory.mktemp(f"registry-{mode}")).start()
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="session")
def plain_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    yield from _start("plain", tmp_path_factory)


@pytest.fixture(scope="session")
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    yield from _start("tls", tmp_path_factory)


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    yield from _start("token", tmp_path_factory)


@pytest.fixture(params=["plain", "tls", "token"])
def any_registry(request: pytest.FixtureRequest) -> Registry:
    return request.getfixturevalue(f"{request.param}_registry")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store")


@pytest.fixture
def store2(tmp_path: Path) -> Store:
    return Store(tmp_path / "store2")


@pytest.fixture
def repo_name() -> str:
    return f"test/repo{next(_names)}"


@pytest.fixture
def proxy(plain_registry: Registry) -> Iterator[FaultProxy]:
    p = FaultProxy(plain_registry.port).start()
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog

"""Fixtures for the notebook tests: IPython's in-process test shell with the extension
loaded, an isolated store (``NBCONTAINER_HOME``) holding a busybox base, isolated registry
credentials."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbcontainer import api
from nbcontainer.store import Store
from tests.support.scratch import fixture_dir


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives JupyterLab in Debian's chromium")


@pytest.fixture(scope="session")
def busybox_dir(request: pytest.FixtureRequest) -> Path:
    if os.geteuid() != 0 or not shutil.which("busybox"):
        pytest.skip("needs root and busybox-static")
    from nbcontainer.rootfs import make_busybox_rootfs

    return make_busybox_rootfs(fixture_dir(request, "bb") / "rootfs")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh default store and credential files for this test only."""
    monkeypatch.setenv("NBCONTAINER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    monkeypatch.setenv("NBCONTAINER_REGISTRIES_CONF", str(tmp_path / "registries.json"))
    for var in ("REGISTRY_AUTH_FILE", "NBCONTAINER_REGISTRY_MIRRORS", "NBCONTAINER_DEBUG"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "home"


@pytest.fixture
def bb_store(home: Path, busybox_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    """The default store, holding ``busybox:latest``."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    st = api.get_store()
    api.import_image(busybox_dir, "busybox:latest", store=st, changes=['CMD ["sh"]'])
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    return st


@pytest.fixture(scope="session")
def _shell():
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.testing.globalipapp import start_ipython

    start_ipython()  # returns the shell only to its first caller (another suite may be first)
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "nbcontainer")
    return ip


@pytest.fixture
def ip(_shell, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator:
    """The test shell, working in a fresh directory (the build context of ``%%dockerfile``)."""
    ctx = tmp_path / "nb"
    ctx.mkdir()
    monkeypatch.chdir(ctx)
    yield _shell
    _shell.user_ns.pop("_", None)


@pytest.fixture(scope="package")
def nbenv(request: pytest.FixtureRequest):
    """The notebooks' registries and Debian base, as the demo makes them (one for this package:
    the nbval run and the browser run share the store, so the second build comes from the
    cache)."""
    from scripts.notebook_env import NotebookEnv

    env = NotebookEnv(fixture_dir(request, "nbenv")).start()
    try:
        yield env
    finally:
        env.stop()

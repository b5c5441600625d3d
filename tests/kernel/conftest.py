"""An image with python3, ipykernel and tinypkg (tests/support/kernels.py), built once for
this package into its own store; each test gets a private Jupyter data dir for its kernelspecs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from nbcontainer import api
from nbcontainer.store import Store
from tests.support.kernels import KernelImages
from tests.support.rootfs import debian_rootfs
from tests.support.scratch import fixture_dir


@pytest.fixture(scope="package")
def kernel_images(request: pytest.FixtureRequest) -> KernelImages:
    st = Store(fixture_dir(request, "kernel-store"))
    api.import_image(debian_rootfs(), "debian:bookworm", store=st, changes=['CMD ["bash"]'])
    images = KernelImages(st, fixture_dir(request, "kernel-ctx"))
    images.build("pykernel:1")
    return images


@pytest.fixture
def jupyter_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Private Jupyter data/runtime dirs (kernelspecs go here) and a private TMPDIR (the
    launcher's temp dir is checked for leftovers there)."""
    data = tmp_path / "jupyter-data"
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(data))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "jupyter-runtime"))
    monkeypatch.setenv("JUPYTER_PATH", str(data))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    yield data


@pytest.fixture(scope="package")
def busybox_home(request: pytest.FixtureRequest) -> Path:
    """A store holding ``busybox:latest`` (for run flags and the kernel commands)."""
    from tests.support.rootfs import make_busybox_rootfs

    home = fixture_dir(request, "busybox-store")
    rootfs = make_busybox_rootfs(fixture_dir(request, "busybox") / "rootfs")
    api.import_image(rootfs, "busybox:latest", store=Store(home), changes=['CMD ["sh"]'])
    return home


@pytest.fixture
def ip(busybox_home: Path, monkeypatch: pytest.MonkeyPatch):
    from IPython.testing.globalipapp import get_ipython

    monkeypatch.setenv("NBCONTAINER_HOME", str(busybox_home))
    api._stores.clear()
    shell = get_ipython()
    shell.run_line_magic("load_ext", "nbcontainer")
    yield shell
    api._stores.clear()

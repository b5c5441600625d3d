"""Fixtures for builder tests: a busybox base image in a fresh store, a context directory,
a builder bound to both, and the debootstrap Debian served by a local registry."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from nbcontainer import api
from nbcontainer.api import build
from nbcontainer.image import Image
from nbcontainer.store import Store
from tests.support.registry import Registry
from tests.support.rootfs import debian_rootfs, make_busybox_rootfs
from tests.support.scratch import fixture_dir

BUSYBOX = shutil.which("busybox")


@pytest.fixture(scope="session")
def busybox_rootfs(request: pytest.FixtureRequest) -> Path:
    if BUSYBOX is None or os.geteuid() != 0:
        pytest.skip("needs root and busybox-static")
    root = fixture_dir(request, "bbroot") / "rootfs"
    make_busybox_rootfs(root, etc_files=False)
    return root


@pytest.fixture
def bstore(tmp_path: Path, busybox_rootfs: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    """A fresh store holding ``busybox:latest`` (its own reproducible import)."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    st = Store(tmp_path / "store")
    api.import_image(busybox_rootfs, "busybox:latest", store=st)
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    return st


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    d = tmp_path / "ctx"
    d.mkdir()
    return d


Builder = Callable[..., Image]


@pytest.fixture
def do_build(bstore: Store, ctx: Path) -> Builder:
    def run(dockerfile: str, **kw) -> Image:
        kw.setdefault("store", bstore)
        return build(dockerfile, kw.pop("context", ctx), **kw)

    return run


@pytest.fixture(scope="module")
def debian_ref(request: pytest.FixtureRequest) -> Iterator[str]:
    """The debootstrap Debian pushed to a local registry: its reference there."""
    from nbcontainer import registry

    rootfs = debian_rootfs()
    reg = Registry("plain", fixture_dir(request, "debian-registry")).start()
    try:
        st = Store(fixture_dir(request, "debian-store"))
        ref = f"{reg.host}/debian:bookworm"
        api.import_image(rootfs, ref, store=st, changes=['CMD ["bash"]'])
        registry.push(st, ref)
        yield ref
    finally:
        reg.stop()

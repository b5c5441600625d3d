"""Fixtures for builder tests: a busybox base image in a fresh store, a context directory,
and helpers to flatten an image the way podman/umoci would."""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from nbcontainer import api
from nbcontainer.api import build
from nbcontainer.image import Image
from nbcontainer.progress import Collector
from nbcontainer.store import Store

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (sandbox, chown)")
BUSYBOX = shutil.which("busybox")


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if BUSYBOX is None or os.geteuid() != 0:
        pytest.skip("needs root and busybox-static")
    from sandbox.conftest import make_busybox_rootfs

    root = tmp_path_factory.mktemp("bbroot") / "rootfs"
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


def write(ctx: Path, files: dict[str, str | bytes]) -> None:
    for name, data in files.items():
        p = ctx / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            p.write_bytes(data)
        else:
            p.write_text(data)


def flatten(img: Image, dest: Path) -> Path:
    from nbcontainer.layers import apply_layers

    apply_layers(dest, [img.store.blobs.path(layer.digest) for layer in img.manifest.layers])
    return dest


def tree(root: Path) -> dict[str, tuple]:
    """path → (type, mode, uid, gid, size or link target, content) of a flattened tree."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("l", 0, st.st_uid, st.st_gid, os.readlink(p), None)
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("d", stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, 0, None)
            else:
                out[rel] = ("f", stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_size,
                            p.read_bytes() if st.st_size < 4096 else None)
    return out


def collector() -> Collector:
    return Collector()

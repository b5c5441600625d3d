"""Fixtures for the differential tests against buildah 1.28 (the harness and the list of
accepted differences live in tests/support/buildah.py)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbcontainer import api
from nbcontainer.store import Store
from tests.support.buildah import BASE, Env
from tests.support.rootfs import make_busybox_rootfs


@pytest.fixture(scope="session")
def diff_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    if os.geteuid() != 0 or not shutil.which("buildah") or not shutil.which("busybox"):
        pytest.skip("needs root, buildah and busybox")
    work = tmp_path_factory.mktemp("differential")
    rootfs = make_busybox_rootfs(work / "rootfs", etc_files=False)
    store = Store(work / "store")
    api.import_image(rootfs, BASE, store=store)
    archive = work / "bb.tar"
    api.save([BASE], archive, format="oci-archive", store=store)
    runroot = Path(f"/tmp/nbd{os.getpid()}")
    env = Env(work, archive, work / "buildah", runroot, store)
    proc = env.buildah("pull", "--quiet", f"oci-archive:{archive}")
    assert proc.returncode == 0, proc.stderr.decode()
    image_id = proc.stdout.decode().split()[-1]
    assert env.buildah("tag", image_id, BASE).returncode == 0
    try:
        yield env
    finally:
        env.buildah("rm", "--all")
        shutil.rmtree(runroot, ignore_errors=True)

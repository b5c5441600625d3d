"""Fixtures for the differential tests against docker's BuildKit (the reference) and buildah
1.28 (the second peer), and the summary that counts, per peer, identical builds and builds
with accepted differences. The harnesses live in tests/support/docker.py and
tests/support/buildah.py, the comparison in tests/support/differential.py."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbcontainer import api
from nbcontainer.store import Store
from tests.differential.cases import GAPS
from tests.support import buildah, docker
from tests.support.buildah import BASE, Env
from tests.support.differential import summary
from tests.support.docker import Dockerd
from tests.support.rootfs import make_busybox_rootfs
from tests.support.scratch import fixture_dir


@pytest.fixture(scope="package")
def diff_env(request: pytest.FixtureRequest) -> Iterator[Env]:
    if os.geteuid() != 0 or not shutil.which("buildah") or not shutil.which("busybox"):
        pytest.skip("needs root, buildah and busybox")
    work = fixture_dir(request, "differential")
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


@pytest.fixture(scope="package")
def docker_peer(dockerd: Dockerd, diff_env: Env) -> Dockerd:
    """The session's dockerd holding the same busybox base as ours and buildah's (loaded
    from our docker-archive: docker cannot reach Docker Hub here)."""
    archive = diff_env.work / "bb.docker.tar"
    api.save([BASE], archive, format="docker-archive", store=diff_env.store)
    dockerd.load(archive)
    return dockerd


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = summary({docker.PEER: docker.IGNORES, buildah.PEER: buildah.IGNORES}, GAPS)
    if lines:
        terminalreporter.section("differential builds: nbcontainer against its peers")
        for line in lines:
            terminalreporter.write_line(line)

"""Root of the test tree (a package: modules are ``tests.<suite>.test_x`` and shared code
is imported from ``tests.support``): the ``store`` fixture, the session's private Docker
engine (``dockerd``, shared by every suite that compares with it) and the no-skip rule."""

import os
from collections.abc import Iterator

import pytest

from tests.support.docker import Dockerd

PROBE_IMAGE = "localhost/nbcontainer-probe/busybox:latest"


@pytest.fixture
def store(tmp_path):
    from nbcontainer.store import Store

    return Store(tmp_path / "store")


@pytest.fixture(scope="session")
def dockerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dockerd]:
    """A private dockerd for the whole session (started on first use, once): its ``docker()``
    and ``command`` talk to it alone. On teardown it is stopped and must leave nothing
    behind (process, mount, socket, network setting)."""
    if os.geteuid() != 0:
        pytest.skip("the Docker engine tests need root")
    daemon = Dockerd(tmp_path_factory.mktemp("dockerd")).start()
    try:
        yield daemon
    finally:
        daemon.stop()
        left = daemon.leftovers()
        assert not left, f"the session's dockerd left {left}"


@pytest.fixture(scope="session")
def docker_busybox(dockerd: Dockerd, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A busybox image (users root, app/1000) in the session's dockerd, for probes run with
    ``dockerd.probe(image, command, profile)`` under docker run's security profiles."""
    from nbcontainer import api
    from nbcontainer.store import Store
    from tests.support.rootfs import make_busybox_rootfs

    work = tmp_path_factory.mktemp("docker-busybox")
    store = Store(work / "store")
    api.import_image(make_busybox_rootfs(work / "rootfs"), PROBE_IMAGE, store=store)
    api.save([PROBE_IMAGE], work / "busybox.tar", format="docker-archive", store=store)
    dockerd.load(work / "busybox.tar")
    return PROBE_IMAGE


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """No skip hides a missing tool or privilege: the set-up script installs everything the
    tests need, so a test that would skip fails instead, with the skip's reason."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = (f"skipped tests are not allowed here: {reason}\n"
                           "run scripts/setup.sh (as root) so every tool the tests need is there")

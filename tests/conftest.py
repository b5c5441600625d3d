"""Root of the test tree (a package: modules are ``tests.<suite>.test_x`` and shared code
is imported from ``tests.support``): the ``store`` fixture, the session's private Docker
engine (``dockerd``, shared by every suite that compares with it), the no-skip rule and the
temporary-directory check (a run that leaves more than ``NBC_TEST_TMP_LIMIT_MB`` behind in
the system's temporary directory fails: CI machines have finite disks)."""

import os
from collections.abc import Iterator

import pytest

from nbcontainer.humanize import size as megabytes
from tests.support.docker import Dockerd
from tests.support.scratch import TmpWatch, fixture_dir

PROBE_IMAGE = "localhost/nbcontainer-probe/busybox:latest"


@pytest.fixture
def store(tmp_path):
    from nbcontainer.store import Store

    return Store(tmp_path / "store")


@pytest.fixture(scope="session")
def dockerd(request: pytest.FixtureRequest) -> Iterator[Dockerd]:
    """A private dockerd for the whole session (started on first use, once): its ``docker()``
    and ``command`` talk to it alone. On teardown it is stopped and must leave nothing
    behind (process, mount, socket, network setting)."""
    if os.geteuid() != 0:
        pytest.skip("the Docker engine tests need root")
    daemon = Dockerd(fixture_dir(request, "dockerd")).start()
    try:
        yield daemon
    finally:
        daemon.stop()
        left = daemon.leftovers()
        assert not left, f"the session's dockerd left {left}"


@pytest.fixture(scope="session")
def docker_busybox(dockerd: Dockerd, request: pytest.FixtureRequest) -> str:
    """A busybox image (users root, app/1000) in the session's dockerd, for probes run with
    ``dockerd.probe(image, command, profile)`` under docker run's security profiles."""
    from nbcontainer import api
    from nbcontainer.store import Store
    from tests.support.rootfs import make_busybox_rootfs

    work = fixture_dir(request, "docker-busybox")
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


TMP_WATCH = pytest.StashKey[TmpWatch]()
TMP_LEFT = pytest.StashKey[dict[str, int]]()


def _tmp_limit() -> int:
    return int(os.environ.get("NBC_TEST_TMP_LIMIT_MB", "64")) * 1_000_000


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[TMP_WATCH] = TmpWatch()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """After the session's fixtures are torn down: what the run left in /tmp."""
    if TMP_WATCH not in session.config.stash:
        return
    left = session.config.stash[TMP_WATCH].leftovers()
    session.config.stash[TMP_LEFT] = left
    if sum(left.values()) > _tmp_limit() and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    left = config.stash.get(TMP_LEFT, {})
    if not left:
        return
    total = sum(left.values())
    limit = _tmp_limit()
    terminalreporter.section("left in the temporary directory", red=total > limit)
    for name, size in sorted(left.items(), key=lambda kv: -kv[1])[:20]:
        terminalreporter.line(f"{megabytes(size):>10}  {name}")
    terminalreporter.line(f"{megabytes(total):>10}  in all (limit {megabytes(limit)}: "
                          "a test that makes a directory outside tmp_path removes it)")

"""Root of the test tree (a package: modules are ``tests.<suite>.test_x`` and shared code
is imported from ``tests.support``): the ``store`` fixture and the no-skip rule."""

import pytest


@pytest.fixture
def store(tmp_path):
    from nbcontainer.store import Store

    return Store(tmp_path / "store")


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

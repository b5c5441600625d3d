"""The fuzz stage: every test here is marked ``fuzz`` (``pytest -m fuzz`` runs the stage
alone); the run's seed and what each target did are printed at the end of the run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.fuzz import settings

_HERE = Path(__file__).parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "fuzz: the fuzz stage (seeded, time-boxed)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.fuzz)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not settings.RESULTS:
        return
    terminalreporter.section("fuzz")
    terminalreporter.write_line(settings.replay_hint())
    for s in settings.RESULTS:
        outcome = "CRASH" if s.crash else ", ".join(f"{k} {v}" for k, v in
                                                   sorted(s.outcomes.items()))
        terminalreporter.write_line(f"  {s.target:<17} {s.inputs:>8} inputs in "
                                    f"{s.seconds:5.1f} s  ({outcome})")

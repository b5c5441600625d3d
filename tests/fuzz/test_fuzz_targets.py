"""Mutation fuzzing of every parser that reads outside data, seeded from real corpora (see
``tests/support/fuzz/targets.py`` for the table of targets and their errors).

Each target gets its share of the stage's time budget; the inputs depend only on the run's
seed, so a failure replays with ``NBCONTAINER_FUZZ_SEED``. A failure reports the input that
broke the parser, shrunk to a minimal one: add it to ``test_fuzz_regressions.py``.
"""

from __future__ import annotations

import pytest

from tests.support.fuzz import engine, settings
from tests.support.fuzz.targets import all_targets

TARGETS = all_targets()


@pytest.mark.parametrize("name", list(TARGETS))
def test_parser_only_raises_its_own_errors(name: str) -> None:
    target = TARGETS[name]
    seconds = settings.seconds_for(target, list(TARGETS.values()))
    try:
        stats = engine.run(target, settings.SEED, seconds)
        settings.RESULTS.append(stats)
        if stats.crash is not None:
            pytest.fail(f"{stats.crash.report()}\n{settings.replay_hint()}", pytrace=False)
        if target.finish is not None:
            target.finish()
    finally:
        if target.close is not None:
            target.close()
    assert stats.inputs > len(target.seeds()), "the budget did not even cover the seeds"

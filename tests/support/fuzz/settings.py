"""One seed and one time budget per test run, from the environment:

- ``NBCONTAINER_FUZZ_SEED``: replay a run (default: a fresh random seed, printed at the end of
  the run and in every failure);
- ``NBCONTAINER_FUZZ_SECONDS``: the mutation stage's budget in seconds, shared by the targets
  by weight (default 90: the fuzz stage adds about two minutes to CI).
"""

from __future__ import annotations

import os
import secrets

from .engine import Stats, Target

SEED = int(os.environ.get("NBCONTAINER_FUZZ_SEED") or secrets.randbelow(2**32))
BUDGET = float(os.environ.get("NBCONTAINER_FUZZ_SECONDS") or 90)
RESULTS: list[Stats] = []  # what each target did in this run, for the summary


def seconds_for(target: Target, targets: list[Target]) -> float:
    return BUDGET * target.weight / sum(t.weight for t in targets)


def replay_hint() -> str:
    return f"fuzz seed {SEED} (replay: NBCONTAINER_FUZZ_SEED={SEED}), budget {BUDGET:g} s"

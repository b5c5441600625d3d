#!/usr/bin/env bash
# Long fuzzing runs (the test suite's fuzz stage, for as long as you like): the harness is
# test code (tests/support/fuzz), run here as a program. Arguments: --help.
#   bash scripts/fuzz.sh --seconds 3600                      # every target, built-in engine
#   bash scripts/fuzz.sh --engine atheris --target config    # coverage-guided (pip install atheris)
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m tests.support.fuzz "$@"

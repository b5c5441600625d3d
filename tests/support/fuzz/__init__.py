"""Fuzzing every parser that reads outside data: a seeded mutation engine (``engine``), real
seed corpora (``corpus``), the targets (``targets``) and hypothesis strategies for OCI
documents (``strategies``). Used by ``tests/fuzz`` (time-boxed, in CI) and by
``scripts/fuzz.sh`` (long runs, through ``python -m tests.support.fuzz``)."""

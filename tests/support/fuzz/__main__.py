"""Long fuzzing runs of the parsers that read outside data (the CI stage runs the same targets
for about two minutes; see ``tests/fuzz``). ``scripts/fuzz.sh`` runs this module:

    bash scripts/fuzz.sh [--target NAME ...] [--seconds 600] [--seed N]
    bash scripts/fuzz.sh --engine atheris --target manifest --seconds 3600
    bash scripts/fuzz.sh --target config --replay crash-file

``--engine builtin`` (default) is the seeded mutation fuzzer of the test suite, structure-aware
(JSON documents, tar members), with its crash minimizer; the run replays with ``--seed``.
``--engine atheris`` runs one target under libFuzzer with coverage feedback from the
instrumented ``nbcontainer`` package (``pip install atheris``: a tool for these runs, not a
dependency of nbcontainer); its corpus starts from the same real seeds, and its crash files
replay with ``--replay``. Minimal crashing inputs are written to ``--crash-dir``; each becomes
a regression test in ``tests/fuzz/test_fuzz_regressions.py``.
"""

from __future__ import annotations

import argparse
import secrets
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def _targets():  # noqa: ANN202 - the targets table (imported late: atheris instruments it)
    from tests.support.fuzz.targets import all_targets

    return all_targets()


def run_builtin(names: list[str], seconds: float, seed: int, crash_dir: Path) -> int:
    from tests.support.fuzz import engine

    targets = _targets()
    chosen = [targets[n] for n in names]
    total_weight = sum(t.weight for t in chosen)
    print(f"fuzz: seed {seed}, {seconds:g} s over {len(chosen)} target(s)", flush=True)
    failed = 0
    for target in chosen:
        budget = seconds * target.weight / total_weight
        try:
            stats = engine.run(target, seed, budget)
            if stats.crash is None and target.finish is not None:
                target.finish()
        finally:
            if target.close is not None:
                target.close()
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(stats.outcomes.items()))
        print(f"  {target.name:<17} {stats.inputs:>9} inputs in {stats.seconds:7.1f} s  "
              f"({outcomes})", flush=True)
        if stats.crash is not None:
            failed += 1
            crash_dir.mkdir(parents=True, exist_ok=True)
            path = crash_dir / f"{target.name}-{seed}-{stats.crash.iteration}"
            path.write_bytes(stats.crash.minimal)
            print(stats.crash.report(), f"minimal input saved to {path}", sep="\n", flush=True)
    return 1 if failed else 0


def run_atheris(name: str, seconds: float, seed: int, crash_dir: Path, extra: list[str]) -> int:
    """libFuzzer in this process (it exits when done): instrument, seed, fuzz."""
    try:
        import atheris
    except ImportError:
        print("atheris is not installed: .venv/bin/pip install atheris", file=sys.stderr)
        return 2
    with atheris.instrument_imports(include=["nbcontainer"]):
        targets = _targets()
    if name not in targets:
        print(f"unknown target {name!r}; --list shows them", file=sys.stderr)
        return 2
    target = targets[name]
    corpus = Path(tempfile.mkdtemp(prefix=f"nbc-fuzz-{name}-"))
    for i, data in enumerate(target.seeds()):
        (corpus / f"seed-{i}").write_bytes(data)
    crash_dir.mkdir(parents=True, exist_ok=True)

    def one_input(data: bytes) -> None:
        try:
            target.feed(data)
        except target.allowed:
            pass

    argv = [sys.argv[0], f"-max_total_time={int(seconds)}", f"-seed={seed % 2**31}",
            f"-max_len={target.max_len}", "-timeout=10", "-rss_limit_mb=4096",
            f"-artifact_prefix={crash_dir}/{name}-", *extra, str(corpus)]
    print(f"fuzz: atheris, target {name}, seed {seed}, corpus {corpus}", flush=True)
    atheris.Setup(argv, one_input)
    atheris.Fuzz()
    return 0  # pragma: no cover - Fuzz() exits the process


def replay(name: str, path: Path) -> int:
    target = _targets()[name]
    data = path.read_bytes()
    t0 = time.perf_counter()
    try:
        target.feed(data)
        print(f"{name}: accepted ({time.perf_counter() - t0:.3f} s)")
    except target.allowed as exc:
        print(f"{name}: {type(exc).__name__}: {exc}")
    except Exception:  # noqa: BLE001 - a crash: show it whole
        traceback.print_exc()
        return 1
    finally:
        if target.close is not None:
            target.close()
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(prog="scripts/fuzz.sh",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--target", action="append", default=[],
                    help="a target name (repeatable; default: all)")
    ap.add_argument("--list", action="store_true", help="list the targets and exit")
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--engine", choices=("builtin", "atheris"), default="builtin")
    ap.add_argument("--crash-dir", type=Path, default=Path("fuzz-crashes"))
    ap.add_argument("--replay", type=Path, help="feed this one input to the target")
    args, extra = ap.parse_known_args()
    seed = args.seed if args.seed is not None else secrets.randbelow(2**32)
    if args.engine == "atheris" and len(args.target) == 1 and not args.replay:
        # before anything imports nbcontainer: atheris instruments the modules as they load
        return run_atheris(args.target[0], args.seconds, seed, args.crash_dir, extra)
    targets = list(_targets())
    if args.list:
        print("\n".join(targets))
        return 0
    names = args.target or targets
    unknown = sorted(set(names) - set(targets))
    if unknown:
        ap.error(f"unknown target(s) {', '.join(unknown)}; --list shows them")
    if args.replay:
        return replay(names[0], args.replay)
    if args.engine == "builtin":
        return run_builtin(names, args.seconds, seed, args.crash_dir)
    # libFuzzer owns its process: one child per target, the time split between them
    status = 0
    for name in names:
        cmd = [sys.executable, "-m", "tests.support.fuzz", "--engine", "atheris", "--target", name,
               "--seconds", str(max(1, int(args.seconds / len(names)))), "--seed", str(seed),
               "--crash-dir", str(args.crash_dir), *extra]
        status |= subprocess.run(cmd, cwd=ROOT).returncode
    return status


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Command-line start-up: what a user at a terminal waits for before any work.

    .venv/bin/python benchmarks/startup.py [--runs 20]

Rows (median wall time of ``--runs`` fresh processes, after one warm-up each):

- ``python -c pass``: the interpreter alone, the floor;
- ``nbcontainer --version``: target within 25 ms of the floor;
- ``nbcontainer images``: target under 100 ms (a store with one image);
- ``nbcontainer build`` fully cached (the build memo answers): the CLI's cached build, whose
  ratio to buildah is in ``benchmarks/build.py``;
- what of it is not the toolkit's own: the interpreter with the standard modules every verb
  needs (argparse, json, hashlib, pathlib, typing), and those plus ``dataclasses`` and as
  many dataclasses as a cached build defines (the model's value types: ``DATACLASSES``).

Then ``python -X importtime`` of each command: the modules that cost most (cumulative,
self-inclusive microseconds) and whether a module of ``nbcontainer.notebook``,
``nbcontainer.registry`` or ``nbcontainer.sandbox`` was imported (none should be: the test
``tests/builder/test_startup_imports.py`` guards the same rule).
A report, not a test: always exits 0.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HEAVY = ("nbcontainer.notebook", "nbcontainer.registry", "nbcontainer.sandbox")
STDLIB = "import argparse, json, hashlib, pathlib, typing"
DATACLASSES = 26  # defined by the modules a cached build imports (counted in the report)
_DEFINE = ("import dataclasses\nfor i in range({n}):\n    dataclasses.dataclass(frozen=True)("
           "type(f'C{{i}}', (), {{'__annotations__': {{'a': int, 'b': str, 'c': int}}, "
           "'b': '', 'c': 0}}))")


def cli() -> list[str]:
    exe = Path(sys.executable).with_name("nbcontainer")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "nbcontainer.cli"]


def wall(cmd: list[str], runs: int) -> float:
    subprocess.run(cmd, check=True, capture_output=True)  # warm-up: page cache, pyc files
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def import_profile(cmd: list[str], top: int = 8) -> tuple[list[tuple[int, str]], list[str]]:
    """The ``top`` costliest imports (cumulative µs, module) and the heavy modules loaded."""
    argv = [sys.executable, "-X", "importtime", "-m", "nbcontainer.cli", *cmd[len(cli()):]]
    err = subprocess.run(argv, capture_output=True, text=True, check=True).stderr
    rows = []
    for line in err.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = (part.strip() for part in line[len("import time:"):].split("|"))
        rows.append((int(cumulative), name.strip()))
    heavy = sorted({n for _, n in rows if n.startswith(HEAVY)})
    return sorted(rows, reverse=True)[:top], heavy


def dataclass_count(cmd: list[str]) -> int:
    """How many dataclasses the command's process defines (the modules it imports)."""
    probe = ("import dataclasses, sys, runpy\nn = [0]\nreal = dataclasses._process_class\n"
             "def count(*a, **k):\n    n[0] += 1\n    return real(*a, **k)\n"
             "dataclasses._process_class = count\nsys.argv = ['nbcontainer', *sys.argv[1:]]\n"
             "try:\n    runpy.run_module('nbcontainer.cli', run_name='__main__')\n"
             "except SystemExit:\n    pass\nsys.stderr.write(f'DATACLASSES {n[0]}\\n')")
    err = subprocess.run([sys.executable, "-c", probe, *cmd[len(cli()):]], capture_output=True,
                         text=True).stderr
    found = [line.split()[1] for line in err.splitlines() if line.startswith("DATACLASSES ")]
    return int(found[-1]) if found else -1


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    a = ap.parse_args()
    from nbcontainer import api
    from nbcontainer.rootfs import make_busybox_rootfs
    from nbcontainer.store import Store

    work = Path(tempfile.mkdtemp(prefix="nbbench-startup-"))
    try:
        store = Store(work / "store")
        api.import_image(make_busybox_rootfs(work / "rootfs"), "localhost/busybox:latest",
                         store=store)
        ctx = work / "ctx"
        ctx.mkdir()
        (ctx / "Dockerfile").write_text("FROM localhost/busybox:latest\nCOPY a /a\n"
                                        "RUN cat /a > /b\n")
        (ctx / "a").write_text("a\n")
        root = ["--root", str(store.home)]
        build = [*cli(), *root, "build", "-q", "-t", "localhost/app", str(ctx)]
        if os.geteuid() != 0:
            build = []  # (a RUN as an ordinary user needs the sandbox's set-up: see README)
        print(f"load average at start: {os.getloadavg()[0]:.2f}")
        floor = wall([sys.executable, "-c", "pass"], a.runs)
        version = wall([*cli(), "--version"], a.runs)
        images = wall([*cli(), *root, "images"], a.runs)
        print(f"{'python -c pass':<32} {floor * 1000:7.1f} ms")
        print(f"{'nbcontainer --version':<32} {version * 1000:7.1f} ms  (+{(version - floor) * 1000:.1f}"
              f" ms)  target within 25 ms: {'PASS' if version - floor <= 0.025 else 'FAIL'}")
        print(f"{'nbcontainer images':<32} {images * 1000:7.1f} ms  target < 100 ms: "
              f"{'PASS' if images < 0.1 else 'FAIL'}")
        commands = {"--version": [*cli(), "--version"], "images": [*cli(), *root, "images"]}
        if build:
            subprocess.run(build, check=True, capture_output=True)  # the build itself, once
            cached = wall(build, a.runs)
            print(f"{'nbcontainer build (cached)':<32} {cached * 1000:7.1f} ms")
            commands["build (cached)"] = build
            stdlib = wall([sys.executable, "-c", STDLIB], a.runs)
            with_dc = wall([sys.executable, "-c", STDLIB + "\n" + _DEFINE.format(n=DATACLASSES)],
                           a.runs)
            print(f"{'  of which python + stdlib':<32} {stdlib * 1000:7.1f} ms  ({STDLIB[7:]})")
            print(f"{'  + dataclasses, ' + str(DATACLASSES) + ' classes':<32} "
                  f"{with_dc * 1000:7.1f} ms  (the toolkit's own code: "
                  f"{(cached - with_dc) * 1000:.1f} ms)")
        for name, cmd in commands.items():
            rows, heavy = import_profile(cmd)
            print(f"\nimports of `nbcontainer {name}`: heavy modules loaded: "
                  f"{', '.join(heavy) or 'none'}; dataclasses defined: {dataclass_count(cmd)}")
            for us, module in rows:
                print(f"  {us / 1000:7.1f} ms  {module}")
        print(f"\nload average at end: {os.getloadavg()[0]:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

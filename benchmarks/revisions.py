#!/usr/bin/env python3
"""Two revisions of nbcontainer side by side, in one run: did a change cost speed?

    .venv/bin/python benchmarks/revisions.py OLD [NEW] [--runs 5]      (as root)

Each revision is exported from git (``git archive``) into a temporary directory and run as a
command (``python -m nbcontainer.cli``, that tree first on ``PYTHONPATH``) with this
interpreter's dependencies; each has its own store seeded with the same busybox image. The
runs are interleaved (old, new, old, new …) so both see the same load. NEW defaults to the
working tree's ``HEAD``.

Rows (median wall seconds): ``--version``; ``images``; a cold build of 20 ``RUN true``
steps; a fully cached rebuild; a rebuild after a one-file change under a COPY.
The last column is old/new: above 1 means the new revision is faster.
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
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BASE = "localhost/busybox:latest"
RUNS20 = f"FROM {BASE}\n" + "".join(f"RUN true {i}\n" for i in range(20))
APP = f"FROM {BASE}\nCOPY src /app/src\nRUN ls -R /app > /app/listing\n"


class Revision:
    def __init__(self, rev: str, work: Path, rootfs: Path) -> None:
        self.rev = rev
        self.tree = work / f"tree-{rev.replace('/', '_')}"
        self.tree.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "nbcontainer"],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(self.tree)], input=archive, check=True)
        self.env = {**os.environ, "PYTHONPATH": str(self.tree), "PYTHONDONTWRITEBYTECODE": ""}
        self.work, self.n = work, 0
        where = self.cli("-c", "import nbcontainer; print(nbcontainer.__file__)", module=False)
        assert where.startswith(str(self.tree)), where  # this tree, not the installed one
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(self.tree)], check=True)
        self.seed = work / f"seed-{self.tree.name}"  # each revision's own store format
        self.cli("--root", str(self.seed), "import", str(rootfs), BASE)

    def cli(self, *args: str, module: bool = True) -> str:
        argv = [sys.executable, *(("-m", "nbcontainer.cli") if module else ()), *args]
        # (run from the tree: the working directory comes first on sys.path)
        return subprocess.run(argv, env=self.env, check=True, capture_output=True, text=True,
                              cwd=self.tree).stdout.strip()

    def store(self) -> Path:
        self.n += 1
        dest = self.work / f"store-{self.tree.name}-{self.n}"
        shutil.copytree(self.seed, dest, symlinks=True)
        return dest

    def timed(self, *args: str) -> float:
        os.sync()
        start = time.perf_counter()
        self.cli(*args)
        return time.perf_counter() - start


def context(work: Path, dockerfile: str) -> Path:
    ctx = Path(tempfile.mkdtemp(dir=work, prefix="ctx-"))
    (ctx / "Dockerfile").write_text(dockerfile)
    for i in range(50):
        p = ctx / "src" / f"m{i // 10}" / f"f{i}.py"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f"print({i})\n" * 20)
    return ctx


def scenarios(work: Path) -> dict[str, Callable[[Revision], float]]:
    def build(r: Revision, home: Path, ctx: Path) -> float:
        return r.timed("--root", str(home), "build", "-q", "-t", "localhost/b", str(ctx))

    def cold(r: Revision) -> float:
        return build(r, r.store(), context(work, RUNS20))

    def cached(r: Revision) -> float:
        home, ctx = r.store(), context(work, APP)
        # as a user saves, then builds: a context written in the last 100 ms (2 s on a
        # filesystem with whole-second times) is not remembered by the build memo
        time.sleep(2.1)
        build(r, home, ctx)
        return build(r, home, ctx)

    def change(r: Revision) -> float:
        home, ctx = r.store(), context(work, APP)
        build(r, home, ctx)
        (ctx / "src/m0/f0.py").write_text("print('changed')\n")
        return build(r, home, ctx)

    return {
        "--version": lambda r: r.timed("--version"),
        "images": lambda r: r.timed("--root", str(r.seed), "images"),
        "cold 20 x RUN true": cold,
        "fully cached rebuild": cached,
        "one-file change": change,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("old")
    ap.add_argument("new", nargs="?", default="HEAD")
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (RUN steps in the sandbox as root, like the other build benchmarks)")
        return
    from nbcontainer.rootfs import make_busybox_rootfs

    work = Path(tempfile.mkdtemp(prefix="nbbench-revisions-"))
    try:
        rootfs = make_busybox_rootfs(work / "rootfs")
        revs = [Revision(a.old, work, rootfs), Revision(a.new, work, rootfs)]
        print(f"load average at start: {os.getloadavg()[0]:.2f}")
        print(f"{'':<24} {a.old:>12} {a.new:>12}   old/new")
        for name, fn in scenarios(work).items():
            for r in revs:
                fn(r)  # warm-up
            times: dict[str, list[float]] = {r.rev: [] for r in revs}
            for _ in range(a.runs):
                for r in revs:
                    times[r.rev].append(fn(r))
            old, new = (statistics.median(times[r.rev]) for r in revs)
            print(f"{name:<24} {old * 1000:10.1f}ms {new * 1000:10.1f}ms   {old / new:5.2f}x")
        print(f"load average at end: {os.getloadavg()[0]:.2f}")
    finally:
        subprocess.run(["umount", "-R", str(work)], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

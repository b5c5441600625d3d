#!/usr/bin/env python3
"""Builder speed: nbcontainer against ``docker build`` (the Docker engine 20.10's BuildKit, a
private dockerd) and ``buildah bud --isolation chroot --layers --network host`` (vfs and
overlay storage), side by side on the same Dockerfiles and busybox base.

    .venv/bin/python benchmarks/build.py [--runs 3] [--only SCENARIO]…      (as root)

Columns: ``nbcontainer`` (``nbcontainer.api.build`` in this process), ``nb-cli`` (the
``nbcontainer build`` command: process start-up and imports included), ``docker`` (Debian's
``docker build --network host -q`` with DOCKER_BUILDKIT=1), ``buildah-vfs``,
``buildah-overlay``. Docker and buildah are timed through their CLIs, so the fair ratio for
them is against ``nb-cli``: CLI against CLI. Every build starts from the state the scenario
names: a fresh copy of the seed store; a fresh buildah storage; for docker, no image but the
base and an empty build cache (``docker rmi`` + ``docker builder prune -af``, not timed).

Scenarios (median of ``--runs``):

- per-RUN overhead: 20 × ``RUN true`` (distinct commands) minus 1 × ``RUN true``, cold, / 19;
- cold build: COPY + a few RUNs, empty cache;
- fully cached rebuild of the same;
- rebuild after a one-file change (the second COPY misses);
- layer commit: a RUN writing 150 MB of random data, minus the same RUN deleting the file
  before it ends (same data generation and sandbox, no layer), so only the commit itself is
  compared: diff, tar, compression, write, sync, snapshot (buildah: the same plus its
  container-image commit; docker: BuildKit's snapshot diff into the engine's layer store);
- parallel stages (issue 7): two independent stages with ``RUN sleep 2`` each and a final
  stage copying from both, cold; they overlap, so about 2 s, not 4 (nbcontainer, docker);
- quickstart: the README notebook's Dockerfile (``FROM debian:bookworm``, ``apt-get install
  python3 python3-venv``, COPY, CMD), cold and fully cached, nb-cli against docker. The
  debootstrap Debian is served by a local registry as ``library/debian:bookworm`` through the
  docker.io mirror setting of each (dockerd ``--registry-mirror``,
  ``NBCONTAINER_REGISTRY_MIRRORS``), so the cold build pulls it like a real one; apt reads the
  Debian mirror over the network.

- rungs (the isolation ladder, nbcontainer only): per-RUN overhead on each rung
  (``--isolation full``, ``reduced`` — as root: a user namespace mapping root's own ids and
  tree copies — and ``ptrace``), and a cold Debian ``apt-get install`` build per rung beside
  buildah's chroot isolation (vfs and overlay storage), which runs in this same environment.

- hardening (issue 13): per-RUN overhead on the full rung with every measure on, and with
  each one off in turn (seccomp, the private network, the pids limit, all three): what each
  costs per RUN and per build.

Targets (the performance issue): per-RUN overhead ≤ 6 ms on the full rung; a fully cached
rebuild at least 5× faster than buildah's best, CLI against CLI (``buildah-best/nb-cli``; the
in-process ratio is printed beside it); cold no slower than buildah; layer commit ≥ 4×
buildah's best; parallel stages elapsed < 3.5 s; the quickstart cold ≥ 1.5× buildah (overlay
storage, pulling from the same local registry); peak RSS of the cold quickstart build
≤ 150 MB and of the layer view of the ~6,000-file Debian base ≤ 100 MB.

Writeback: a 150 MB layer leaves dirty pages whose writeback lands on whatever runs next.
Each measurement starts with ``sync`` (not timed); ``--tmpfs`` puts the whole work directory
(stores, buildah's and docker's storage) on a tmpfs, which has no writeback at all: the
commit row is then the commit's own work on both sides (diff, tar, compression, copy).
Peak RSS is the largest resident set of any process of the build's process tree (``wait4``).
Docker has no target: its ratio (docker / nb-cli, > 1 means nbcontainer is faster) is printed.
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import dockerd  # noqa: E402

BASE = "localhost/busybox:latest"
TAG = "localhost/bench:latest"
F = f"FROM {BASE}\n"
RUNS20 = F + "".join(f"RUN true {i}\n" for i in range(20))
RUN0 = F + "RUN true\n"
APP = F + "COPY deps.txt /app/\nRUN cat /app/deps.txt > /app/deps.out\nCOPY src /app/src\n" \
          "RUN ls -R /app > /app/listing\nRUN echo built > /app/stamp\n"
BIG = F + "RUN dd if=/dev/urandom of=/big bs=1M count=150 status=none\n"
BIG_GONE = F + "RUN dd if=/dev/urandom of=/big bs=1M count=150 status=none && rm /big\n"
PARALLEL = (f"FROM {BASE} AS a\nRUN sleep 2 && echo a > /a\n"
            f"FROM {BASE} AS b\nRUN sleep 2 && echo b > /b\n"
            f"FROM {BASE}\nCOPY --from=a /a /a\nCOPY --from=b /b /b\n")
QUICKSTART = """\
FROM debian:bookworm
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv \\
    && rm -rf /var/lib/apt/lists/*
COPY my-app.py /app/
CMD ["python3", "/app/my-app.py"]
"""
TOOLS = ("nbcontainer", "nb-cli", "docker", "buildah-vfs", "buildah-overlay")
# A rebuild comes a while after the context was written, as a user's does: a context changed
# a moment before a build (memo.FINE_RACY_NS; 2 s on whole-second filesystems) is not
# remembered, as git treats racily clean files.
RACY = 2.1


def settle() -> None:
    """Flush the previous measurement's dirty data first (buildah's vfs driver leaves hundreds
    of MB), so its writeback does not slow down whichever tool happens to run next."""
    os.sync()


def timed(fn: Callable[[], object]) -> float:
    settle()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run_measured(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS in MB (the largest of the process tree, from ``wait4``)."""
    settle()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        raise SystemExit(f"{cmd[0]} failed ({proc.returncode}): {err[-2000:]}")
    return wall, usage.ru_maxrss / 1024


def nb_cli() -> list[str]:
    exe = Path(sys.executable).with_name("nbcontainer")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "nbcontainer.cli"]


class Tools:
    def __init__(self, work: Path, docker: dockerd.PrivateDockerd | None) -> None:
        from nbcontainer import api
        from nbcontainer.rootfs import make_busybox_rootfs
        from nbcontainer.store import Store

        self.work = work
        rootfs = make_busybox_rootfs(work / "rootfs")
        self.seed = Store(work / "seed")
        api.import_image(rootfs, BASE, store=self.seed)
        self.archive = work / "bb.tar"
        api.save([BASE], self.archive, format="oci-archive", store=self.seed)
        self.docker = docker
        if docker is not None:
            api.save([BASE], work / "bb.docker.tar", format="docker-archive", store=self.seed)
            docker.docker("load", "-i", work / "bb.docker.tar")
        self.n = 0

    # ------------------------------------------------------------------ nbcontainer
    def fresh_store(self):
        from nbcontainer.store import Store

        self.n += 1
        dest = self.work / f"store{self.n}"
        shutil.copytree(self.seed.home, dest, symlinks=True)
        return Store(dest)

    def ours(self, store, ctx: Path, isolation: str | None = None) -> float:
        from nbcontainer.api import build

        return timed(lambda: build(ctx / "Dockerfile", ctx, store=store, isolation=isolation))

    def ours_cli(self, home: Path, ctx: Path, env: dict[str, str] | None = None,
                 *flags: str) -> float:
        return self.ours_cli_rss(home, ctx, env, *flags)[0]

    def ours_cli_rss(self, home: Path, ctx: Path, env: dict[str, str] | None = None,
                     *flags: str) -> tuple[float, float]:
        """Wall seconds and peak RSS (MB) of ``nbcontainer build`` as a command."""
        cmd = [*nb_cli(), "--root", str(home), "build", "-q", *flags, "-t", TAG, str(ctx)]
        return run_measured(cmd, env or dict(os.environ))

    # ------------------------------------------------------------------ docker
    def docker_reset(self, *keep: str) -> None:
        """No image but ``keep`` and the base, an empty build cache (not timed)."""
        assert self.docker is not None
        out = self.docker.docker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout
        drop = [r for r in out.decode().split() if r not in (BASE, *keep)]
        if drop:
            self.docker.docker("rmi", "-f", *drop, check=False)
        self.docker.docker("image", "prune", "-f")
        self.docker.docker("builder", "prune", "-af")

    def docker_build(self, ctx: Path, *flags: str) -> float:
        assert self.docker is not None
        return timed(lambda: self.docker.docker("build", *flags, "--network", "host", "-q",
                                                "-t", TAG, ctx))

    # ------------------------------------------------------------------ buildah
    def add_debian(self) -> None:
        """The debootstrap Debian (the tests' daily cache) in the seed store, and an archive."""
        from nbcontainer import api
        from nbcontainer.rootfs import cached_debian_rootfs

        api.import_image(cached_debian_rootfs(Path("/var/cache/nbcontainer-test")), DEBIAN,
                         store=self.seed)
        self.debian_archive = self.work / "debian.tar"
        api.save([DEBIAN], self.debian_archive, format="oci-archive", store=self.seed)

    def buildah_root(self, driver: str, debian: bool = False) -> tuple[list[str], Path, Path]:
        self.n += 1
        root, runroot = self.work / f"bah{self.n}", Path(f"/tmp/nbb{os.getpid()}-{self.n}")
        base = ["buildah", "--root", str(root), "--runroot", str(runroot),
                "--storage-driver", driver]
        archive, name = (self.debian_archive, DEBIAN) if debian else (self.archive, BASE)
        out = subprocess.run([*base, "pull", "--quiet", f"oci-archive:{archive}"],
                             capture_output=True, check=True).stdout.decode().split()[-1]
        subprocess.run([*base, "tag", out, name], check=True, capture_output=True)
        return base, root, runroot

    def theirs(self, base: list[str], ctx: Path) -> float:
        return timed(lambda: subprocess.run(
            [*base, "bud", "--isolation", "chroot", "--layers", "--network", "host",
             "--pull=never", "-q", "-t", TAG, str(ctx)], check=True, capture_output=True))

    def drop_buildah(self, root: Path, runroot: Path, base: list[str]) -> None:
        subprocess.run([*base, "rm", "--all"], capture_output=True)
        subprocess.run(["umount", "-R", str(root / "overlay")], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(runroot, ignore_errors=True)

    # ------------------------------------------------------------------ one tool, fresh state
    @contextmanager
    def builder(self, tool: str) -> Iterator[Callable[[Path], float]]:
        """A build function for ``tool`` over fresh state (see the module doc)."""
        if tool == "nbcontainer":
            store = self.fresh_store()
            yield lambda ctx: self.ours(store, ctx)
        elif tool == "nb-cli":
            home = self.fresh_store().home
            yield lambda ctx: self.ours_cli(home, ctx)
        elif tool == "docker":
            self.docker_reset()
            yield self.docker_build
        else:
            base, root, runroot = self.buildah_root(tool.split("-")[1])
            try:
                yield lambda ctx: self.theirs(base, ctx)
            finally:
                self.drop_buildah(root, runroot, base)


def context(work: Path, dockerfile: str) -> Path:
    ctx = Path(tempfile.mkdtemp(dir=work, prefix="ctx-"))
    (ctx / "Dockerfile").write_text(dockerfile)
    (ctx / "deps.txt").write_text("requests==2\n")
    (ctx / "my-app.py").write_text("import sys\nprint('hello from', sys.version.split()[0])\n")
    for i in range(50):
        p = ctx / "src" / f"m{i // 10}" / f"f{i}.py"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f"print({i})\n" * 20)
    # As when a user saves and then types the command: a build whose context changed in
    # the last 100 ms is not remembered (the build memo's racy window), so a build started
    # at once would leave the next "cached" build to solve the Dockerfile again.
    time.sleep(0.2)
    return ctx


def scenario(tools: Tools, runs: int, dockerfile: str, *, warm: bool = False,
             change: bool = False, only: tuple[str, ...] = ()) -> dict[str, float]:
    """Median seconds per tool (``only``: these tools; default all that are available)."""
    names = [t for t in (only or TOOLS) if t != "docker" or tools.docker is not None]
    results: dict[str, list[float]] = {t: [] for t in names}
    for _ in range(runs):
        for tool in names:
            ctx = context(tools.work, dockerfile)
            with tools.builder(tool) as build:
                if warm or change:
                    build(ctx)
                    time.sleep(RACY)  # (not timed) see RACY
                if change:
                    (ctx / "src/m0/f0.py").write_text("print('changed')\n")
                results[tool].append(build(ctx))
    return {k: statistics.median(v) for k, v in results.items()}


def report(name: str, r: dict[str, float], target: str = "", ok: bool | None = None,
           unit: str = "s") -> None:
    scale = 1000 if unit == "ms" else 1
    cols = "  ".join(f"{t} {r[t] * scale:8.3f}{unit}" for t in TOOLS if t in r)
    ratios = []
    if "buildah-vfs" in r and "nbcontainer" in r:
        best = min(r["buildah-vfs"], r["buildah-overlay"])
        ratios.append(f"buildah-best/nbcontainer {best / r['nbcontainer']:5.2f}x")
        if "nb-cli" in r:
            ratios.append(f"buildah-best/nb-cli {best / r['nb-cli']:5.2f}x")
    if "docker" in r and "nb-cli" in r:
        ratios.append(f"docker/nb-cli {r['docker'] / r['nb-cli']:5.2f}x")
    verdict = f"  target {target}: {'PASS' if ok else 'FAIL'}" if target else ""
    print(f"{name:<24} {cols}  |  {'  '.join(ratios)}{verdict}")


def quickstart(tools: Tools, runs: int, mirror: str) -> None:
    """The README's Dockerfile by CLI: nb-cli against buildah (overlay storage) and docker,
    cold (the base pulled from the local registry too), warm (base stored, ``--no-cache``:
    the RUN executes again) and fully cached; all resolve debian:bookworm through the same
    local mirror. Peak RSS of nbcontainer's cold build is printed with its target."""
    from nbcontainer.store import Store

    env = {**os.environ, "NBCONTAINER_REGISTRY_MIRRORS": mirror}
    conf = tools.work / "registries.conf"
    conf.write_text('unqualified-search-registries = ["docker.io"]\n[[registry]]\n'
                    'prefix = "docker.io"\nlocation = "docker.io"\n[[registry.mirror]]\n'
                    f'location = "{mirror.removeprefix("http://")}"\ninsecure = true\n')
    res: dict[str, dict[str, list[float]]] = {"cold": {}, "warm": {}, "cached": {}}
    rss: list[float] = []

    def add(kind: str, tool: str, seconds: float) -> None:
        res[kind].setdefault(tool, []).append(seconds)

    for _ in range(runs):
        tools.n += 1
        home = tools.work / f"qs-store{tools.n}"
        Store(home)
        ctx = context(tools.work, QUICKSTART)
        wall, peak = tools.ours_cli_rss(home, ctx, env)
        add("cold", "nb-cli", wall)
        rss.append(peak)
        add("cached", "nb-cli", tools.ours_cli(home, ctx, env))
        add("warm", "nb-cli", tools.ours_cli(home, ctx, env, "--no-cache"))
        shutil.rmtree(home, ignore_errors=True)
        base = ["buildah", "--root", str(tools.work / f"qs-bah{tools.n}"), "--runroot",
                f"/tmp/nbqs{os.getpid()}-{tools.n}", "--storage-driver", "overlay"]
        bah_env = {**os.environ, "CONTAINERS_REGISTRIES_CONF": str(conf)}
        bud = [*base, "bud", "--isolation", "chroot", "--layers", "--network", "host", "-q",
               "-t", TAG, str(ctx)]
        add("cold", "buildah-overlay", run_measured(bud, bah_env)[0])
        add("cached", "buildah-overlay", run_measured(bud, bah_env)[0])
        at = bud.index("bud") + 1
        add("warm", "buildah-overlay", run_measured([*bud[:at], "--no-cache", *bud[at:]],
                                                    bah_env)[0])
        tools.drop_buildah(Path(base[2]), Path(base[4]), base)
        if tools.docker is not None:
            tools.docker_reset()
            tools.docker.docker("rmi", "-f", "debian:bookworm", check=False)
            add("cold", "docker", tools.docker_build(ctx))
            add("cached", "docker", tools.docker_build(ctx))
            add("warm", "docker", tools.docker_build(ctx, "--no-cache"))
    for kind, r in res.items():
        med = {k: statistics.median(v) for k, v in r.items()}
        ratio = med["buildah-overlay"] / med["nb-cli"]
        print(f"quickstart {kind:<13} " + "  ".join(f"{k} {v:7.2f}s" for k, v in med.items())
              + f"  |  buildah/nb-cli {ratio:5.2f}x"
              + (f"  target >= 1.5x: {'PASS' if ratio >= 1.5 else 'FAIL'}"
                 if kind == "cold" else ""))
    peak = statistics.median(rss)
    print(f"{'quickstart cold peak RSS':<24} nb-cli {peak:6.1f} MB  target <= 150 MB: "
          f"{'PASS' if peak <= 150 else 'FAIL'}")


LAYERS_VIEW = """\
import sys
from nbcontainer import api
from nbcontainer.notebook.views import LayersView
img = api.image(sys.argv[2], store=api.get_store(sys.argv[1]))
bundle = LayersView(img)._repr_mimebundle_()
assert len(bundle["text/html"]) > 1000
"""


def layers_rss(tools: Tools, runs: int) -> None:
    """Peak RSS of the layer view (``%layers``) of the debootstrap Debian (~6,000 files),
    in a fresh interpreter, cold (nothing of it cached in that process)."""
    tools.add_debian()
    peaks = [run_measured([sys.executable, "-c", LAYERS_VIEW, str(tools.seed.home),
                           DEBIAN])[1] for _ in range(runs)]
    peak = statistics.median(peaks)
    print(f"{'%layers Debian peak RSS':<24} nbcontainer {peak:6.1f} MB  target <= 100 MB: "
          f"{'PASS' if peak <= 100 else 'FAIL'}")


def on_tmpfs(path: Path) -> bool:
    """Whether ``path`` is on a tmpfs (the mount that holds it, from /proc/self/mounts)."""
    best, kind = "", ""
    for line in Path("/proc/self/mounts").read_text().splitlines():
        _, mnt, fstype, *_ = line.split()
        if str(path).startswith(mnt) and len(mnt) >= len(best):
            best, kind = mnt, fstype
    return kind == "tmpfs"


SCENARIOS = ("per-run", "cold", "cached", "change", "commit", "parallel", "quickstart",
             "layers-rss", "rungs", "hardening")
RUNGS = ("full", "reduced", "ptrace")
DEBIAN = "localhost/debian:bookworm"
APT = (f"FROM {DEBIAN}\nRUN apt-get update && apt-get install -y --no-install-recommends "
       "cowsay && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin\n")


def rungs(tools: Tools, runs: int) -> None:
    """Per-RUN overhead and the Debian apt build on each rung, buildah beside them."""
    for rung in RUNGS:
        one, twenty = [], []
        for _ in range(runs):
            one.append(tools.ours(tools.fresh_store(), context(tools.work, RUN0), rung))
            twenty.append(tools.ours(tools.fresh_store(), context(tools.work, RUNS20), rung))
        per_run = max(statistics.median(twenty) - statistics.median(one), 1e-6) / 19
        target = "  target <= 6 ms: " + ("PASS" if per_run <= 0.006 else "FAIL") \
            if rung == "full" else ""
        print(f"{'per-RUN overhead ' + rung:<24} nbcontainer {per_run * 1000:8.3f}ms{target}")
    tools.add_debian()
    apt: dict[str, list[float]] = {}
    failed: dict[str, str] = {}

    def add(name: str, measure: Callable[[], float]) -> None:
        """One cold apt build; a failure (apt reads the network) is shown, not fatal."""
        try:
            apt.setdefault(name, []).append(measure())
        except Exception as e:  # noqa: BLE001 - the row says what failed, the rest goes on
            failed[name] = " ".join(str(e).split())[:160]

    for _ in range(runs):
        for rung in RUNGS:
            add(f"nbcontainer-{rung}", partial(tools.ours, tools.fresh_store(),
                                               context(tools.work, APT), rung))
        for driver in ("vfs", "overlay"):
            base, root, runroot = tools.buildah_root(driver, debian=True)
            try:
                add(f"buildah-{driver}", partial(tools.theirs, base, context(tools.work, APT)))
            finally:
                tools.drop_buildah(root, runroot, base)
    print("Debian apt-get install cowsay, cold (s): " + "  ".join(
        f"{k} {statistics.median(v):.2f}" for k, v in apt.items()))
    for name, error in failed.items():
        print(f"  {name} failed (at least once): {error}")


# (name, RUN flags, build keywords): every measure on, then one turned off at a time.
HARDENING = (
    ("all measures (default)", "", {}),
    ("no seccomp", "", {"security_opt": ["seccomp=unconfined"]}),
    ("no private network", "--network=host ", {"allow": ["network.host"]}),
    ("no pids limit", "", {"pids_limit": 0}),
    ("none of these", "--network=host ", {"allow": ["network.host"],
                                          "security_opt": ["seccomp=unconfined"],
                                          "pids_limit": 0}),
)


def hardening(tools: Tools, runs: int) -> None:
    """Per-RUN overhead on the full rung with the hardening on, and what each measure costs:
    the difference to the same 20 × ``RUN true`` with that measure off. Per build (once, not
    per RUN): the network namespace, slirp4netns' start and the cgroup."""
    from nbcontainer.api import build

    per_run: dict[str, float] = {}
    per_build: dict[str, float] = {}
    for name, flags, kw in HARDENING:
        one, twenty = [], []
        for _ in range(runs):
            for n, times in ((1, one), (20, twenty)):
                ctx = context(tools.work, F + "".join(f"RUN {flags}true {i}\n"
                                                      for i in range(n)))
                times.append(timed(partial(build, ctx / "Dockerfile", ctx,
                                           store=tools.fresh_store(), isolation="full", **kw)))
        per_run[name] = max(statistics.median(twenty) - statistics.median(one), 1e-6) / 19
        per_build[name] = statistics.median(one)
    full = per_run[HARDENING[0][0]]
    print(f"{'per-RUN, hardened':<24} nbcontainer {full * 1000:8.3f}ms  target < 15 ms: "
          + ("PASS" if full < 0.015 else "FAIL"))
    for name, _, _ in HARDENING[1:]:
        print(f"  {name:<22} {per_run[name] * 1000:8.3f}ms per RUN  (measure costs "
              f"{(full - per_run[name]) * 1000:+7.3f}ms per RUN, "
              f"{(per_build[HARDENING[0][0]] - per_build[name]) * 1000:+7.1f}ms per build)")


def run_scenarios(tools: Tools, runs: int, only: set[str]) -> None:
    if "per-run" in only:
        r1 = scenario(tools, runs, RUN0)
        r20 = scenario(tools, runs, RUNS20)
        per_run = {k: max(r20[k] - r1[k], 1e-6) / 19 for k in r20}
        print("RUN true x1 / x20 (s):", {k: (round(r1[k], 3), round(r20[k], 3)) for k in r1})
        report("per-RUN overhead", per_run, "<= 6 ms", per_run["nbcontainer"] <= 0.006,
               unit="ms")
    if "cold" in only:
        cold = scenario(tools, runs, APP)
        report("cold build", cold, "no slower",
               cold["nbcontainer"] <= min(cold["buildah-vfs"], cold["buildah-overlay"]))
    if "cached" in only:
        cached = scenario(tools, runs, APP, warm=True)
        best = min(cached["buildah-vfs"], cached["buildah-overlay"])
        report("fully cached rebuild", cached, ">= 5x (CLI)", best / cached["nb-cli"] >= 5)
    if "change" in only:
        changed = scenario(tools, runs, APP, change=True)
        report("one-file change rebuild", changed, "no slower",
               changed["nbcontainer"] <= min(changed["buildah-vfs"], changed["buildah-overlay"]))
    if "commit" in only:
        # Interleaved so all tools see the same load; the difference is the commit.
        big = scenario(tools, runs, BIG)
        gone = scenario(tools, runs, BIG_GONE)
        print("150 MB RUN with layer / without (s):",
              {k: (round(big[k], 3), round(gone[k], 3)) for k in big})
        commit = {k: max(big[k] - gone[k], 1e-6) for k in big}
        best = min(commit["buildah-vfs"], commit["buildah-overlay"])
        report("150 MB layer commit" + (" (tmpfs)" if on_tmpfs(tools.work) else ""), commit,
               ">= 4x", best / commit["nbcontainer"] >= 4)
    if "parallel" in only:
        par = scenario(tools, runs, PARALLEL, only=("nbcontainer", "nb-cli", "docker"))
        report("parallel stages 2x2 s", par, "< 3.5 s", par["nbcontainer"] < 3.5)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", action="append", choices=SCENARIOS,
                    help="run only these scenarios (repeatable; default: all)")
    ap.add_argument("--no-docker", action="store_true",
                    help="leave docker out (another private dockerd on this machine shares "
                         "containerd's fixed paths with ours)")
    ap.add_argument("--tmpfs", action="store_true",
                    help="work (stores, buildah's and docker's storage) on a tmpfs: no "
                         "writeback on either side")
    a = ap.parse_args()
    only = set(a.only or SCENARIOS)
    if os.geteuid() != 0 or not shutil.which("buildah"):
        print("needs root and buildah")
        return
    work = Path(tempfile.mkdtemp(prefix="nbbench-build-"))
    docker_home = work.with_name(work.name + "-docker")
    if a.tmpfs:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12g", "nbbench", str(work)],
                       check=True)
    registry = None
    try:
        mirror = ""
        extra: tuple[str, ...] = ()
        if "quickstart" in only:
            registry, mirror = serve_debian(work)
            extra = ("--registry-mirror", mirror)
        # (docker's overlay2 over a tmpfs fails to start containers: its data root stays on
        # disk, so with --tmpfs its column keeps its writeback)
        with docker_engine(docker_home if a.tmpfs else work, extra, a.no_docker) as engine:
            tools = Tools(work, engine)
            print(f"load average at start: {os.getloadavg()[0]:.2f} (2 cores shared with others)")
            scenario(tools, 1, RUN0)  # warm-up: imports, page cache, binaries
            run_scenarios(tools, a.runs, only)
            if "quickstart" in only:
                quickstart(tools, a.runs, mirror)
            if "layers-rss" in only:
                layers_rss(tools, a.runs)
            if "rungs" in only:
                rungs(tools, a.runs)
            if "hardening" in only:
                hardening(tools, a.runs)
        print(f"load average at end: {os.getloadavg()[0]:.2f}")
    finally:
        if registry is not None:
            registry.stop()
        subprocess.run(["umount", "-R", str(work)], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(docker_home, ignore_errors=True)


@contextmanager
def docker_engine(work: Path, extra: tuple[str, ...], skip: bool = False
                  ) -> Iterator[dockerd.PrivateDockerd | None]:
    if skip:
        yield None
        return
    if not dockerd.available():
        print("docker.io is not installed (scripts/setup.sh): no docker column")
        yield None
        return
    with dockerd.PrivateDockerd(work / "dockerd", *extra) as engine:
        yield engine


def serve_debian(work: Path):
    """A local registry serving the debootstrap Debian as library/debian:bookworm (the
    notebooks' set-up); returns it and its mirror URL."""
    from nbcontainer import api
    from nbcontainer import registry as reg
    from nbcontainer.localregistry import LocalRegistry
    from nbcontainer.rootfs import cached_debian_rootfs
    from nbcontainer.store import Store

    server = LocalRegistry(work / "registry").start()
    ref = f"{server.host}/library/debian:bookworm"
    store = Store(work / "debian-store")
    api.import_image(cached_debian_rootfs(Path("/var/cache/nbcontainer-test")), ref, store=store,
                     changes=["ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                              'CMD ["bash"]'])
    reg.push(store, ref)
    shutil.rmtree(work / "debian-store", ignore_errors=True)
    return server, f"http://{server.host}"


if __name__ == "__main__":
    main()

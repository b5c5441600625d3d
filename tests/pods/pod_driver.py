"""Runs inside a simulated pod (or as a host user): builds A, B and C against the local
registry, and reports as JSON what happened — the rung ``info`` names, each build's outcome
and progress warnings, and after each build that the store is consistent and nothing is
left behind (no partial image, no mounts, no processes).

Usage: ``python pod_driver.py REGISTRY STORE [BUILDS]`` with BUILDS a comma-separated subset
of ``a,b,c,d`` (default: all; ``d`` fails on purpose, leaving a background process behind in
its sandbox). Stdlib and nbcontainer only: the pod image has the wheel installed, nothing
from tests/.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from nbcontainer import api
from nbcontainer.errors import NbcontainerError
from nbcontainer.progress import Collector, Kind

BUILD_C_RUN = ("apt-get update && apt-get install -y cowsay && useradd -m app && "
               "chown app /home/app && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin")


def dockerfiles(registry: str) -> dict[str, str]:
    return {
        "a": f"FROM {registry}/busybox:latest\nCOPY hello.txt /app/hello.txt\nENV GREETING=hi\n",
        "b": f"FROM {registry}/busybox:latest\nRUN echo built > /built && ls -l / > /dev/null\n",
        "c": f"FROM {registry}/debian:bookworm\nRUN {BUILD_C_RUN}\n",
        # fails after writing: nothing of it may stay behind
        "d": f"FROM {registry}/busybox:latest\nRUN echo partial > /partial && sleep 3 & "
             "echo partial > /partial; exit 3\n",
    }


def reap() -> None:
    """Collect exited children: in a pod this driver is pid 1, the init orphans go to."""
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass


def settled_descendants() -> list[str]:
    """Descendants still there once helpers that are exiting have had a moment."""
    found: list[str] = []
    for _ in range(40):
        reap()
        found = descendants()
        if not found:
            break
        time.sleep(0.05)
    return found


def descendants() -> list[str]:
    """Processes below this one (the sandbox's must all be gone)."""
    parents: dict[int, int] = {}
    names: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                data = f.read()
        except OSError:
            continue
        name = data[data.index("(") + 1:data.rindex(")")]
        fields = data[data.rindex(")") + 2:].split()
        parents[int(entry)], names[int(entry)] = int(fields[1]), name
    me, out = os.getpid(), []
    for pid in parents:
        p, seen = parents.get(pid), 0
        while p and p != me and seen < 64:
            p, seen = parents.get(p), seen + 1
        if p == me and pid != me:
            out.append(f"{pid} {names[pid]}")
    return out


def mounts(store: str) -> set[str]:
    """Mounts of ours: below the store or the sandbox's scaffold (on a shared host, other
    users' mounts come and go meanwhile)."""
    with open("/proc/self/mountinfo") as f:
        rows = [line.split() for line in f]
    return {" ".join(r[3:5]) for r in rows
            if r[4].startswith(store) or "nbsandbox" in r or "nbsandbox" in " ".join(r)}


def build(name: str, text: str, store: str, context: Path) -> dict[str, object]:
    events = Collector()
    before = mounts(store)
    started = time.monotonic()
    result: dict[str, object] = {"ok": False}
    try:
        # Pods have no /dev/net/tun for a private network, and the ptrace rung no network
        # namespace: apt in C reaches the mirror through the host's network, allowed here
        allow = ["network.host"] if name == "c" else []
        img = api.build(text, str(context), tags=[f"pod/{name}:1"], store=store,
                        progress=events, allow=allow)
        result["ok"] = True
        result["owners"] = {e.path: [e.uid, e.gid] for layer in img.layers[1:]
                            for e in layer.entries()
                            if e.path in ("home/app", "app/hello.txt", "built")}
    except NbcontainerError as exc:
        result["error"], result["hint"] = exc.message, exc.hint or ""
    except Exception as exc:  # noqa: BLE001 - reported to the test, which fails on it
        result["error"] = "".join(traceback.format_exception(exc))[-3000:]
        result["hint"] = ""
    result["seconds"] = round(time.monotonic() - started, 2)
    result["warnings"] = [e.text for e in events.events if e.kind == Kind.WARNING]
    result["infos"] = [e.text for e in events.events if e.kind == Kind.INFO]
    result["log"] = [e.text for e in events.events if e.kind == Kind.LOG][-15:]
    fsck = api.fsck(store=store, quarantine=False)
    result["fsck_ok"] = fsck.ok
    result["images"] = sorted(api.get_store(store).refs.read().tags)
    result["leftover_mounts"] = sorted(mounts(store) - before)
    result["leftover_procs"] = settled_descendants()
    return result


def main() -> int:
    registry, store = sys.argv[1], sys.argv[2]
    wanted = sys.argv[3].split(",") if len(sys.argv) > 3 else ["a", "b", "c", "d"]
    context = Path(tempfile.mkdtemp(prefix="podctx-"))
    (context / "hello.txt").write_text("hello from a pod\n")
    report: dict[str, object] = {"uid": os.getuid()}
    info = api.info(store=store).to_dict()
    report["info"] = info
    try:
        report["builds"] = {name: build(name, text, store, context)
                            for name, text in dockerfiles(registry).items() if name in wanted}
    finally:
        shutil.rmtree(context, ignore_errors=True)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())

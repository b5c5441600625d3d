"""Resource limits of RUN steps: a cgroup where one can be made, else resource limits.

A build's RUN steps share one cgroup (the fork server moves itself into it, so every RUN it
forks is counted), as a pod's containers share theirs: ``pids.max`` (podman's default 2048)
and, with ``--memory``, the memory limit. Real root creates it under the pids and memory
controllers (cgroup v1 hierarchies or the v2 tree, whichever holds the controller); a
rootless build uses a delegated v2 subtree it may write to. Where neither exists, the
fallback is ``RLIMIT_NPROC`` (processes of the RUN's user) and ``RLIMIT_DATA`` (memory), set
in the helper just before exec. ``Limits.how`` says which, for ``info`` and the tests.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field

CGROUP_ROOT = "/sys/fs/cgroup"
PARENT = "nbcontainer"


@dataclass
class Limits:
    """The limits of one executor's RUN steps and where they live."""

    pids: int | None
    memory: int | None
    dirs: list[str] = field(default_factory=list)  # the cgroups made (removed by ``close``)
    rlimits: dict[str, int] = field(default_factory=dict)  # the fallback, set before exec

    @property
    def procs(self) -> list[str]:
        """The ``cgroup.procs`` files a process joins to fall under these limits."""
        return [os.path.join(d, "cgroup.procs") for d in self.dirs]

    @property
    def view(self) -> str | None:
        """The cgroup shown (read-only) at the RUN's ``/sys/fs/cgroup``: the pids one."""
        for d in self.dirs:
            if os.path.exists(os.path.join(d, "pids.max")):
                return d
        return None

    @property
    def how(self) -> str:
        if not (self.pids or self.memory):
            return "none"
        return "cgroup" if self.dirs else "rlimit"

    def describe(self) -> str:
        parts = []
        if self.pids:
            parts.append(f"pids {self.pids}")
        if self.memory:
            parts.append(f"memory {self.memory // (1 << 20)} MiB")
        if not parts:
            return "no limits"
        where = {"cgroup": "cgroup", "rlimit": "rlimits (no cgroup can be made here)"}
        return ", ".join(parts) + f" ({where[self.how]})"

    def close(self) -> None:
        """Remove the cgroups once their processes are gone (they die with the server)."""
        for d in self.dirs:
            for _ in range(50):
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)
        self.dirs = []


def _controller_root(controller: str) -> str | None:
    """The hierarchy holding ``controller``: v1's own mount, else the v2 tree if it has it."""
    v1 = os.path.join(CGROUP_ROOT, controller)
    if os.path.isdir(v1) and os.access(v1, os.W_OK):
        return v1
    for v2 in (CGROUP_ROOT, os.path.join(CGROUP_ROOT, "unified")):
        try:
            with open(os.path.join(v2, "cgroup.subtree_control")) as f:
                if controller in f.read().split():
                    return v2
        except OSError:
            continue
    return None


def _own_v2_cgroup() -> str | None:
    """This process's v2 cgroup directory, if it may create children there (delegated)."""
    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("0::"):
            path = os.path.join(CGROUP_ROOT, line[3:].lstrip("/"))
            if os.access(path, os.W_OK) and os.path.exists(
                    os.path.join(path, "cgroup.subtree_control")):
                return path
    return None


def _sweep(parent: str) -> None:
    """Remove what ended builds left (empty cgroups of processes that are gone)."""
    try:
        names = os.listdir(parent)
    except OSError:
        return
    for name in names:
        owner = name.split("-")[1] if name.startswith("b-") else ""
        if owner.isdigit() and not os.path.exists(f"/proc/{owner}"):
            try:
                os.rmdir(os.path.join(parent, name))
            except OSError:
                pass


def _make(root: str, files: dict[str, str]) -> str | None:
    parent = os.path.join(root, PARENT)
    try:
        os.makedirs(parent, exist_ok=True)
        _sweep(parent)
        path = os.path.join(parent, f"b-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        os.mkdir(path)
    except OSError:
        return None
    try:
        for name, value in files.items():
            with open(os.path.join(path, name), "w") as f:
                f.write(value)
    except OSError:
        os.rmdir(path)
        return None
    return path


def _cgroup_files(controller: str, pids: int | None, memory: int | None,
                  v1: bool) -> dict[str, str]:
    if controller == "pids":
        return {"pids.max": str(pids) if pids else "max"}
    if v1:
        return {"memory.limit_in_bytes": str(memory)}
    return {"memory.max": str(memory), "memory.swap.max": "0"}


def make_limits(pids: int | None, memory: int | None) -> Limits:
    """Set up the limits for one executor (a build, or one ``run``)."""
    limits = Limits(pids, memory)
    if not (pids or memory):
        return limits
    wanted = [c for c, v in (("pids", pids), ("memory", memory)) if v]
    dirs = []
    if os.geteuid() == 0:
        for controller in wanted:
            root = _controller_root(controller)
            made = root and _make(root, _cgroup_files(controller, pids, memory,
                                                      root.endswith("/" + controller)))
            if not made:
                break
            dirs.append(made)
    else:
        own = _own_v2_cgroup()
        if own is not None:
            files: dict[str, str] = {}
            for controller in wanted:
                files.update(_cgroup_files(controller, pids, memory, False))
            made = _make(own, files)
            if made:
                dirs.append(made)
    if len(dirs) == len(wanted) or (dirs and os.geteuid() != 0):
        limits.dirs = dirs
        return limits
    Limits(pids, memory, dirs).close()  # half made: use rlimits for both
    if pids:
        limits.rlimits["nproc"] = pids
    if memory:
        limits.rlimits["data"] = memory
    return limits


def where(rootless: bool) -> str:
    """Where a build's limits would live here (for ``info``; makes nothing)."""
    if not rootless and os.geteuid() == 0:
        roots = [_controller_root(c) for c in ("pids", "memory")]
        if all(roots):
            return "cgroup (" + ", ".join(str(r) for r in roots) + ")"
    elif _own_v2_cgroup() is not None:
        return "cgroup (a delegated cgroup v2 subtree)"
    return ("rlimits (RLIMIT_NPROC, RLIMIT_DATA): no cgroup can be made here; a delegated "
            "cgroup v2 subtree (systemd Delegate=yes) would hold them")

"""What ``nbcontainer info`` says about the sandbox: the probe's findings, the rung builds
will use, each rung above it that is missing (reason and remedy), and the hardening measures
in force. A plain data model (``to_dict`` for JSON); the skins turn it into words."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

from .hardening import DEFAULT_PIDS_LIMIT, seccomp_status
from .ladder import DESCRIPTIONS, RUNGS, Choice, choose
from .limits import where
from .network import detect
from .probe import Attempt, HostProbe, probe


@dataclass(frozen=True)
class Measure:
    """One containment measure: whether it is in force on the chosen rung, and how."""

    name: str
    active: bool
    detail: str = ""


@dataclass(frozen=True)
class RungStatus:
    rung: str
    description: str
    available: bool
    reason: str = ""  # why not (empty when available)
    remedy: str = ""


@dataclass(frozen=True)
class SandboxReport:
    rung: str
    description: str
    replaced: list[str]
    rungs: list[RungStatus]
    measures: list[Measure]
    findings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _attempt(a: Attempt) -> str:
    return "yes" if a.ok else f"no ({a.message})" if a.message else "no"


def findings(p: HostProbe) -> dict[str, Any]:
    """The probe as plain values (what ``info`` prints under "Probe")."""
    return {
        "uid": p.uid, "gid": p.gid, "user": p.user, "initial_user_namespace": p.initial_userns,
        "cap_sys_admin": bool(p.cap_eff >> 21 & 1), "cap_eff": f"{p.cap_eff:016x}",
        "no_new_privs": p.no_new_privs,
        "seccomp": {0: "disabled", 1: "strict", 2: "filter"}.get(p.seccomp, str(p.seccomp)),
        "max_user_namespaces": p.max_user_namespaces,
        "subuid": f"{p.subuid[0]}:{p.subuid[1]}" if p.subuid else None,
        "subgid": f"{p.subgid[0]}:{p.subgid[1]}" if p.subgid else None,
        "user_namespace": _attempt(p.userns), "mount_namespace": _attempt(p.mountns),
        "pid_namespace": _attempt(p.pidns), "uts_namespace": _attempt(p.utsns),
        "ipc_namespace": _attempt(p.ipcns), "network_namespace": _attempt(p.netns),
        "newuidmap": _attempt(p.newidmap) if p.subuid else "no subordinate range",
        "store_filesystem": p.store_fs, "overlay_on_store": _attempt(p.overlay_store),
        "overlay_on_tmpfs": _attempt(p.overlay_tmpfs), "fresh_procfs": _attempt(p.proc_fresh),
        "pivot_root": _attempt(p.pivot_root), "cgroup_delegated": p.cgroup_delegated,
        "proc_masked": ", ".join(p.proc_masked) or "no",
        "proot": (f"{p.proot.path} {p.proot.version}: {_attempt(p.proot.works)}"
                  if p.proot.path else "not installed"),
        **_hardening_findings(),
    }


def _hardening_findings() -> dict[str, Any]:
    """What the hardening found here: the user-mode network stack, libseccomp, Landlock."""
    from ._namespaces import landlock_abi
    from ._seccomp import libseccomp_version

    stack = detect()
    return {"network_stack": stack.describe() if stack.usable else
            f"unusable: {stack.problem} ({stack.remedy})",
            "libseccomp": libseccomp_version() or "not installed",
            "landlock_abi": landlock_abi()}


def measures(choice: Choice) -> list[Measure]:
    """The containment in force on ``choice``'s rung, with a build's defaults (what
    ``--allow``, ``--security-opt``, ``--memory`` and ``--pids-limit`` change is in
    ``hardening.py``)."""
    s = choice.settings
    ns = choice.rung in ("full", "reduced")
    run = choice.rung in ("full", "reduced", "ptrace")
    return [
        Measure("user namespace", ns and s.userns is not None,
                {None: "not needed (real root)" if ns else "none", "self": "single-id map",
                 "parent": "full id map"}[s.userns] if ns else "none"),
        Measure("mount namespace", ns, "private mounts, gone with the RUN" if ns else ""),
        Measure("pid namespace", ns and s.pid, "the command is pid 1" if ns and s.pid else ""),
        Measure("uts namespace", ns and s.uts),
        Measure("ipc namespace", ns),
        Measure("root", ns, ("pivot_root" if s.pivot else "chroot") if ns else
                "ptrace path translation" if choice.rung == "ptrace" else ""),
        Measure("procfs", ns, ("a fresh procfs" if s.proc == "fresh" else
                               "the existing /proc, bound") if ns else ""),
        _network(ns, run),
        _seccomp(run),
        Measure("session keyring", run, "a fresh, empty one per RUN" if run else ""),
        Measure("capabilities", run, "Docker's default set in all five sets (inheritable and "
                "ambient empty)" if ns else "inheritable and ambient cleared" if run else ""),
        Measure("devices", ns, "root and /dev nodev: a device node a RUN makes cannot be "
                "opened" if ns else "the host's /dev" if run else ""),
        Measure("masked paths", ns, "Docker's masked and read-only /proc and /sys paths"
                if ns else ""),
        Measure("pids limit", run, f"{DEFAULT_PIDS_LIMIT} by default, --pids-limit, --memory: "
                + (where(s.userns is not None) if ns else "rlimits") if run else ""),
    ]


def _network(ns: bool, run: bool) -> Measure:
    stack = detect()
    if not run:
        return Measure("network namespace", False, "")
    if not ns:
        from ._namespaces import landlock_abi

        abstract = "the host's abstract sockets out of reach (Landlock scope)" if \
            landlock_abi() >= 6 else "the host's abstract unix sockets stay reachable (Landlock " \
            "ABI 6, Linux 6.12, would scope them)"
        return Measure("network namespace", False, "none on this rung: RUN gets no sockets "
                       f"but AF_UNIX, {abstract}; --allow network.host gives it the host's "
                       "network")
    if stack.usable:
        return Measure("network namespace", True, f"private network: {stack.describe()}; "
                       "--network=host needs --allow network.host")
    return Measure("network namespace", True, f"no user-mode network stack ({stack.problem}): "
                   f"RUN on the default network gets none; {stack.remedy}")


def _seccomp(run: bool) -> Measure:
    status = seccomp_status()
    if not run:
        return Measure("seccomp", False, "")
    return Measure("seccomp", bool(status), status or "libseccomp.so.2 is not installed: no "
                   "profile (install libseccomp2)")


def _rungs(choice: Choice) -> list[RungStatus]:
    out = []
    for rung in RUNGS:
        missing = choice.missing.get(rung)
        available = missing is None and (RUNGS.index(rung) >= RUNGS.index(choice.rung)
                                         or rung == choice.rung)
        reason = missing.cause if missing else ""
        remedy = "; ".join(x for x in (missing.user_fix, missing.admin_fix) if x) \
            if missing else ""
        out.append(RungStatus(rung, DESCRIPTIONS[rung], available, reason, remedy))
    return out


def sandbox_report(scratch_parent: str | os.PathLike[str] | None = None,
                   isolation: str | None = None) -> SandboxReport:
    p = probe(scratch_parent, proot=True)
    choice = choose(p, isolation)
    return SandboxReport(choice.rung, choice.description,
                         [f.text() for f in choice.replaced], _rungs(choice),
                         measures(choice), findings(p))

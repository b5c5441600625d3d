"""The isolation ladder: the strongest rung this environment allows, and why not a higher one.

1. ``full``: user (unless real root), mount, pid, uts and ipc namespaces, the full id map
   (real root, or a subordinate range through newuidmap), overlayfs with its upper dir on the
   store, a fresh procfs and pivot_root — today's sandbox, the default wherever it works.
2. ``reduced``: namespaces, with each missing piece replaced the way buildah and BuildKit do:
   a single-id map when newuidmap cannot be used; root without CAP_SYS_ADMIN (or root of a
   non-initial user namespace) maps its own ids in a user namespace; no uts/pid namespace
   when refused; an rbind of the existing ``/proc`` when a fresh one is refused; chroot when
   pivot_root is denied; per-RUN copies of the tree (``vfs``, buildah's driver of last resort)
   when overlayfs refuses the store's filesystem. Without a full id map (single-id, or no
   namespace at all) files belong to the caller and their owners are recorded beside each
   tree (layers/owners.py).
3. ``ptrace``: no namespaces at all. RUN goes through ``proot``; everything else (base
   extraction, COPY/ADD, metadata, layers, export) runs in-process with ownership from the
   plan and the layer records (layers/owners.py).
4. ``none``: no namespaces and no usable proot: builds without RUN still work; a RUN fails
   naming the cause and the remedies.

``choose`` reads a :class:`~.probe.HostProbe`; ``--isolation`` / ``NBCONTAINER_ISOLATION``
ask for a rung (the request is refused with the reason when the rung is not available).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Literal

from nbcontainer.errors import NbcontainerError
from nbcontainer.layers.idmap import IdMap, IdRange

from .probe import Attempt, HostProbe

Rung = Literal["full", "reduced", "ptrace", "none"]
RUNGS: tuple[Rung, ...] = ("full", "reduced", "ptrace", "none")
ENV = "NBCONTAINER_ISOLATION"
CHOICES = ("auto", "full", "reduced", "ptrace", "none")
DESCRIPTIONS = {
    "full": "full namespaces",
    "reduced": "reduced namespaces",
    "ptrace": "no namespaces, RUN through ptrace (proot)",
    "none": "no namespaces, no RUN",
}
EPERM, ENOSPC, EINVAL = 1, 28, 22
OVERLAY_UPPER_REFUSED = ("overlay", "fuse", "nfs", "ecryptfs")


@dataclass(frozen=True)
class Finding:
    """Why something is missing or replaced: the cause, and the fix for the user and the
    admin (never a guess: each names what the probe saw)."""

    what: str
    cause: str
    user_fix: str = ""
    admin_fix: str = ""

    def text(self) -> str:
        fixes = [f for f in (self.user_fix, self.admin_fix) if f]
        return f"{self.what}: {self.cause}" + (f" ({'; '.join(fixes)})" if fixes else "")


@dataclass(frozen=True)
class Settings:
    """How a rung runs RUN steps and stores trees."""

    userns: Literal["self", "parent"] | None = None  # None: no user namespace (real root)
    idmap: IdMap = field(default_factory=IdMap.identity)
    uts: bool = True
    pid: bool = True
    proc: Literal["fresh", "bind"] = "fresh"
    pivot: bool = True
    vfs: bool = False  # per-RUN tree copies instead of overlayfs
    records: bool = False  # ownership kept beside the trees (files belong to the caller)


@dataclass(frozen=True)
class Choice:
    rung: Rung
    settings: Settings
    replaced: tuple[Finding, ...] = ()  # what this rung does differently, and why
    missing: dict[str, Finding] = field(default_factory=dict)  # higher rungs: why not

    @property
    def description(self) -> str:
        return DESCRIPTIONS[self.rung]

    def line(self) -> str:
        """The one line a build shows: the rung and what it replaced."""
        text = f"isolation: {self.description}"
        if self.replaced:
            text += " — " + "; ".join(f"{f.what} ({f.cause})" for f in self.replaced)
        return text


def _seccomp_blocks(p: HostProbe, attempt: Attempt) -> bool:
    return p.seccomp == 2 and attempt.errno == EPERM


def userns_finding(p: HostProbe) -> Finding:
    """Why no user namespace can be made here: the true cause among the usual four."""
    a = p.userns
    pod = ("in Kubernetes: securityContext.seccompProfile type Unconfined or Localhost with "
           "a profile allowing unshare/clone(CLONE_NEWUSER)")
    if _seccomp_blocks(p, a):
        return Finding("user namespaces", f"a seccomp filter refuses unshare(CLONE_NEWUSER) "
                       f"({a.message})", "install proot to build RUN steps through ptrace",
                       pod)
    if a.errno == ENOSPC:
        return Finding("user namespaces", "user namespaces are disabled "
                       f"(user.max_user_namespaces is 0 here: {a.message})",
                       "install proot to build RUN steps through ptrace",
                       "sysctl -w user.max_user_namespaces=15000 (on the node)")
    if p.unprivileged_userns_clone == 0:
        return Finding("user namespaces", "unprivileged user namespaces are disabled "
                       "(kernel.unprivileged_userns_clone=0)",
                       "install proot to build RUN steps through ptrace",
                       "sysctl -w kernel.unprivileged_userns_clone=1")
    if a.errno == EINVAL:
        return Finding("user namespaces", f"the kernel refuses a user namespace here ({a.message})",
                       "install proot", "")
    return Finding("user namespaces", f"unshare(CLONE_NEWUSER) refused ({a.message})",
                   "install proot to build RUN steps through ptrace",
                   "allow unprivileged user namespaces (AppArmor: "
                   "kernel.apparmor_restrict_unprivileged_userns=0)")


def mountns_finding(p: HostProbe) -> Finding:
    a = p.mountns
    if _seccomp_blocks(p, a):
        return Finding("mount namespace", f"a seccomp filter refuses unshare ({a.message})",
                       "install proot", "a seccomp profile that allows unshare")
    return Finding("mount namespace", f"unshare(CLONE_NEWNS) refused ({a.message})",
                   "install proot", "CAP_SYS_ADMIN, or unprivileged user namespaces")


def idmap_finding(p: HostProbe) -> Finding:
    """Why the subordinate range cannot be mapped (a single-id map is used instead)."""
    usermod = f"usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {p.user}"
    if p.subuid is None or p.subgid is None:
        return Finding("single-id map", f"no subordinate id range for {p.user} in "
                       "/etc/subuid and /etc/subgid", "", f"as root: {usermod}")
    if not p.newidmap_tools:
        return Finding("single-id map", "newuidmap/newgidmap are not installed", "",
                       "install the uidmap package")
    if p.no_new_privs:
        return Finding("single-id map", "no_new_privs is set, so the setuid newuidmap gains "
                       f"no privilege ({p.newidmap.message})", "",
                       "in Kubernetes: allowPrivilegeEscalation: true; or run outside "
                       "setpriv --no-new-privs")
    return Finding("single-id map", f"newuidmap refused the range ({p.newidmap.message})", "",
                   "run the container with CAP_SYS_ADMIN (newuidmap needs it inside a "
                   "container), or give the user a subordinate range on a host")


def _own_identity() -> IdMap:
    """Root of a non-initial user namespace: map its own ids onto themselves."""
    def ranges(which: str) -> tuple[IdRange, ...]:
        try:
            with open(f"/proc/self/{which}_map") as f:
                rows = [line.split() for line in f if line.strip()]
        except OSError:
            rows = [["0", "0", "65536"]]
        return tuple(IdRange(int(c), int(c), int(n)) for c, _, n in rows)

    return IdMap(ranges("uid"), ranges("gid"))


def _id_settings(p: HostProbe, found: list[Finding]) -> tuple[Settings, bool]:
    """The user-namespace part of the settings; True when it keeps the full id map."""
    if p.privileged:
        return Settings(), True
    if p.can_map_ranges:
        found.append(Finding("user namespace", "root without CAP_SYS_ADMIN in the initial "
                             "user namespace maps its own ids"))
        return Settings(userns="parent", idmap=_own_identity()), True
    if p.newidmap.ok and p.subuid and p.subgid:
        return Settings(userns="parent", idmap=IdMap.rootless(
            p.uid, p.gid, p.subuid[0], p.subgid[0], p.subuid[1], gid_count=p.subgid[1])), True
    found.append(idmap_finding(p))
    return Settings(userns="self", idmap=IdMap.single(p.uid, p.gid), records=True), False


def _namespace_choice(p: HostProbe) -> Choice:
    found: list[Finding] = []
    base, full_map = _id_settings(p, found)
    uts = p.utsns.ok
    if not uts:
        found.append(Finding("no uts namespace", f"sethostname refused ({p.utsns.message})"))
    pid = p.pidns.ok
    if not pid:
        found.append(Finding("no pid namespace", f"unshare(CLONE_NEWPID) refused "
                             f"({p.pidns.message})"))
    proc: Literal["fresh", "bind"] = "fresh"
    if not (pid and p.proc_fresh.ok):
        proc = "bind"
        masked = f"; /proc is masked ({', '.join(p.proc_masked[:3])}…)" if p.proc_masked else ""
        found.append(Finding("rbind /proc", "a fresh procfs is refused " +
                             (f"({p.proc_fresh.message}{masked})" if pid
                              else "(no pid namespace)")))
    pivot = pid and p.pivot_root.ok
    if not pivot:
        found.append(Finding("chroot", f"pivot_root refused ({p.pivot_root.message})"))
    vfs, records = base.vfs, base.records
    if not vfs and not p.overlay_store.ok:
        vfs = True
        found.append(Finding("tree copies", f"overlayfs refuses an upper dir on the store's "
                             f"{p.store_fs} ({p.overlay_store.message})",
                             "put the store (NBCONTAINER_HOME) on a volume (emptyDir) to "
                             "use overlayfs"))
    if vfs and not records and base.userns == "parent" and not p.can_map_ranges:
        # Copies are made in-process; files owned by subordinate ids are not ours to copy.
        found.append(Finding("single-id map", "tree copies with a subordinate range would "
                             "need every file operation inside the user namespace"))
        base = Settings(userns="self", idmap=IdMap.single(p.uid, p.gid))
        records = True
    settings = Settings(base.userns, base.idmap, uts, pid, proc, pivot, vfs, records)
    rung: Rung = "full" if full_map and not found else "reduced"
    return Choice(rung, settings, tuple(found))


def choose(p: HostProbe, request: str | None = None) -> Choice:
    """The rung for ``request`` (``auto``/None: the strongest that works)."""
    request = request or os.environ.get(ENV) or "auto"
    if request not in CHOICES:
        raise NbcontainerError(f"unknown isolation {request!r}",
                               hint=f"choose one of {', '.join(CHOICES)}")
    missing: dict[str, Finding] = {}
    best: Choice
    if p.namespaces:
        best = _namespace_choice(p)
        if best.rung == "reduced":
            missing["full"] = Finding("full", "; ".join(f"{f.what}: {f.cause}"
                                                          for f in best.replaced))
    else:
        why = mountns_finding(p) if p.privileged or p.userns.ok else userns_finding(p)
        missing["full"] = missing["reduced"] = why
        best = Choice("none", Settings(vfs=True, records=True))
    if p.proot.works.ok:
        ptrace = Choice("ptrace", Settings(vfs=True, records=True))
    else:
        missing["ptrace"] = Finding("ptrace", "no proot on PATH" if p.proot.path is None
                                    else f"proot cannot trace here ({p.proot.works.message})",
                                    "install proot (Debian: apt-get install proot)",
                                    "allow ptrace in the seccomp profile")
    if request == "auto":
        if best.rung == "none" and "ptrace" not in missing:
            best = Choice("ptrace", ptrace.settings, (missing["full"],))
        return Choice(best.rung, best.settings, best.replaced, missing)
    return _requested(p, request, best, missing)


def _requested(p: HostProbe, request: str, best: Choice, missing: dict[str, Finding]) -> Choice:
    order = {"full": 0, "reduced": 1, "ptrace": 2, "none": 3}
    if request == "none":
        return Choice("none", Settings(vfs=True, records=True),
                      (Finding("requested", "--isolation none"),), missing)
    if request == "ptrace":
        if "ptrace" in missing:
            f = missing["ptrace"]
            raise NbcontainerError(f"--isolation ptrace is not available: {f.cause}",
                                   hint=f.user_fix)
        return Choice("ptrace", Settings(vfs=True, records=True),
                      (Finding("requested", "--isolation ptrace"),), missing)
    if best.rung in ("none", "ptrace") or order[best.rung] > order[request]:
        why = missing.get(request) or missing.get("full")
        raise NbcontainerError(f"--isolation {request} is not available here: "
                               f"{why.cause if why else best.description}",
                               hint=(why.user_fix or why.admin_fix) if why else None)
    if request == "reduced" and best.rung == "full":  # asked for less: single-id copies
        s = best.settings
        return Choice("reduced", Settings(s.userns or ("parent" if p.uid == 0 else "self"),
                                          s.idmap if p.uid == 0 else IdMap.single(p.uid, p.gid),
                                          s.uts, s.pid, s.proc, s.pivot, True, p.uid != 0),
                      (Finding("requested", "--isolation reduced"),), missing)
    return Choice(best.rung, best.settings, best.replaced, missing)

"""The probe: what this environment lets a build do, found out once per process.

Facts are read from ``/proc`` (uid, capability sets, NoNewPrivs, seccomp mode, user
namespace limits, cgroups) and tried for real by a throwaway helper (``_probe.py``: user,
mount, uts, ipc, net and pid namespaces, ``newuidmap``, overlayfs on the store's filesystem
and on a tmpfs, a fresh procfs, pivot_root) and, when no namespace can be made, ``proot``.
It costs a few tens of milliseconds and runs lazily: when the first step that needs a sandbox
or a file operation runs, or when ``info`` asks; a fully cached build never pays it.

Each command-line build is a new process, so the result is also kept on disk, in the store's
build area, for an hour: keyed by everything it depends on that is cheap to read (boot,
namespaces, credentials, capability sets, seccomp, the sysctls, the id-map files and tools,
the filesystem), so another environment (a pod, a container, another user) probes afresh.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import marshal
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from nbcontainer.layers.idmap import subid_range

from . import messages
from .vfs import remove_scratch

BOOT = Path(__file__).with_name("_boot.py")
CAP_SETUID, CAP_SETGID, CAP_SYS_ADMIN = 7, 6, 21
OVERLAYFS_MAGIC_NAME = "overlay"


@dataclass(frozen=True)
class Attempt:
    """One thing tried: whether it worked and, if not, the errno and the kernel's words."""

    ok: bool
    errno: int | None = None
    message: str = ""

    @classmethod
    def of(cls, steps: dict[str, list[object]], name: str) -> Attempt | None:
        found = steps.get(name)
        if found is None:
            return None
        ok, err, message = found
        return cls(bool(ok), err if isinstance(err, int) else None, str(message))


NOT_TRIED = Attempt(False, None, "not tried")


@dataclass(frozen=True)
class Proot:
    path: str | None
    version: str = ""
    works: Attempt = NOT_TRIED


@dataclass(frozen=True)
class HostProbe:
    """What this process may do. ``Attempt`` fields were tried; the rest were read."""

    uid: int
    gid: int
    user: str
    initial_userns: bool  # our uid_map is the whole id space
    cap_eff: int
    no_new_privs: bool
    seccomp: int  # 0 none, 1 strict, 2 filter
    max_user_namespaces: int | None
    unprivileged_userns_clone: int | None
    subuid: tuple[int, int] | None
    subgid: tuple[int, int] | None
    newidmap_tools: bool
    store_fs: str  # the filesystem type the store sits on
    userns: Attempt  # unshare(CLONE_NEWUSER) (not needed as privileged root)
    mountns: Attempt
    utsns: Attempt  # unshare + sethostname
    ipcns: Attempt
    netns: Attempt
    pidns: Attempt
    newidmap: Attempt  # newuidmap/newgidmap of the subordinate range
    overlay_store: Attempt  # overlay, upper dir on the store's filesystem
    overlay_tmpfs: Attempt
    proc_fresh: Attempt
    proc_bind: Attempt
    pivot_root: Attempt
    cgroup_delegated: bool
    proc_masked: list[str]  # mounts over parts of /proc (a container's masks)
    proot: Proot
    steps: dict[str, list[object]] = field(default_factory=dict, repr=False)

    @property
    def privileged(self) -> bool:
        """Real root: CAP_SYS_ADMIN in the initial user namespace (no user namespace needed)."""
        return self.initial_userns and bool(self.cap_eff >> CAP_SYS_ADMIN & 1)

    @property
    def can_map_ranges(self) -> bool:
        """Root of its namespace with CAP_SETUID/SETGID: may write any map of its own ids."""
        return self.uid == 0 and bool(self.cap_eff >> CAP_SETUID & 1) and \
            bool(self.cap_eff >> CAP_SETGID & 1)

    @property
    def namespaces(self) -> bool:
        return self.mountns.ok and (self.privileged or self.userns.ok)


_cache: dict[int, HostProbe] = {}
_lock = threading.Lock()


def probe(scratch_parent: str | os.PathLike[str] | None = None, *, refresh: bool = False,
          proot: bool | None = None) -> HostProbe:
    """The probe, cached per process and per filesystem of ``scratch_parent`` (the store's
    build area; a temporary directory when None). ``proot``: also try proot (default: only
    when no namespace can be made)."""
    parent = str(scratch_parent or tempfile.gettempdir())
    os.makedirs(parent, exist_ok=True)
    key = os.stat(parent).st_dev  # what the probe finds depends on the filesystem only
    with _lock:
        found = _cache.get(key)
        if found is None and not refresh:
            found = _load(parent)
        if found is None or refresh or (proot and found.proot.works == NOT_TRIED):
            found = _run(parent, proot)
            _save(parent, found)
        _cache[key] = found
        return found


# ---------------------------------------------------------------------- the probe on disk
CACHE_FILE = ".probe.json"
CACHE_TTL = 3600.0  # seconds: a changed environment the key cannot see is found within this


def _fingerprint(parent: str) -> str:
    """A digest of what the probe's answer depends on (cheap reads only)."""
    status = _status()
    facts: list[object] = [os.getuid(), os.getgid(), os.getgroups(), os.stat(parent).st_dev,
                           *(status.get(k, "") for k in ("CapEff", "CapPrm", "CapBnd",
                                                         "NoNewPrivs", "Seccomp",
                                                         "Seccomp_filters"))]
    for path in ("/proc/sys/kernel/random/boot_id", "/proc/sys/user/max_user_namespaces",
                 "/proc/sys/kernel/unprivileged_userns_clone", "/proc/self/uid_map",
                 "/proc/filesystems"):
        try:
            with open(path) as f:
                facts.append(f.read())
        except OSError:
            facts.append(None)
    for ns in ("user", "mnt", "pid", "net", "cgroup"):
        try:
            facts.append(os.readlink(f"/proc/self/ns/{ns}"))
        except OSError:
            facts.append(None)
    for file in ("/etc/subuid", "/etc/subgid", BOOT, Path(__file__)):
        try:
            st = os.stat(file)
            facts.append((st.st_mtime_ns, st.st_size))
        except OSError:
            facts.append(None)
    facts += [shutil.which(t) for t in ("newuidmap", "newgidmap", "proot")]
    facts.append(os.environ.get("PATH", ""))
    return hashlib.sha256(json.dumps(facts, default=str).encode()).hexdigest()


def _private(path: str) -> bool:
    """Ours and writable by us alone: a cache another user could plant is never read."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    return st.st_uid == os.getuid() and not st.st_mode & 0o022


def _load(parent: str) -> HostProbe | None:
    path = os.path.join(parent, CACHE_FILE)
    if not (_private(parent) and _private(path)):
        return None
    try:
        with open(path) as f:
            doc = json.load(f)
        if doc["key"] != _fingerprint(parent) or not 0 <= time.time() - doc["at"] < CACHE_TTL:
            return None
        return _decode(doc["probe"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # unreadable or from another version: probe again


def _save(parent: str, found: HostProbe) -> None:
    if not _private(parent):
        return
    doc = {"key": _fingerprint(parent), "at": time.time(), "probe": dataclasses.asdict(found)}
    tmp = os.path.join(parent, f"{CACHE_FILE}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w") as f:
            json.dump(doc, f)
        os.replace(tmp, os.path.join(parent, CACHE_FILE))
    except (OSError, TypeError, ValueError):
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _decode(doc: dict[str, object]) -> HostProbe:
    values: dict[str, object] = {}
    for f in dataclasses.fields(HostProbe):
        value = doc[f.name]
        if f.type == "Attempt":
            value = Attempt(**value)  # type: ignore[arg-type]
        elif f.type == "Proot":
            p = dict(value)  # type: ignore[call-overload]
            value = Proot(p["path"], p["version"], Attempt(**p["works"]))
        elif f.name in ("subuid", "subgid") and value is not None:
            value = tuple(value)  # type: ignore[arg-type]
        values[f.name] = value
    return HostProbe(**values)  # type: ignore[arg-type]


def _status() -> dict[str, str]:
    out = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                out[key] = value.strip()
    except OSError:
        pass
    return out


def _read_int(path: str) -> int | None:
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def _initial_userns() -> bool:
    try:
        with open("/proc/self/uid_map") as f:
            return f.read().split() == ["0", "0", "4294967295"]
    except OSError:
        return False


def fs_type(path: str) -> str:
    """The filesystem type of ``path`` (from /proc/self/mountinfo: the longest mount point
    that contains it)."""
    real = os.path.realpath(path)
    best, kind = "", "unknown"
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                left, _, right = line.partition(" - ")
                point = left.split()[4].replace("\\040", " ")
                if (real == point or real.startswith(point.rstrip("/") + "/")) and \
                        len(point) >= len(best):
                    best, kind = point, right.split()[0]
    except (OSError, IndexError):
        pass
    return kind


def _proc_masks() -> list[str]:
    """Mount points below /proc: a container runtime's masks (a fresh procfs is then refused
    in a user namespace, since it would reveal what they hide)."""
    found = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                point = line.split()[4]
                if point.startswith("/proc/") and not point.startswith("/proc/sys/fs/binfmt"):
                    found.append(point)
    except (OSError, IndexError):
        pass
    return found


def _cgroup_delegated() -> bool:
    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return False
    unified = [ln.split(":", 2)[2] for ln in lines if ln.startswith("0::")]
    if not unified:
        return False
    for base in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
        path = base + unified[0]
        if os.path.exists(path + "/cgroup.subtree_control"):
            return os.access(path, os.W_OK) and os.access(path + "/cgroup.procs", os.W_OK)
    return False


def _helper_steps(scratch: str, userns: bool, subuid: tuple[int, int] | None,
                  subgid: tuple[int, int] | None, with_idmap: bool) -> dict[str, list[object]]:
    argv = messages.hostprobe_argv({
        "mode": "hostprobe", "scratch": scratch, "userns": userns, "uid": os.getuid(),
        "gid": os.getgid(), "subuid": list(subuid) if with_idmap and subuid else [],
        "subgid": list(subgid) if with_idmap and subgid else []})
    proc = subprocess.run([sys.executable, "-I", "-S", str(BOOT), *argv],
                          stdin=subprocess.DEVNULL, capture_output=True, check=False)
    try:
        steps = marshal.loads(proc.stdout)
    except (EOFError, ValueError, TypeError):
        steps = None
    if not isinstance(steps, dict):
        return {"crash": [False, None, proc.stderr.decode(errors="replace").strip()[-500:]]}
    return steps


def probe_proot() -> Proot:
    """A usable proot: on PATH, and able to trace a command here (ptrace may be refused)."""
    path = shutil.which("proot")
    if path is None:
        return Proot(None)
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10,
                             check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        out = ""
    version = m.group(1) if (m := re.search(r"\b(\d+\.\d+(?:\.\d+)?)\b", out)) else ""
    argv = messages.ptrace_argv({"mode": "ptrace", "status_fd": -1, "confine_fd": -1,
                                 "argv": [path, "-r", "/", "-0", "true"]})
    try:
        proc = subprocess.run([sys.executable, "-I", "-S", str(BOOT), *argv],
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=30,
                              check=False, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                                                "PROOT_TMP_DIR": tempfile.gettempdir()})
        works = Attempt(True) if proc.returncode == 0 else Attempt(
            False, None, (proc.stderr or proc.stdout).decode(errors="replace").strip()[-300:])
    except (OSError, subprocess.TimeoutExpired) as exc:
        works = Attempt(False, None, str(exc))
    return Proot(path, version, works)


def _run(parent: str, want_proot: bool | None) -> HostProbe:
    status = _status()
    uid, gid = os.getuid(), os.getgid()
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = str(uid)
    cap_eff = int(status.get("CapEff", "0"), 16)
    initial = _initial_userns()
    privileged = initial and bool(cap_eff >> CAP_SYS_ADMIN & 1)
    subuid = subgid = None
    if uid != 0:
        subuid = subid_range("/etc/subuid", user, uid)
        subgid = subid_range("/etc/subgid", user, uid)
    tools = bool(shutil.which("newuidmap") and shutil.which("newgidmap"))
    os.makedirs(parent, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix=f"probe-{os.getpid()}-", dir=parent)
    try:
        steps = _helper_steps(scratch, not privileged, subuid, subgid,
                              with_idmap=tools and bool(subuid and subgid))
    finally:
        remove_scratch(scratch)

    def got(name: str) -> Attempt:
        return Attempt.of(steps, name) or NOT_TRIED

    utsns = got("utsns")
    if utsns.ok:
        utsns = got("sethostname")
    namespaces = got("mountns").ok and (privileged or got("userns").ok)
    return HostProbe(
        uid=uid, gid=gid, user=user, initial_userns=initial, cap_eff=cap_eff,
        no_new_privs=status.get("NoNewPrivs", "0") == "1",
        seccomp=int(status.get("Seccomp", "0") or 0),
        max_user_namespaces=_read_int("/proc/sys/user/max_user_namespaces"),
        unprivileged_userns_clone=_read_int("/proc/sys/kernel/unprivileged_userns_clone"),
        subuid=subuid, subgid=subgid, newidmap_tools=tools, store_fs=fs_type(parent),
        userns=Attempt(True, None, "not needed (privileged)") if privileged else got("userns"),
        mountns=got("mountns"), utsns=utsns, ipcns=got("ipcns"), netns=got("netns"),
        pidns=got("pidns"), newidmap=got("newidmap"), overlay_store=got("overlay_store"),
        overlay_tmpfs=got("overlay_tmpfs"), proc_fresh=got("proc_fresh"),
        proc_bind=got("proc_bind"), pivot_root=got("pivot_root"),
        cgroup_delegated=_cgroup_delegated(), proc_masked=_proc_masks(),
        proot=probe_proot() if (want_proot or (want_proot is None and not namespaces))
        else Proot(shutil.which("proot")),
        steps=steps)

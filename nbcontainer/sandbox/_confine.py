"""The last steps before a RUN's command is exec'd: what confines the process itself.

In order (runc's, for a container without no_new_privs): a fresh session keyring; the
resource limits the caller asked for where no cgroup holds them; the capability bounding
set; the seccomp programs (the rung's own small filters, then the profile), loaded while
CAP_SYS_ADMIN is still held so no_new_privs is not needed; the other four capability sets,
set explicitly (inheritable and ambient empty, whatever the caller held: a caller with
CAP_SYS_ADMIN in its inheritable set must not pass it on through ``execve``). The uid
change that follows clears the effective and permitted sets of a non-root USER, as in
Docker. Everything after the profile is loaded (capset, prctl, setgroups, setresuid, chdir,
setsid, execve) is allowed by it.

Runs in the helper (stdlib and siblings only).
"""

from __future__ import annotations

import resource

from . import _namespaces as ns
from ._control import Step

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .messages import RunWire

# Docker's default capability set for RUN/containers (moby/oci/caps/defaults.go).
DOCKER_CAPS = frozenset({0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31})
_RLIMITS = {"nproc": resource.RLIMIT_NPROC, "data": resource.RLIMIT_DATA}
EPERM, ENOSYS, EACCES = 1, 38, 13


def kept_caps(spec: RunWire) -> frozenset[int]:
    """The capabilities the command keeps: Docker's set, or (insecure) every one."""
    mask = spec.get("caps")
    if mask is None:
        return DOCKER_CAPS
    return frozenset(c for c in range(64) if mask >> c & 1)


def join_keyring() -> None:
    """A fresh session keyring; where an outer seccomp filter refuses keyctl, the command
    cannot reach any keyring either, so that is not an error."""
    try:
        ns.join_session_keyring()
    except OSError as exc:
        if exc.errno not in (EPERM, ENOSYS, EACCES):
            raise


def set_rlimits(limits: dict[str, int]) -> None:
    for name, value in limits.items():
        which = _RLIMITS[name]
        _, hard = resource.getrlimit(which)
        soft = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(which, (soft, soft))


def load_filters(programs: list[bytes]) -> None:
    """Load each program; without CAP_SYS_ADMIN here no_new_privs must be set first."""
    from ._seccomp import install

    for program in programs:
        try:
            install(program, no_new_privs=False)
        except PermissionError:
            install(program, no_new_privs=True)


def confine(spec: RunWire, programs: list[bytes]) -> None:
    """Everything above, for the process that is about to become the command (still root
    of its namespace)."""
    if spec.get("keyring", True):
        Step.name = "keyring"
        join_keyring()
    if spec.get("rlimits"):
        Step.name = "limits"
        set_rlimits(spec["rlimits"])
    Step.name = "capabilities"
    keep = kept_caps(spec)
    ns.drop_bounding_caps(keep)
    if programs:
        Step.name = "seccomp"
        load_filters(programs)
    Step.name = "capabilities"
    # (only what we hold: a caller without, say, CAP_SYS_MODULE cannot grant it)
    mask = sum(1 << c for c in keep if c <= ns.last_cap()) & permitted()
    ns.set_capabilities(mask, mask, 0)


def permitted() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapPrm:"):
                return int(line.split()[1], 16)
    return (1 << 64) - 1

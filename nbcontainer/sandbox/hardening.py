"""What a RUN (and ``nbcontainer run``) may do beyond Docker's default containment: the
user's options, checked once, and the entitlements, as BuildKit spells them.

By default every RUN gets a private network with outbound access through a user-mode stack
(``network.py``), Docker's seccomp profile (``seccomp.py``), a fresh session keyring,
Docker's capability set in all five sets, a nodev root and ``/dev``, Docker's masked and
read-only paths and a pids limit (``limits.py``). Loosening any of it takes an explicit
option: ``--allow network.host`` (for ``RUN --network=host``, ``run --network host``),
``--allow security.insecure`` (for ``RUN --security=insecure``: no seccomp, every
capability, nothing masked), ``--security-opt seccomp=unconfined|PROFILE.json``,
``--pids-limit 0``. Nothing reads them from the environment: a notebook cell gets host
networking or insecure mode only by asking for it on its own line.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from nbcontainer.errors import NbcontainerError

from ._confine import DOCKER_CAPS

__all__ = ["DOCKER_CAPS", "Hardening", "EntitlementError", "effective_network", "seccomp_program"]

NETWORK_HOST = "network.host"
SECURITY_INSECURE = "security.insecure"
ENTITLEMENTS = (NETWORK_HOST, SECURITY_INSECURE)
DEFAULT_PIDS_LIMIT = 2048  # podman's default; Docker has none
MIN_MEMORY = 6 * 1024 * 1024  # docker refuses less

Network = Literal["default", "host", "none"]  # what a RUN asks for
Security = Literal["sandbox", "insecure"]
Wire = Literal["sandbox", "host", "none"]  # what it gets: sandbox is the private network


class EntitlementError(NbcontainerError):
    """A RUN or ``run`` asked for something the build was not allowed to grant."""


@dataclass(frozen=True)
class Hardening:
    """The containment options of one build or ``run`` (defaults: Docker's)."""

    allow: frozenset[str] = frozenset()
    seccomp: str = "default"  # "default", "unconfined" or a profile's path
    memory: int | None = None  # bytes
    pids_limit: int | None = DEFAULT_PIDS_LIMIT  # None: unlimited
    seccomp_profile: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def parse(cls, allow: Iterable[str] = (), security_opt: Iterable[str] = (),
              memory: str | int | None = None, pids_limit: int | None = None) -> Hardening:
        """From the flags (``--allow``, ``--security-opt``, ``--memory``, ``--pids-limit``);
        a bad value raises an error that names it."""
        allowed = frozenset(allow)
        unknown = sorted(allowed - set(ENTITLEMENTS))
        if unknown:
            raise NbcontainerError(f"unknown entitlement {unknown[0]!r}",
                                   hint=f"--allow takes {' or '.join(ENTITLEMENTS)}")
        seccomp, profile = "default", None
        for opt in security_opt:
            seccomp, profile = _security_opt(opt)
        limit = DEFAULT_PIDS_LIMIT if pids_limit is None else pids_limit
        return cls(allowed, seccomp, parse_memory(memory) if memory is not None else None,
                   None if limit <= 0 else limit, profile)

    def network(self, requested: str) -> Network:
        """A RUN's ``--network`` (BuildKit's words) checked against the entitlements."""
        if requested in ("", "default", "bridge"):
            return "default"
        if requested == "none":
            return "none"
        if requested == "host":
            if NETWORK_HOST not in self.allow:
                raise EntitlementError(
                    "network mode \"host\" needs the network.host entitlement",
                    hint="allow it for this build: --allow network.host (the same on "
                         "%%dockerfile, allow=['network.host'] in the API)")
            return "host"
        raise NbcontainerError(f"unsupported network mode {requested!r}",
                               hint="use default, none or host")

    def security(self, requested: str) -> Security:
        """A RUN's ``--security`` checked against the entitlements."""
        if requested in ("", "sandbox"):
            return "sandbox"
        if requested == "insecure":
            if SECURITY_INSECURE not in self.allow:
                raise EntitlementError(
                    "RUN --security=insecure needs the security.insecure entitlement",
                    hint="allow it for this build: --allow security.insecure (it turns off "
                         "seccomp, grants every capability and masks nothing)")
            return "insecure"
        raise NbcontainerError(f"unsupported security mode {requested!r}",
                               hint="use sandbox or insecure")


def _security_opt(opt: str) -> tuple[str, dict[str, Any] | None]:
    key, sep, value = opt.partition("=")
    if not sep:
        key, sep, value = opt.partition(":")  # docker's old spelling seccomp:unconfined
    if key != "seccomp" or not value:
        raise NbcontainerError(f"unsupported --security-opt {opt!r}",
                               hint="nbcontainer takes seccomp=unconfined or "
                                    "seccomp=PROFILE.json")
    if value == "unconfined":
        return "unconfined", None
    import json

    try:
        with open(value, encoding="utf-8") as f:
            profile = json.load(f)
    except (OSError, ValueError) as exc:
        raise NbcontainerError(f"cannot read the seccomp profile {value}: {exc}",
                               hint="a Docker seccomp profile (JSON), e.g. moby's "
                                    "profiles/seccomp/default.json") from None
    if not isinstance(profile, dict) or "syscalls" not in profile and \
            "defaultAction" not in profile:
        raise NbcontainerError(f"{value} is not a seccomp profile",
                               hint="Docker's format: defaultAction, syscalls, archMap")
    return value, profile


_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_memory(text: str | int) -> int:
    """Docker's ``--memory``: bytes, or a number with b, k, m, g (kb, mb, … too)."""
    if isinstance(text, int):
        value = text
    else:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([bkmgt]?)b?\s*", text.lower())
        if m is None:
            raise NbcontainerError(f"invalid --memory {text!r}",
                                   hint="a size like 512m or 2g")
        value = int(float(m.group(1)) * _UNITS[m.group(2)])
    if value < MIN_MEMORY:
        raise NbcontainerError(f"--memory {text} is below the minimum of 6m",
                               hint="give the RUN at least 6 MB")
    return value


def effective_network(requested: Network, hardening: Hardening, private: bool) -> Wire:
    """What a RUN asking for ``requested`` gets: ``private`` says whether the private
    network (a namespace behind the user-mode stack) can be made here. Without it a RUN on
    the default network gets no network at all, or the host's when the build allows that
    explicitly; never the host's silently."""
    if requested == "host":
        if NETWORK_HOST not in hardening.allow:
            hardening.network("host")  # raises: the entitlement is missing
        return "host"
    if requested == "none":
        return "none"
    if private:
        return "sandbox"
    return "host" if NETWORK_HOST in hardening.allow else "none"


CAP_NAMES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE",
    "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME",
    "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
    "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ",
    "PERFMON", "BPF", "CHECKPOINT_RESTORE")
ALL_CAPS = frozenset(range(len(CAP_NAMES)))

_programs: dict[tuple[str, frozenset[int]], bytes | None] = {}
_programs_lock = threading.Lock()


def seccomp_program(hardening: Hardening, caps: frozenset[int]) -> bytes | None:
    """The BPF program a RUN holding ``caps`` loads (None: unconfined, or no libseccomp
    here for the default profile: ``seccomp_status`` says so). Compiled once per process."""
    if hardening.seccomp == "unconfined":
        return None
    key = (hardening.seccomp, caps)
    with _programs_lock:
        if key not in _programs:
            _programs[key] = _compile(hardening, caps)
        return _programs[key]


def _compile(hardening: Hardening, caps: frozenset[int]) -> bytes | None:
    from . import _seccomp
    from ._seccomp_profile import PROFILE

    profile = PROFILE if hardening.seccomp == "default" else hardening.seccomp_profile
    if _seccomp.libseccomp() is None:
        if hardening.seccomp == "default":
            return None
        raise NbcontainerError("--security-opt seccomp=FILE needs libseccomp",
                               hint="install libseccomp2 (part of Debian's and Ubuntu's base)")
    names = frozenset("CAP_" + CAP_NAMES[c] for c in caps if c < len(CAP_NAMES))
    try:
        return _seccomp.compile_profile(profile or {}, names)
    except _seccomp.ProfileError as exc:
        raise NbcontainerError(f"cannot compile the seccomp profile {hardening.seccomp}: {exc}",
                               hint="a Docker-format profile (defaultAction, syscalls)") from None


def seccomp_status() -> str:
    """What the default profile is loaded with here (for ``info``), or why not."""
    from . import _seccomp

    version = _seccomp.libseccomp_version()
    if not version:
        return ""
    return f"Docker's default profile (libseccomp {version})"

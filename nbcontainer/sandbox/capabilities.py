"""One-time probe of the kernel features the sandbox needs, with errors that name them."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nbcontainer.layers.idmap import IdMap, have_newidmap

from . import messages
from .errors import FEATURES, SandboxError
from .namespaced import BOOT
from .vfs import remove_scratch

if TYPE_CHECKING:
    from .messages import ProbeResult

_cache: dict[bool, Capabilities] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class Capabilities:
    """What this host allows. ``problem`` is None when the sandbox can run."""

    rootless: bool
    namespaces: bool
    user_namespaces: bool | None  # None: not needed (real root)
    overlayfs: bool
    newuidmap: bool
    subordinate_ids: bool
    problem: str | None = None
    hint: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def require(self) -> None:
        """Raise a :class:`SandboxError` naming the missing kernel feature, if any."""
        if self.problem is not None:
            raise SandboxError(self.problem, hint=self.hint)


def detect_capabilities(rootless: bool | None = None, *, refresh: bool = False) -> Capabilities:
    """Probe once per process (about 20 ms: a helper unshares and mounts a tiny overlay)."""
    rootless = (os.geteuid() != 0) if rootless is None else rootless
    with _lock:
        if refresh or rootless not in _cache:
            _cache[rootless] = _probe(rootless)
        return _cache[rootless]


def _probe(rootless: bool) -> Capabilities:
    idmap = IdMap.for_current_user() if rootless else IdMap.identity()
    result = _run_probe(rootless)
    step = None if result["ok"] else result.get("step", "namespaces")
    problem = hint = None
    if step is not None:
        feature, hint = FEATURES.get(step if step != "whiteout" else "overlay", (step, None))
        problem = f"sandbox: {feature} not available ({result.get('message', '')})"
    return Capabilities(
        rootless=rootless,
        namespaces=step not in ("namespaces",),
        user_namespaces=(step != "userns") if rootless else None,
        overlayfs=step not in ("namespaces", "userns", "mount", "overlay", "whiteout"),
        newuidmap=have_newidmap(),
        subordinate_ids=rootless and not idmap.is_single,
        problem=problem,
        hint=hint,
    )


def _run_probe(rootless: bool) -> ProbeResult:
    scratch = tempfile.mkdtemp(prefix="nbsandbox-probe-")
    argv = messages.probe_argv({"mode": "probe", "scratch": scratch, "userns": rootless,
                                "uid": os.getuid(), "gid": os.getgid()})
    try:
        proc = subprocess.run([sys.executable, "-I", "-S", str(BOOT), *argv],
                              stdin=subprocess.DEVNULL, capture_output=True, check=False)
    finally:
        remove_scratch(scratch)
    try:
        return messages.decode_probe(proc.stdout)
    except (EOFError, ValueError, TypeError):
        return {"ok": False, "step": "namespaces",
                "message": proc.stderr.decode(errors="replace").strip()}

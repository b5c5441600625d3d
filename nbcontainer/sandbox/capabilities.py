"""One-time probe of the kernel features the sandbox needs, with errors that name them."""

from __future__ import annotations

import marshal
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass

from .idmap import IdMapping, have_newidmap
from .runner import _FEATURES, BOOT, SandboxError

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
    idmap = IdMapping.for_current_user() if rootless else IdMapping.identity()
    scratch = tempfile.mkdtemp(prefix="nbsandbox-probe-")
    try:
        proc = subprocess.run(
            [sys.executable, "-I", "-S", str(BOOT), "probe", scratch, "1" if rootless else "0",
             str(os.getuid()), str(os.getgid())],
            stdin=subprocess.DEVNULL, capture_output=True, check=False)
        try:
            result = marshal.loads(proc.stdout)
        except (EOFError, ValueError, TypeError):
            result = {"ok": False, "step": "namespaces",
                      "message": proc.stderr.decode(errors="replace").strip()}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    step = None if result["ok"] else result["step"]
    problem = hint = None
    if step is not None:
        feature, hint = _FEATURES.get(step if step != "whiteout" else "overlay",
                                      (step, None))
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

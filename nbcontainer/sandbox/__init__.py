"""The RUN sandbox (BuildKit's executor): runs a command over layer dirs, rootful or rootless.

Usage::

    from nbcontainer.sandbox import RunSpec, check, open_executor

    with open_executor() as executor:     # rootless automatically when not root
        argv = ["/bin/sh", "-c", "apt-get update"]
        result = executor.run(RunSpec(lowerdirs=[layer2, layer1],      # top first
                                      upperdir=scratch / "upper", workdir=scratch / "work",
                                      argv=argv, env={"PATH": "..."}, user="app", cwd="/app",
                                      output=sys.stdout.buffer.write))
        check(argv, result)              # BuildError: command, exit code, last output lines
    # scratch/upper holds the RUN's changes; result.idmap maps its owners back.

The interface is ``Executor`` (``executor.py``); ``NamespaceExecutor`` (``namespaced.py``,
also known as ``Sandbox``) runs each RUN in Linux namespaces over overlayfs, from a helper
process whose code is the private ``_*.py`` modules; every message that crosses a process
boundary is defined in ``messages.py``.

``open_executor()`` climbs the isolation ladder (``ladder.py``): a probe of the environment
(``probe.py``, once per process, lazily) picks the full namespace sandbox, a reduced one
(single-id map, rbind ``/proc``, chroot, per-RUN tree copies in ``vfs.py``), RUN through
``proot`` (``ptrace.py``) or no RUN at all; ``report.py`` is what ``info`` shows.

Contract with the caller and the layer writer:

* ``upperdir``/``workdir`` are fresh, empty and on one filesystem; the merged tree is mounted
  at ``mountpoint`` (default ``<upperdir>/../merged``, created if missing, left empty) inside
  the sandbox's private mount namespace only, and is gone when ``run`` returns.
* The upper dir contains only what the command changed. Mount points are never created in
  it: ``/dev``, ``/proc``, ``/sys``, ``/etc/{hosts,resolv.conf,hostname}`` and the targets
  of extra mounts that the image lacks come from a stub lower layer on a private tmpfs.
  Writes to ``/dev/null`` go to the device. The only addition of the sandbox's own is the
  working directory when the image lacks it (created as root 0755, as Docker does).
  So the layer writer excludes nothing by path; it converts char 0:0 whiteouts and
  ``trusted.overlay.opaque`` (root) / ``user.overlay.opaque`` (rootless) dirs, drops every
  ``*.overlay.*`` xattr (origin, impure, uuid) and ignores the upper dir's root entry.
* Rootless, lower dirs must be owned by host ids of ``Executor.idmap`` (``layers.idmap.shift_tree`` as
  root, or extract inside the namespace with ``Executor.run_in_userns``); files in the upper
  dir are owned by host ids and go back with ``IdMap.to_container``. Files owned by
  subordinate ids can only be deleted inside the namespace (``run_in_userns(["rm", ...])``).
* The command runs as pid 1 of its pid namespace under Docker's containment
  (``hardening.py``): its capability set in all five sets, its seccomp profile, a fresh
  session keyring, its masked and read-only paths, a nodev root and ``/dev``, a pids limit,
  and a private network behind a user-mode stack (``network.py``); the host's network only
  with the ``network.host`` entitlement, only ``lo`` with ``network="none"``.

See ``namespaced.py`` for the caller's side and ``_helper.py`` for what happens inside.
"""

from typing import TYPE_CHECKING, Any

from ..lazy import exports

if TYPE_CHECKING:
    from nbcontainer.layers.idmap import IdMap

    from .capabilities import Capabilities, detect_capabilities
    from .container import run_container
    from .errors import SandboxError
    from .executor import Executor
    from .factory import LadderExecutor, open_executor
    from .hardening import EntitlementError, Hardening
    from .ladder import Choice, choose
    from .namespaced import NamespaceExecutor, Sandbox
    from .probe import HostProbe
    from .ptrace import PtraceExecutor
    from .spec import (
        BindMount,
        LowerFile,
        Mount,
        RunResult,
        RunSpec,
        SecretMount,
        TmpfsMount,
        check,
        failure_error,
        format_failure,
    )

__all__ = [
    "BindMount",
    "Capabilities",
    "Choice",
    "EntitlementError",
    "Executor",
    "Hardening",
    "HostProbe",
    "IdMap",
    "LadderExecutor",
    "LowerFile",
    "Mount",
    "NamespaceExecutor",
    "PtraceExecutor",
    "RunResult",
    "RunSpec",
    "Sandbox",
    "SandboxError",
    "SecretMount",
    "TmpfsMount",
    "check",
    "choose",
    "detect_capabilities",
    "failure_error",
    "format_failure",
    "open_executor",
    "run_container",
]

_getattr = exports(__name__, {
    "Capabilities": "capabilities",
    "detect_capabilities": "capabilities",
    "run_container": "container",
    "SandboxError": "errors",
    "Executor": "executor",
    "open_executor": "factory",
    "LadderExecutor": "factory",
    "Hardening": "hardening",
    "EntitlementError": "hardening",
    "Choice": "ladder",
    "choose": "ladder",
    "HostProbe": "probe",
    "PtraceExecutor": "ptrace",
    "NamespaceExecutor": "namespaced",
    "Sandbox": "namespaced",
    "BindMount": "spec",
    "LowerFile": "spec",
    "Mount": "spec",
    "RunResult": "spec",
    "RunSpec": "spec",
    "SecretMount": "spec",
    "TmpfsMount": "spec",
    "check": "spec",
    "failure_error": "spec",
    "format_failure": "spec",
})


def __getattr__(name: str) -> Any:
    if name == "IdMap":  # the one id-map class lives with the layer codec
        from ..layers.idmap import IdMap

        return IdMap
    return _getattr(name)

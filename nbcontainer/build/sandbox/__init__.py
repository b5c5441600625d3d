"""The RUN sandbox: Linux namespaces over overlayfs, rootful or rootless.

Usage::

    from nbcontainer.build.sandbox import Sandbox, RunSpec, check

    with Sandbox() as sandbox:          # rootless automatically when not root
        result = sandbox.run(RunSpec(lowerdirs=[layer2, layer1], upperdir=scratch / "upper",
                                     workdir=scratch / "work",
                                     argv=["/bin/sh", "-c", "apt-get update"],
                                     output=sys.stdout.buffer.write))
        check(["/bin/sh", "-c", "apt-get update"], result)   # BuildError on failure
    # scratch/upper now holds the RUN's changes; result.idmap maps its owners back.

See ``runner.py`` for the process model and ``_helper.py`` for what happens inside.
"""

from .capabilities import Capabilities, detect_capabilities
from .container import run_container
from .idmap import IdMapping, shift_tree
from .runner import Sandbox, SandboxError
from .spec import (
    BindMount,
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
    "IdMapping",
    "Mount",
    "RunResult",
    "RunSpec",
    "Sandbox",
    "SandboxError",
    "SecretMount",
    "TmpfsMount",
    "check",
    "detect_capabilities",
    "failure_error",
    "format_failure",
    "run_container",
    "shift_tree",
]

"""``nbcontainer run``: an image's entrypoint/cmd in the RUN sandbox, over a throwaway upper."""

from __future__ import annotations

import secrets
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from nbcontainer.errors import BuildError

from .executor import Executor
from .factory import open_executor
from .spec import Control, LowerFile, Mount, RunResult, RunSpec


def _stdout(chunk: bytes) -> None:
    sys.stdout.buffer.write(chunk)
    sys.stdout.buffer.flush()


def container_argv(config: Mapping[str, Any], command: Sequence[str] | None = None,
                   entrypoint: Sequence[str] | None = None) -> list[str]:
    """Docker's rule: ENTRYPOINT + (command or CMD); overriding the entrypoint drops CMD."""
    if entrypoint is not None:
        argv = list(entrypoint) + list(command or [])
    else:
        argv = list(config.get("Entrypoint") or []) + list(command or config.get("Cmd") or [])
    if not argv:
        raise BuildError("no command specified", hint="the image has no ENTRYPOINT or CMD; "
                                                      "pass a command after the image name")
    return argv


def run_container(lowerdirs: Sequence[Path], config: Mapping[str, Any],
                  command: Sequence[str] | None = None, *,
                  entrypoint: Sequence[str] | None = None,
                  env: Mapping[str, str] | None = None, user: str | None = None,
                  workdir: str | None = None, network: Literal["default", "host", "none"] = "default",
                  hostname: str | None = None,
                  output: Callable[[bytes], None] | None = _stdout,
                  stdin: bytes | int | None = None, timeout: float | None = None,
                  scratch: Path | None = None, sandbox: Executor | None = None,
                  mounts: Sequence[Mount] = (), lower_files: Sequence[LowerFile] = (),
                  init: bool = False, tty: bool = False, control: Control | None = None
                  ) -> RunResult:
    """Run an image (its extracted layers, top first, and its config) and return the result.

    ``config`` is the image config's ``config`` object (Env, Entrypoint, Cmd, User,
    WorkingDir) or the whole image config. Changes go to a throwaway upper dir in ``scratch``
    (a temporary directory, removed afterwards, when not given). ``mounts``,
    ``lower_files`` (``--host-ca``), ``init``, ``tty`` and ``control``: as in
    :class:`RunSpec`.
    """
    config = config.get("config", config) or {}
    argv = container_argv(config, command, entrypoint)
    environ = dict(item.split("=", 1) for item in config.get("Env") or [] if "=" in item)
    environ.update(env or {})
    own_sandbox = sandbox is None
    box = sandbox or open_executor(warm=False)
    own_scratch = scratch is None
    base = Path(scratch or tempfile.mkdtemp(prefix="nbcontainer-run-"))
    try:
        for name in ("upper", "work"):
            (base / name).mkdir(exist_ok=True)
        spec = RunSpec(
            lowerdirs=list(lowerdirs), upperdir=base / "upper", workdir=base / "work",
            mountpoint=base / "merged", argv=argv, env=environ,
            user=user if user is not None else config.get("User") or "",
            cwd=workdir or config.get("WorkingDir") or "/", network=network,
            hostname=hostname or secrets.token_hex(6), output=output, stdin=stdin,
            timeout=timeout, mounts=list(mounts), lower_files=list(lower_files), init=init,
            tty=tty, control=control)
        return box.run(spec)
    finally:
        if own_scratch:
            remove_tree(box, base)
        if own_sandbox:
            box.close()


def remove_tree(sandbox: Executor, path: Path) -> None:
    """Delete a scratch tree; rootless, files owned by subordinate ids need the namespace."""
    try:
        shutil.rmtree(path)
    except PermissionError:
        if not sandbox.rootless:
            raise
        sandbox.run_in_userns(["rm", "-rf", "--", str(path)])

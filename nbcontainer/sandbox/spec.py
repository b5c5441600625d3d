"""What one RUN asks of the sandbox, and what it gives back."""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from nbcontainer.errors import BuildError
from nbcontainer.layers.idmap import IdMap

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_HOSTNAME = "buildkitsandbox"
TAIL_BYTES = 64 * 1024


@dataclass(frozen=True)
class BindMount:
    """A host file or directory at ``target`` (``RUN --mount=type=bind|cache``)."""

    source: Path
    target: str
    readonly: bool = True


@dataclass(frozen=True)
class TmpfsMount:
    """A fresh tmpfs at ``target`` (``RUN --mount=type=tmpfs``); ``size`` in bytes."""

    target: str
    size: int | None = None
    mode: int = 0o1777


@dataclass(frozen=True)
class SecretMount:
    """A read-only file holding ``data`` at ``target`` that lives in memory only
    (``RUN --mount=type=secret``); ``uid``/``gid`` are container ids."""

    target: str
    data: bytes = field(repr=False)
    mode: int = 0o400
    uid: int = 0
    gid: int = 0


Mount = BindMount | TmpfsMount | SecretMount


@dataclass(frozen=True)
class LowerFile:
    """A file the command finds at ``target`` as if the image held it (``--host-ca``'s CA
    bundles): it lives in the sandbox's stub lower layer, above the image's layers, so it
    reaches the upper dir only when the command changes it (overlayfs copies it up; a file
    the command writes anew is its own). An image file at ``target`` is hidden for the RUN.
    The parents of ``target`` must be directories of the image or missing (created like mount
    targets, with the image's metadata): below a symlink the file is not placed."""

    target: str
    data: bytes = field(repr=False)
    mode: int = 0o644
class Control:
    """Signals for a command while it runs (``docker kill -s``): the executor attaches a
    sender when the command starts and detaches it when it ends; ``signal`` from any thread
    or a signal handler forwards ``signum`` to the command (False when it is not running)."""

    def __init__(self) -> None:
        self._send: Callable[[int], None] | None = None

    def attach(self, send: Callable[[int], None] | None) -> None:
        self._send = send

    def signal(self, signum: int) -> bool:
        send = self._send
        if send is None:
            return False
        try:
            send(int(signum))  # an enum.IntEnum member does not marshal
        except OSError:
            return False
        return True


@dataclass
class RunSpec:
    """One command to run over ``lowerdirs`` (top first) with a fresh ``upperdir``.

    ``upperdir`` and ``workdir`` must be empty directories on the same filesystem; the merged
    tree is mounted at ``mountpoint`` (default: ``merged`` next to ``upperdir``, created if
    missing) inside the sandbox's private mount namespace only. ``argv`` is exec'd as is (the
    caller applies SHELL); ``env`` gets Docker's default PATH when it has none and HOME from the
    user's passwd entry. ``user`` is ``name|uid[:group|gid]`` resolved in the image.
    ``stdin`` is None (/dev/null), bytes, or a file descriptor to pass through. ``output``
    receives stdout and stderr (merged) as they arrive. ``init`` keeps a minimal init as pid 1
    that reaps orphans and forwards signals (``docker run --init``); by default the command
    is pid 1 itself, as in a BuildKit RUN. ``tty``: ``stdin`` is a terminal (a pty's
    follower side) that also takes stdout and stderr and becomes the command's controlling
    terminal (``docker run -t``). ``control`` forwards signals while the command runs.
    """

    lowerdirs: Sequence[Path]
    upperdir: Path
    workdir: Path
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    user: str = ""
    cwd: str = "/"
    # default: the private network (a user-mode stack); host needs the network.host
    # entitlement of the executor's Hardening; none: only a loopback of its own.
    network: Literal["default", "host", "none"] = "default"
    security: Literal["sandbox", "insecure"] = "sandbox"  # insecure: security.insecure
    hostname: str = DEFAULT_HOSTNAME
    mounts: Sequence[Mount] = ()
    lower_files: Sequence[LowerFile] = ()
    extra_hosts: Mapping[str, str] = field(default_factory=dict)
    stdin: bytes | int | None = None
    output: Callable[[bytes], None] | None = None
    timeout: float | None = None
    mountpoint: Path | None = None
    init: bool = False
    tty: bool = False
    control: Control | None = None
    # Rungs that copy the tree (vfs): ``lowerdirs[0]`` is a private tree the executor may
    # take over instead of copying (the caller will not use it again).
    private_lower: bool = False

    def __post_init__(self) -> None:
        if not self.argv:
            raise BuildError("RUN needs a command", hint="argv is empty")
        if self.network not in ("default", "host", "none"):
            raise BuildError(f"unsupported network mode {self.network!r}",
                             hint="use 'default', 'host' or 'none'")
        for mount in [*self.mounts, *self.lower_files]:
            if not mount.target.startswith("/") or ".." in mount.target.split("/"):
                raise BuildError(f"mount target {mount.target!r} must be an absolute path")
        if self.tty and not isinstance(self.stdin, int):
            raise BuildError("a terminal needs stdin to be a pty's file descriptor")

    @property
    def merged_dir(self) -> Path:
        return Path(self.mountpoint) if self.mountpoint else Path(self.upperdir).parent / "merged"

    def command_text(self) -> str:
        return " ".join(self.argv)


@dataclass(frozen=True)
class RunResult:
    """How a RUN ended. ``signal`` is set when the command was killed by one (exit code is
    then 128 + signal, as shells and Docker report it)."""

    exit_code: int
    duration: float
    output_tail: bytes
    idmap: IdMap
    signal: int | None = None
    # Rungs that copy the tree (vfs): the whole tree after the command, kept by the caller
    # as the snapshot of the next chain (``upperdir`` then holds the diff in layer format).
    tree: Path | None = None

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def tail(self, lines: int = 20) -> str:
        text = self.output_tail.decode("utf-8", errors="replace").rstrip("\n")
        return "\n".join(text.splitlines()[-lines:])


def format_failure(argv: Sequence[str], result: RunResult, lines: int = 20) -> str:
    """BuildKit's wording: ``process "/bin/sh -c false" did not complete successfully: exit
    code: 1``, followed by the last lines of output."""
    command = " ".join(argv) if len(argv) > 1 else shlex.join(argv)
    message = f'process "{command}" did not complete successfully: exit code: {result.exit_code}'
    tail = result.tail(lines)
    if tail:
        n = min(lines, len(tail.splitlines()))
        message += f"\n--- last {n} line{'' if n == 1 else 's'} of output ---\n{tail}"
    return message


def failure_error(argv: Sequence[str], result: RunResult, lines: int = 20) -> BuildError:
    """The ``BuildError`` a builder raises for a RUN that exited non-zero."""
    return BuildError(format_failure(argv, result, lines))


def check(argv: Sequence[str], result: RunResult) -> RunResult:
    """Raise :func:`failure_error` unless the command succeeded."""
    if not result.ok:
        raise failure_error(argv, result)
    return result

"""The executor interface (BuildKit's ``executor.Executor``): what runs a RUN.

An executor runs one command over a root filesystem made of read-only layer dirs and a
fresh upper dir that collects the command's changes (``RunSpec`` → ``RunResult``). The
namespace executor (``namespaced.py``) is the first implementation; others (reduced
namespaces, ptrace) implement the same interface, and ``factory.open_executor`` picks the
one this environment allows.

Besides ``run``, callers need to know how files are owned: ``rootless`` executors keep the
upper dir's files under the host ids of ``idmap``, and ``run_in_userns`` runs a host command
(file operations: extraction, COPY, layer writing, deletion) as root of that id map.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nbcontainer.layers.idmap import IdMap

    from .spec import RunResult, RunSpec


class Executor(ABC):
    """Runs commands over layer dirs. Reusable, thread-safe, and a context manager."""

    name: str  # the isolation it gives, as reported to the user
    rootless: bool  # files of the upper dir are owned by ``idmap``'s host ids
    idmap: IdMap  # container ids ↔ host ids (identity as real root)
    # Rungs without overlayfs copy the tree per RUN (``vfs.py``): lower dirs are whole trees
    # and an upper dir holds the diff in layer format. ``records``: every file belongs to the
    # caller and container owners live beside each tree (``layers/owners.py``).
    vfs: bool = False
    records: bool = False

    @abstractmethod
    def run(self, spec: RunSpec) -> RunResult:
        """Run ``spec.argv``; return how it ended. Raises ``SandboxError`` when the sandbox
        cannot be set up and ``BuildError`` on timeout; the command failing is not an error
        here (``check`` turns it into one)."""

    @abstractmethod
    def run_in_userns(self, argv: Sequence[str], *, stdin: int | None = None,
                      stdout: int | None = None) -> int:
        """Run host command ``argv`` as container root of this executor's id map (no chroot,
        no mounts) with ``stdin``/``stdout`` file descriptors (default: inherited); its exit
        status. Without a user namespace it simply runs ``argv``."""

    def close(self) -> None:  # noqa: B027 - most executors keep nothing between runs
        """Release what the executor keeps between runs (idempotent)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""Which executor this environment gets: the isolation ladder, decided lazily.

``open_executor()`` returns a :class:`LadderExecutor` that probes the environment and picks
its rung (``ladder.choose``) only when something first needs it (a RUN, a base extraction, a
COPY, the id map), so a fully cached build never probes. Explicit ``rootless``/``idmap``
arguments give the namespace executor directly, as before the ladder existed.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from .executor import Executor
from .hardening import Hardening
from .ladder import ENV, Choice, Finding, choose
from .namespaced import NamespaceExecutor
from .probe import probe
from .ptrace import PtraceExecutor

if TYPE_CHECKING:
    from nbcontainer.layers.idmap import IdMap

    from .spec import RunResult, RunSpec


def executor_for(choice: Choice, *, warm: bool = True,
                 hardening: Hardening | None = None) -> Executor:
    """The executor of a chosen rung, under ``hardening`` (default: Docker's containment)."""
    if choice.rung in ("full", "reduced"):
        return NamespaceExecutor(settings=choice.settings, fork_server=warm,
                                 hardening=hardening)
    if choice.rung == "ptrace":
        return PtraceExecutor(probe_proot_path(), hardening=hardening)
    if choice.replaced:  # asked for: say so rather than a missing tool
        return PtraceExecutor(None, why_not=[Finding(
            "isolation", "--isolation none was requested",
            "build with --isolation auto to run RUN steps")])
    why = [f for f in (choice.missing.get("full"), choice.missing.get("ptrace")) if f]
    return PtraceExecutor(None, why_not=why)


def probe_proot_path() -> str | None:
    import shutil

    return shutil.which("proot")


class LadderExecutor(Executor):
    """An executor that becomes the one its rung calls for on first use (thread-safe).

    ``notify`` hears the choice once (the builder turns it into its one progress line)."""

    def __init__(self, isolation: str | None = None, *, warm: bool = True,
                 scratch_parent: str | os.PathLike[str] | None = None,
                 notify: Callable[[Choice], None] | None = None,
                 hardening: Hardening | None = None) -> None:
        self.isolation = isolation
        self.hardening = hardening
        self.warm = warm
        self.scratch_parent = scratch_parent
        self.notify = notify
        self._lock = threading.Lock()
        self._choice: Choice | None = None
        self._inner: Executor | None = None

    @property
    def choice(self) -> Choice:
        self._resolve()
        assert self._choice is not None
        return self._choice

    @property
    def inner(self) -> Executor:
        self._resolve()
        assert self._inner is not None
        return self._inner

    def _resolve(self) -> None:
        if self._inner is not None:
            return
        with self._lock:
            if self._inner is not None:
                return
            request = self.isolation or os.environ.get(ENV) or "auto"
            found = probe(self.scratch_parent, proot=True if request in ("ptrace", "none")
                          else None)
            choice = choose(found, request)
            self._choice = choice
            self._inner = executor_for(choice, warm=self.warm, hardening=self.hardening)
        if self.notify is not None:
            self.notify(choice)

    # ------------------------------------------------------------------ the interface
    # Attributes of the interface, answered by the chosen executor (properties: read-only).
    @property
    def name(self) -> str:  # type: ignore[override]
        return self.choice.rung

    @property
    def rootless(self) -> bool:  # type: ignore[override]
        return self.inner.rootless

    @property
    def idmap(self) -> IdMap:  # type: ignore[override]
        return self.inner.idmap

    @property
    def vfs(self) -> bool:  # type: ignore[override]
        return self.inner.vfs

    @property
    def records(self) -> bool:  # type: ignore[override]
        return self.inner.records

    def run(self, spec: RunSpec) -> RunResult:
        return self.inner.run(spec)

    def run_in_userns(self, argv: Sequence[str], *, stdin: int | None = None,
                      stdout: int | None = None) -> int:
        return self.inner.run_in_userns(argv, stdin=stdin, stdout=stdout)

    def close(self) -> None:
        if self._inner is not None:
            self._inner.close()


def open_executor(isolation: str | None = None, *, rootless: bool | None = None,
                  idmap: IdMap | None = None, warm: bool = True,
                  scratch_parent: str | os.PathLike[str] | None = None,
                  notify: Callable[[Choice], None] | None = None,
                  hardening: Hardening | None = None) -> Executor:
    """The executor for RUN steps here (see the module doc). ``warm`` keeps a helper
    resident between runs (a build); pass False for a single run or file operations.
    ``hardening``: the build's entitlements and limits (default: Docker's containment)."""
    if rootless is not None or idmap is not None:
        return NamespaceExecutor(rootless, idmap=idmap, fork_server=warm, hardening=hardening)
    return LadderExecutor(isolation, warm=warm, scratch_parent=scratch_parent, notify=notify,
                          hardening=hardening)

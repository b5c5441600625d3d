"""The one progress interface: the engine emits structured events, each skin renders them.

The builder reports numbered steps and their output, the registry client reports blobs and
bytes; the CLI prints them BuildKit- and docker-style, the notebook draws an output area,
tests collect them. Events carry facts only (what, which step, how long, how many bytes,
which error): words such as ``DONE``, ``CACHED`` or ``Pull complete`` belong to the skins.
The engine never writes to stdout or stderr itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum


class Kind(StrEnum):
    """What an event says about the thing named by its ``id``."""

    PLAN = "plan"          # a build: how many numbered steps it will show (``total``)
    START = "start"        # a step or a blob transfer began
    LOG = "log"            # one line of a step's output (``text``)
    PROGRESS = "progress"  # bytes moved so far (``current`` of ``total``)
    DONE = "done"          # finished (``elapsed``)
    CACHED = "cached"      # a build step served from the cache
    SKIPPED = "skipped"    # a blob not transferred: ``reason`` says why
    ERROR = "error"        # failed (``error``)
    CANCELED = "canceled"  # stopped by Ctrl-C or by another step's failure
    WARNING = "warning"    # something the user should know (``text``)
    INFO = "info"          # a fact at the end of an operation (``text``)


class Action(StrEnum):
    """What a transfer event is about (so a skin can say "Pulling", "Pushed", …)."""

    BUILD = "build"
    PULL = "pull"
    PUSH = "push"


class Reason(StrEnum):
    """Why a blob was not transferred."""

    EXISTS = "exists"    # the destination already has it
    MOUNTED = "mounted"  # the registry linked it from another repository (``source``)
    INLINE = "inline"    # its bytes came with the manifest


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """One fact about a step or a blob.

    ``id`` names the thing in flight (``#3`` for a build step, a blob digest). A build step
    carries its place: ``stage`` (name, or platform and name, or ""), ``step`` of ``steps``
    in that stage, and ``text`` (the instruction as written, e.g. ``RUN make``). ``current``
    and ``total`` count bytes (or, for ``PLAN``, ``total`` counts steps). ``text`` is never
    a credential."""

    kind: Kind
    id: str
    text: str = ""
    action: Action = Action.BUILD
    stage: str = ""
    step: int | None = None
    steps: int | None = None
    current: int = 0
    total: int | None = None
    elapsed: float | None = None
    error: str | None = None
    reason: Reason | None = None
    source: str = ""
    timestamp: float = field(default_factory=time.time)

    @property
    def finished(self) -> bool:
        return self.kind in _FINAL


_FINAL = frozenset({Kind.DONE, Kind.CACHED, Kind.SKIPPED, Kind.ERROR, Kind.CANCELED})

ProgressFn = Callable[[ProgressEvent], None]


def null_progress(event: ProgressEvent) -> None:
    """The default sink: drop events."""


class Collector:
    """A sink that records events (tests, and summaries after a transfer)."""

    def __init__(self) -> None:
        self.events: list[ProgressEvent] = []

    def __call__(self, event: ProgressEvent) -> None:
        self.events.append(event)

    def kinds(self, kind: Kind | str) -> list[ProgressEvent]:
        return [e for e in self.events if e.kind == kind]

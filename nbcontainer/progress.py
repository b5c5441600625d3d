"""The one progress interface: lower layers emit events, each skin renders them its own way.

The registry client reports per-blob bytes, the builder reports steps and RUN output; the CLI
draws them in a terminal, the notebook as widgets, and tests simply collect them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """``kind`` is one of: ``start``, ``progress``, ``done``, ``cached``, ``skipped``,
    ``log`` (a line of output), ``error``, ``info``.

    ``id`` names the thing in flight (a blob digest, a build step ``#3``); ``current``/``total``
    count bytes (or steps); ``message`` is human text (never a credential)."""

    kind: str
    id: str
    message: str = ""
    current: int = 0
    total: int | None = None
    timestamp: float = field(default_factory=time.time)


ProgressFn = Callable[[ProgressEvent], None]


def null_progress(event: ProgressEvent) -> None:
    """The default sink: drop events."""


class Collector:
    """A sink that records events (tests, and summaries after a transfer)."""

    def __init__(self) -> None:
        self.events: list[ProgressEvent] = []

    def __call__(self, event: ProgressEvent) -> None:
        self.events.append(event)

    def kinds(self, kind: str) -> list[ProgressEvent]:
        return [e for e in self.events if e.kind == kind]

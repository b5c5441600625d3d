"""Terminal rendering: BuildKit's ``--progress=plain`` for builds, docker's per-blob lines for
pulls and pushes, docker's tables."""

from __future__ import annotations

import sys
import threading
from typing import TextIO

from .. import humanize
from ..progress import Kind, ProgressEvent
from ..wording import PlainLog, blob_status, is_blob, short_id, transfer_summary


def out(text: str = "") -> None:
    """One line on stdout (what a verb prints; progress and errors go to stderr)."""
    sys.stdout.write(text + "\n")


def table(rows: list[list[str]]) -> None:
    """docker's tables: columns padded to the widest cell, three spaces apart."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        out("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


class PlainRenderer:
    """The build's progress on a terminal: BuildKit's plain log (``wording.PlainLog``) on
    stderr. Events arrive from the builder's worker threads, hence the lock."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.lock = threading.Lock()
        self.log = PlainLog()

    def __call__(self, event: ProgressEvent) -> None:
        with self.lock:
            lines = self.log.lines(event)
            if lines:
                self.stream.write("".join(line + "\n" for line in lines))
                self.stream.flush()


class TransferPrinter:
    """Renders registry progress events docker-style: one line per finished blob and, on a
    terminal, a single status line updated in place for the blobs in flight."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.inflight: dict[str, tuple[int, int | None]] = {}

    def _status(self) -> None:
        if not self.tty:
            return
        parts = [f"{i[7:19]} {humanize.size(c)}/{humanize.size(t) if t else '?'}"
                 for i, (c, t) in list(self.inflight.items())[:4]]
        self.stream.write("\r\x1b[K" + "  ".join(parts))
        self.stream.flush()

    def _line(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r\x1b[K")
        self.stream.write(text + "\n")
        self.stream.flush()

    def __call__(self, e: ProgressEvent) -> None:
        if e.kind in (Kind.START, Kind.PROGRESS):
            self.inflight[e.id] = (e.current, e.total)
            self._status()
        elif not is_blob(e):  # the whole pull or push
            if e.kind == Kind.DONE:
                for line in transfer_summary(e):
                    self._line(line)
            elif e.kind == Kind.ERROR:
                self._line(e.error or "")
            elif e.kind in (Kind.INFO, Kind.WARNING):
                self._line(e.text)
        elif e.finished:
            self.inflight.pop(e.id, None)
            self._line(f"{short_id(e.id)}: {blob_status(e)}")
            self._status()

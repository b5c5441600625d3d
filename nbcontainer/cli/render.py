"""Terminal rendering of progress: BuildKit's ``--progress=plain`` for builds, docker's
per-blob lines for pulls and pushes."""

from __future__ import annotations

import sys
import threading
from typing import TextIO

from .. import humanize
from ..progress import Kind, ProgressEvent
from ..wording import blob_status, is_blob, short_id, step_status, step_title, transfer_summary

_END = (Kind.DONE, Kind.CACHED, Kind.ERROR, Kind.CANCELED)


class PlainRenderer:
    """``#3 [build 2/4] RUN make`` / ``#3 0.412 output line`` / ``#3 DONE 0.5s``.

    Parallel stages interleave: every line carries its step number, and when the output
    switches to another running step its title is repeated after a blank line (BuildKit's
    plain printer does the same), so each block reads on its own."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.lock = threading.Lock()
        self.titles: dict[str, str] = {}  # running steps
        self.last: str | None = None  # the step of the last line written
        self.closed = True  # the last block ended with a blank line

    def __call__(self, event: ProgressEvent) -> None:
        with self.lock:
            line = self._line(event)
            if line is None:
                return
            self.stream.write(line + "\n")
            self.last = event.id
            self.closed = event.kind in _END
            if self.closed:
                self.stream.write("\n")
                self.titles.pop(event.id, None)
            self.stream.flush()

    def _line(self, event: ProgressEvent) -> str | None:
        switch = event.id != self.last and event.id in self.titles
        if event.kind in (Kind.LOG, Kind.WARNING, *_END) and switch:
            self.stream.write(("" if self.closed else "\n") +
                              f"{event.id} {self.titles[event.id]}\n")
        elif event.kind == Kind.START and not self.closed:
            self.stream.write("\n")
        if event.kind == Kind.START:
            self.titles[event.id] = step_title(event)
            return f"{event.id} {self.titles[event.id]}"
        if event.kind == Kind.LOG:
            return f"{event.id} {event.elapsed or 0.0:.3f} {event.text}"
        if event.kind == Kind.WARNING:
            return f"{event.id} WARNING: {event.text}"
        if event.kind in _END:
            return f"{event.id} {step_status(event)}"
        if event.kind == Kind.INFO:
            return f"{event.id} {event.text}" if event.id else event.text
        return None


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

"""BuildKit's ``--progress=plain`` look for builder progress events (the CLI's renderer)."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

from ..progress import ProgressEvent


class PlainRenderer:
    """``#3 [build 2/4] RUN make`` / ``#3 0.412 output line`` / ``#3 DONE 0.5s``.

    Parallel stages interleave: every line carries its step number, and when the output
    switches to another running step its title is repeated after a blank line (BuildKit's
    plain printer does the same), so each block reads on its own."""

    _END = ("done", "cached", "error")

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.lock = threading.Lock()
        self.started: dict[str, float] = {}
        self.titles: dict[str, str] = {}  # running steps
        self.last: str | None = None  # the step of the last line written
        self.closed = True  # the last block ended with a blank line

    def __call__(self, event: ProgressEvent) -> None:
        with self.lock:
            switch = event.id != self.last and event.id in self.titles
            if event.kind in ("log", *self._END) and switch:
                self.stream.write(("" if self.closed else "\n") +
                                  f"{event.id} {self.titles[event.id]}\n")
            elif event.kind == "start" and not self.closed:
                self.stream.write("\n")
            if event.kind == "start":
                self.started[event.id] = time.monotonic()
                self.titles[event.id] = event.message
                line = f"{event.id} {event.message}"
            elif event.kind == "log":
                since = time.monotonic() - self.started.get(event.id, time.monotonic())
                line = f"{event.id} {since:.3f} {event.message}"
            elif event.kind in ("done", "cached", "error"):
                line = f"{event.id} {event.message}"
            elif event.kind == "info":
                line = f"{event.id} {event.message}" if event.id else event.message
            else:
                return
            self.stream.write(line + "\n")
            self.last = event.id
            self.closed = event.kind in self._END
            if self.closed:
                self.stream.write("\n")
                self.titles.pop(event.id, None)
            self.stream.flush()

"""BuildKit's ``--progress=plain`` look for builder progress events (the CLI's renderer)."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

from ..progress import ProgressEvent


class PlainRenderer:
    """``#3 [build 2/4] RUN make`` / ``#3 0.412 output line`` / ``#3 DONE 0.5s``."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.lock = threading.Lock()
        self.started: dict[str, float] = {}

    def __call__(self, event: ProgressEvent) -> None:
        with self.lock:
            if event.kind == "start":
                self.started[event.id] = time.monotonic()
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
            if event.kind in ("done", "cached", "error"):
                self.stream.write("\n")
            self.stream.flush()

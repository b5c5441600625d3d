"""Numbered build steps and the progress events they emit (the builder's side of progress).

A build shows numbered steps as BuildKit does (``#3 [build 2/4] RUN make``): each step
reports that it started, the lines it printed, and how it ended (done, cached, failed,
canceled). The events carry facts only; the CLI and the notebook turn them into words.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType

from ..progress import Kind, ProgressEvent, ProgressFn, null_progress

INTERNAL = "internal"  # the stage label of steps that are no Dockerfile instruction


class StepReporter:
    """Hands out step numbers (``#1``, ``#2`` …, shared by concurrent stages)."""

    def __init__(self, progress: ProgressFn | None = None) -> None:
        self.progress = progress or null_progress
        self._lock = threading.Lock()
        self._counter = 0

    def emit(self, event: ProgressEvent) -> None:
        self.progress(event)

    def step(self, text: str, *, stage: str = "", number: int | None = None,
             of: int | None = None) -> Step:
        """A step of a stage (``number`` of ``of``), shown with the instruction ``text``."""
        with self._lock:
            self._counter += 1
            ident = f"#{self._counter}"
        return Step(self, ident, text, stage, number, of)

    def internal(self, text: str) -> Step:
        """A step that is no Dockerfile instruction (``[internal] pull busybox``)."""
        return self.step(text, stage=INTERNAL)


class Step:
    """One numbered step. As a context manager it reports the exception that leaves it
    (Ctrl-C as canceled) and, on a normal exit, that it is done (unless it was cached)."""

    def __init__(self, reporter: StepReporter, ident: str, text: str, stage: str,
                 number: int | None, of: int | None) -> None:
        self.reporter = reporter
        self.id = ident
        self.text = text
        self.stage = stage
        self.number = number
        self.of = of
        self.start = time.monotonic()
        self._partial = b""
        self._ended = False
        self._emit(Kind.START, text=text)

    def _emit(self, kind: Kind, **fields: object) -> None:
        self.reporter.emit(ProgressEvent(kind, self.id, stage=self.stage, step=self.number,
                                         steps=self.of, **fields))  # type: ignore[arg-type]

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def output(self, chunk: bytes) -> None:
        """Bytes the step printed; complete lines become log events."""
        data = self._partial + chunk
        *lines, self._partial = data.split(b"\n")
        for line in lines:
            self._emit(Kind.LOG, text=line.decode("utf-8", "replace"), elapsed=self.elapsed())

    def warn(self, text: str) -> None:
        self._emit(Kind.WARNING, text=text, elapsed=self.elapsed())

    def _flush(self) -> None:
        if self._partial:
            self.output(b"\n")

    def cached(self) -> None:
        self._end(Kind.CACHED)

    def done(self) -> None:
        self._end(Kind.DONE)

    def error(self, exc: BaseException) -> None:
        if isinstance(exc, KeyboardInterrupt):
            self._end(Kind.CANCELED)
        else:
            self._end(Kind.ERROR, error=str(getattr(exc, "message", None) or exc))

    def _end(self, kind: Kind, **fields: object) -> None:
        if self._ended:
            return
        self._ended = True
        self._flush()
        self._emit(kind, text=self.text, elapsed=self.elapsed(), **fields)

    def __enter__(self) -> Step:
        return self

    def __exit__(self, etype: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc is not None:
            self.error(exc)
        else:
            self.done()

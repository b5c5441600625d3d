"""What pull and push share: a bounded worker pool that stops everyone on the first failure,
and per-blob progress events (throttled so a fast loopback transfer does not flood a UI)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import TypeVar

from ..progress import Action, Kind, ProgressEvent, ProgressFn
from .client import Cancelled

T = TypeVar("T")

_MIN_INTERVAL = 0.1  # seconds between two progress events of one blob
_UNWIND = 5.0  # seconds an interrupted transfer waits for its workers to clean up


class BlobProgress:
    """Reports one blob: ``START``, throttled ``PROGRESS``, ``DONE``."""

    def __init__(self, progress: ProgressFn, blob_id: str, total: int, action: Action) -> None:
        self.progress = progress
        self.id = blob_id
        self.total = total
        self.action = action
        self.started = time.monotonic()
        self._last = 0.0
        self._lock = threading.Lock()
        progress(ProgressEvent(Kind.START, blob_id, action=action, total=total))

    def position(self, pos: int) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last < _MIN_INTERVAL and pos < self.total:
                return
            self._last = now
        self.progress(ProgressEvent(Kind.PROGRESS, self.id, action=self.action,
                                    current=min(pos, self.total), total=self.total,
                                    elapsed=now - self.started))

    def done(self) -> None:
        self.progress(ProgressEvent(Kind.DONE, self.id, action=self.action, current=self.total,
                                    total=self.total, elapsed=time.monotonic() - self.started))


def run_all(
    jobs: int, items: Iterable[T], fn: Callable[[T, threading.Event], None],
    cancel: threading.Event,
) -> None:
    """Run ``fn`` over items with at most ``jobs`` threads; on the first error set ``cancel``,
    let the others stop, and raise that first error (not a secondary ``Cancelled``).
    On Ctrl-C (or any exception in the waiting thread) the same: ``cancel`` is set (a
    :class:`~.client.Cancel` also breaks blocked reads), queued items never start, running
    ones get a few seconds to clean up, and the interrupt is raised."""
    items = list(items)
    if not items:
        return
    pool = ThreadPoolExecutor(max_workers=max(1, min(jobs, len(items))),
                              thread_name_prefix="nbcontainer-transfer")
    futures = [pool.submit(fn, item, cancel) for item in items]
    try:
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        if any(f.exception() for f in done):
            cancel.set()
        wait(futures)
    except BaseException:
        cancel.set()
        for f in futures:
            f.cancel()
        wait(futures, timeout=_UNWIND)
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    errors = [f.exception() for f in futures if f.exception() is not None]
    real = [e for e in errors if not isinstance(e, Cancelled)]
    if real:
        raise real[0]  # type: ignore[misc]
    if errors:
        raise errors[0]  # type: ignore[misc]

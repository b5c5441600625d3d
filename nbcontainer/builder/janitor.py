"""Deferred per-step housekeeping, done off the build's critical path.

After each RUN the builder has a few things to do that nothing later in the build waits for:
delete the step's scratch dirs (an overlay work dir, an empty upper) and write its cache entry.
Each costs a journaled metadata update (a millisecond or two on a busy disk), which is most of
a cheap RUN's bookkeeping. A single worker thread does them in submission order while the
builder waits for the next RUN's sandbox; ``drain`` (end of build, also on errors and Ctrl-C)
waits until everything is done, so a finished build leaves nothing pending.

Order is kept (FIFO, one worker), so a cache entry is still written only after the blob and
snapshot it names were published. A failing task never stops the build: scratch dirs that
could not be removed are swept by ``prune``, and a cache entry that could not be written is
only a later cache miss.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

Task = Callable[[], object]


class Janitor:
    def __init__(self) -> None:
        self._queue: queue.Queue[Task | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.errors: list[BaseException] = []

    def submit(self, task: Task) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="nbcontainer-janitor",
                                                daemon=True)
                self._thread.start()
        self._queue.put(task)

    def _work(self) -> None:
        while True:
            task = self._queue.get()
            try:
                if task is None:
                    return
                task()
            except BaseException as exc:  # noqa: BLE001 - best effort, see module doc
                if len(self.errors) < 10:
                    self.errors.append(exc)
            finally:
                self._queue.task_done()

    def drain(self) -> None:
        """Block until every submitted task has run."""
        if self._thread is not None:
            self._queue.join()

    def close(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None and thread.is_alive():
            self._queue.put(None)
            thread.join()

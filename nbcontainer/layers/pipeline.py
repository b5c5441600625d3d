"""The threads behind write_layer: compress, hash and write a block stream, in order.

The producer (the caller's thread: tree walk, headers, file reads) fills pooled 1 MiB
buffers.  gzip blocks are deflated on a pool of worker threads; one writer thread takes the
blocks in order, hashes them (diff_id), writes the compressed pieces to the sink and hashes
those (digest), then returns the buffers to the pool.  isal, zstd and hashlib all drop the
GIL on large buffers, so the producer's Python work overlaps the heavy lifting, and the
fixed pool bounds memory (16 MiB of blocks whatever the layer size).
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, BinaryIO

from .compression import (
    GZIP_BLOCK_SIZE,
    GZIP_HEADER,
    GZIP_LEVEL,
    GZIP_WINDOW,
    ZSTD_LEVEL,
    Compression,
    crc32_combine,
    default_threads,
    deflate_block,
    gzip_tail,
    zstd_compressor,
)

_STOP = object()
_SPARE_MAX = 8
_MIN_IN_FLIGHT = 16
_spare: list[bytearray] = []  # block buffers kept between layers: a fresh 1 MiB costs ~1 ms
_shared_pool: ThreadPoolExecutor | None = None
_shared_lock = threading.Lock()


def _reset_after_fork() -> None:
    """A forked child has none of the parent's threads: start afresh (a pool whose workers
    vanished would queue blocks forever, a lock held by a parent thread would never open)."""
    global _shared_pool, _shared_lock
    _shared_pool = None
    _shared_lock = threading.Lock()
    _spare.clear()


os.register_at_fork(after_in_child=_reset_after_fork)


# How much lower than the caller the deflate workers run (Linux nice steps, per thread).
WORKER_NICE_STEP = 3


def _lower_worker_priority() -> None:
    """Pool-thread initializer: yield the CPU to the producer when the cores are short.

    The producer (tree walk, one thread) is the only serial stage; deflate blocks can wait in
    the queue.  With the workers a few nice steps down, the scheduler keeps the producer
    running through small-file stretches instead of time-slicing it against the workers,
    which then use the cores it leaves.  Relative to the current value, so a niced caller
    stays niced; best effort (Linux per-thread priorities; elsewhere nothing happens).
    """
    try:
        tid = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, current + WORKER_NICE_STEP))
    except (OSError, AttributeError):
        pass


def _new_pool(workers: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(
        max_workers=workers, thread_name_prefix="nb-gzip", initializer=_lower_worker_priority
    )


def _pool_for(threads: int | None) -> tuple[ThreadPoolExecutor, bool]:
    """The process-wide compression pool (threads and isal state are reused across layers,
    which matters for many small layers), or a private one for an explicit thread count."""
    global _shared_pool
    if threads is not None and threads != default_threads():
        return _new_pool(threads), True
    with _shared_lock:
        if _shared_pool is None:
            _shared_pool = _new_pool(default_threads())
        return _shared_pool, False


class BlockPipeline:
    def __init__(
        self,
        compression: Compression,
        sink: BinaryIO,
        *,
        level: int | None = None,
        threads: int | None = None,
    ) -> None:
        nthreads = threads or default_threads()
        self.block_size = GZIP_BLOCK_SIZE
        self._compression = compression
        self._sink = sink
        self.diff = hashlib.sha256()
        self.digest = hashlib.sha256()
        self.size = 0  # compressed bytes written
        self.uncompressed_size = 0
        self._error: BaseException | None = None
        self._free: queue.Queue[bytearray] = queue.Queue()
        # Buffers in flight at most: bounds memory (16 MiB up to 7 threads).  Deep enough
        # that the walk runs ahead through stretches deflate is slow on (text, libraries)
        # and the workers catch up while it crawls through many small files.
        self._limit = max(nthreads * 2 + 2, _MIN_IN_FLIGHT)
        self._allocated = 0
        self._todo: queue.Queue[Any] = queue.Queue()
        self._pool: ThreadPoolExecutor | None = None
        self._own_pool = False
        self._zdict = b""
        self._crc = 0
        if compression is Compression.GZIP:
            self._level = GZIP_LEVEL if level is None else level
            self._pool, self._own_pool = _pool_for(threads)
            self._write(GZIP_HEADER)
        elif compression is Compression.ZSTD:
            self._zstd = zstd_compressor(ZSTD_LEVEL if level is None else level, nthreads)
        self._thread = threading.Thread(target=self._run, name="nb-layer-writer", daemon=True)
        self._thread.start()

    # -- producer side
    def buffer(self) -> bytearray:
        while True:
            if self._error is not None:
                raise self._error
            try:
                return self._free.get_nowait()
            except queue.Empty:
                pass
            if self._allocated < self._limit:
                self._allocated += 1
                with _shared_lock:
                    if _spare and len(_spare[-1]) == self.block_size:
                        return _spare.pop()
                return bytearray(self.block_size)
            try:
                return self._free.get(timeout=0.2)
            except queue.Empty:
                continue

    def _recycle(self) -> None:
        with _shared_lock:
            while len(_spare) < _SPARE_MAX:
                try:
                    _spare.append(self._free.get_nowait())
                except queue.Empty:
                    break

    def release(self, buf: bytearray) -> None:
        """Give back a buffer that will not be emitted (the stream ended on a boundary)."""
        self._free.put(buf)

    def emit(self, buf: bytearray, n: int) -> None:
        """Hand over ``buf[:n]``; the pipeline owns ``buf`` until it is back in the pool."""
        if self._error is not None:
            raise self._error
        fut = None
        if self._pool is not None:
            fut = self._pool.submit(deflate_block, memoryview(buf)[:n], self._zdict, self._level)
            self._zdict = bytes(buf[max(0, n - GZIP_WINDOW) : n])
        self.uncompressed_size += n
        self._todo.put((buf, n, fut))

    def finish(self) -> None:
        self._todo.put(_STOP)
        self._thread.join()
        self._shutdown()
        self._recycle()
        if self._error is not None:
            raise self._error
        if self._compression is Compression.GZIP:
            self._write(gzip_tail(self._crc, self.uncompressed_size))
        elif self._compression is Compression.ZSTD:
            self._write(self._zstd.flush())

    def abort(self) -> None:
        if self._error is None:
            self._error = RuntimeError("layer write aborted")
        self._todo.put(_STOP)
        self._thread.join()
        self._shutdown()
        self._recycle()

    # -- writer thread
    def _write(self, data: bytes | memoryview) -> None:
        self.digest.update(data)
        self.size += len(data)
        self._sink.write(data)

    def _run(self) -> None:
        while True:
            item = self._todo.get()
            if item is _STOP:
                return
            if self._error is not None:
                continue  # drain without work so the producer is never stuck
            buf, n, fut = item
            try:
                view = memoryview(buf)[:n]
                self.diff.update(view)
                if fut is not None:
                    data, crc = fut.result()
                    self._crc = crc32_combine(self._crc, crc, n)
                    self._write(data)
                elif self._compression is Compression.ZSTD:
                    data = self._zstd.compress(view)
                    if data:
                        self._write(data)
                else:  # uncompressed: the digest is the diff_id, hash once
                    self.size += n
                    self._sink.write(view)
                view.release()
            except BaseException as e:  # surfaced to the producer on its next call
                self._error = e
            self._free.put(buf)

    def _shutdown(self) -> None:
        if self._pool is not None and self._own_pool:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._pool = None

"""Scratch directories for RUN steps: an overlay ``upper/`` + ``work/`` pair per step.

Directory creation and removal are the dearest metadata operations a RUN does (each allocates
or frees a block; ~1 ms apiece on a busy disk, and they serialize). So a RUN's scratch dir is
recycled: the overlay's leftovers in ``work/`` are renamed away (cheap) and deleted by the
janitor, an empty upper is kept, and a published one is replaced by a new empty dir.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from ..store.snapshots import Snapshots, temp_name
from .janitor import Janitor

if TYPE_CHECKING:
    from ..sandbox.fileops import FileOps

POOL_MAX = 4


class ScratchPool:
    def __init__(self, snapshots: Snapshots, janitor: Janitor, fileops: FileOps) -> None:
        self.snapshots = snapshots
        self.janitor = janitor
        self.fileops = fileops
        self._lock = threading.Lock()
        self._pool: list[Path] = []

    def discard(self, path: Path) -> None:
        """Remove a step's scratch dir in the background (see janitor.py)."""
        self.janitor.submit(lambda: self.fileops.remove(path))

    def take(self) -> Path:
        """A scratch dir with an empty ``upper/`` and a usable ``work/``."""
        with self._lock:
            work = self._pool.pop() if self._pool else None
        if work is None or not work.is_dir():  # (prune may sweep an idle builder's pool)
            work = self.snapshots.scratch()
            (work / "work").mkdir()
        if not (work / "upper").is_dir():
            (work / "upper").mkdir()
        return work

    def recycle(self, work: Path, ok: bool) -> None:
        """Keep ``work`` for the next RUN when it can be reused, else remove it."""
        used = work / "work" / "work"
        upper = work / "upper"
        try:
            if not ok or (upper.is_dir() and os.listdir(upper)) or \
                    os.listdir(work / "work") not in ([], ["work"]):
                raise OSError("not reusable")  # a failed RUN's upper, a remount's workdirs
            if os.path.lexists(used):
                trash = self.snapshots.tmp / temp_name("trash")
                os.rename(used, trash)
                self.discard(trash)
        except OSError:
            self.discard(work)
            return
        with self._lock:
            if len(self._pool) < POOL_MAX:
                self._pool.append(work)
                return
        self.discard(work)

    def mountpoint(self) -> Path:
        """Where RUNs mount their root: one empty dir shared by all of them, since each
        mounts only inside its own private mount namespace."""
        mnt = self.snapshots.root / "mnt"
        if not mnt.is_dir():
            mnt.mkdir(exist_ok=True)
        return mnt

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, []
        for work in pool:
            self.discard(work)

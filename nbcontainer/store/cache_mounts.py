"""``RUN --mount=type=cache`` directories in the store (``<store>/build/cache-mounts``).

Kept across builds, never part of a layer nor of a step's cache key. ``sharing`` maps onto
``flock``: shared = shared lock on instance 0; locked = exclusive lock on instance 0 (blocks
other builds); private = the first instance nobody holds (BuildKit makes a new one per
concurrent writer).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from ..errors import BuildError
from .snapshots import build_area
from .store import Store

_MAX_PRIVATE = 64


def cache_mounts_dir(store: Store) -> Path:
    return build_area(store) / "cache-mounts"


def copy_tree(src: Path, dest: Path, *, preserve_owner: bool) -> None:
    preserve = "all" if preserve_owner else "mode,timestamps,links,xattr"
    proc = subprocess.run(["cp", "-R", "-P", f"--preserve={preserve}", "--", str(src),
                           str(dest)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError(f"cannot copy {src}: {proc.stderr.strip()}")



class CacheMountStore:
    """``<root>/<sha256(id)>/<n>/`` instance dirs, each with ``<n>.lock`` (flock) beside it;
    ``id.json`` records the id for humans. A new instance is filled in ``<n>.new`` then
    renamed, so a half-seeded cache is never mounted."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def acquire(self, cid: str, sharing: str, *, readonly: bool = False, mode: int = 0o755,
                uid: int = 0, gid: int = 0, seed: Path | None = None,
                preserve_owner: bool = True) -> tuple[Path, Callable[[], None]]:
        base = self.root / hashlib.sha256(cid.encode()).hexdigest()[:32]
        base.mkdir(parents=True, exist_ok=True)
        info = base / "id.json"
        if not info.exists():
            info.write_text(json.dumps({"id": cid}))
        if sharing == "private" and not readonly:
            for n in range(_MAX_PRIVATE):
                fd = _lock(base / f"{n}.lock", fcntl.LOCK_EX | fcntl.LOCK_NB)
                if fd is not None:
                    break
            else:
                raise BuildError(f"cache mount {cid!r}: too many concurrent private users")
        else:
            n = 0
            how = fcntl.LOCK_EX if sharing == "locked" and not readonly else fcntl.LOCK_SH
            fd = _lock(base / "0.lock", how)
            assert fd is not None
        try:
            path = base / str(n)
            if not path.is_dir():
                self._create(path, mode, uid, gid, seed, preserve_owner)
        except BaseException:
            os.close(fd)
            raise
        return path, lambda: os.close(fd)  # closing the fd drops the lock

    @staticmethod
    def _create(path: Path, mode: int, uid: int, gid: int, seed: Path | None,
                preserve_owner: bool) -> None:
        tmp = path.with_name(f"{path.name}.new")
        shutil.rmtree(tmp, ignore_errors=True)
        if seed is not None and seed.is_dir():
            copy_tree(seed, tmp, preserve_owner=preserve_owner)
        else:
            tmp.mkdir()
            os.chmod(tmp, mode)
            if (uid, gid) != (os.geteuid(), os.getegid()):
                with contextlib.suppress(PermissionError):
                    os.chown(tmp, uid, gid)
        os.rename(tmp, path)

    def prune(self, remove: Callable[[Path], None] | None = None) -> tuple[int, int]:
        """Delete every cache mount (waiting for builds that hold one); (count, bytes)."""
        if not self.root.is_dir():
            return 0, 0
        count = size = 0
        for base in sorted(self.root.iterdir()):
            if not base.is_dir():
                continue
            locks = sorted(base.glob("*.lock"))
            fds = [fd for lk in locks if (fd := _lock(lk, fcntl.LOCK_EX)) is not None]
            try:
                for inst in base.iterdir():
                    if inst.is_dir():
                        count += 1
                        size += _du(inst)
                (remove or _rmtree)(base)
            finally:
                for fd in fds:
                    os.close(fd)
        return count, size


def _lock(path: Path, how: int) -> int | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, how)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _du(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, f)).st_blocks * 512
    return total

"""Path resolution confined to a root directory, through directory file descriptors.

Every lookup is ``openat(dir_fd, component, O_NOFOLLOW)``, so nothing is ever resolved by
the kernel from a string that could leave the root.  Symlinks met on the way are resolved
here, the way a chroot would see them (absolute targets start again at the root), except
that a ``..`` that would climb above the root is refused: no image needs it, and it is the
classic escape.  Resolved directories are cached by their path in the layer, so the
sorted entries of a layer cost one ``openat`` per new directory, not per entry.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable

from ..errors import LayerError, UnsafeLayerError

_DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_SYMLINKS = 40  # Linux's own limit
_CACHE_SIZE = 256

Parts = tuple[bytes, ...]


def _show(parts: Parts) -> str:
    return os.fsdecode(b"/".join(parts)) or "."


class RootDir:
    """A directory we extract into; owns an ``O_PATH`` fd for it and a cache of subdirs."""

    def __init__(self, path: str | os.PathLike[str], *, on_mkdir: Callable[[int, bytes], None]):
        try:  # the target itself is the caller's choice: a symlink to it is fine
            self.fd = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as e:
            raise LayerError(f"cannot use {os.fspath(path)!r} as a target: {e.strerror}") from e
        self._on_mkdir = on_mkdir
        self._cache: dict[tuple[Parts, bool], tuple[int, Parts]] = {}
        self._stale: list[int] = []
        self._dirty = False

    def close(self) -> None:
        self._drop_cache()
        self._close_stale()
        os.close(self.fd)

    def invalidate(self) -> None:
        """Something was removed or replaced: cached directories may be stale.

        The fds stay open until the next lookup, so callers holding one keep a valid fd
        for the rest of the entry they are working on.
        """
        self._dirty = True

    def _drop_cache(self) -> None:
        for fd, _ in self._cache.values():
            if fd != self.fd:
                self._stale.append(fd)
        self._cache.clear()

    def _close_stale(self) -> None:
        for fd in self._stale:
            os.close(fd)
        self._stale.clear()

    def resolve(
        self, parts: Parts, *, entry: str, create: bool = False, follow: bool = True
    ) -> tuple[int, Parts] | None:
        """The fd (owned by the cache: don't close it) and physical path of directory
        ``parts``; None if it does not exist and ``create`` is false.

        ``follow=False`` refuses any symlink on the way (hardlink targets).
        """
        if self._dirty:
            self._drop_cache()
            self._close_stale()
            self._dirty = False
        key = (parts, follow)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        found = self._walk(parts, entry=entry, create=create, follow=follow)
        if found is not None:
            if len(self._cache) >= _CACHE_SIZE:
                self._drop_cache()
                self._close_stale()
            self._cache[key] = found
        return found

    def _walk(
        self, parts: Parts, *, entry: str, create: bool, follow: bool
    ) -> tuple[int, Parts] | None:
        fds: list[int] = [self.fd]
        phys: list[bytes] = []
        todo = list(reversed(parts))
        hops = 0
        ok = False
        try:
            while todo:
                comp = todo.pop()
                if comp in (b"", b"."):
                    continue
                if comp == b"..":
                    if not phys:
                        raise UnsafeLayerError(
                            f"layer entry {entry!r}: a symlink on its path points outside "
                            "the target directory",
                            entry=entry,
                        )
                    fd = fds.pop()
                    if fd != self.fd:
                        os.close(fd)
                    phys.pop()
                    continue
                cur = fds[-1]
                try:
                    fd = os.open(comp, _DIR_FLAGS, dir_fd=cur)
                except FileNotFoundError:
                    if not create:
                        return None
                    try:
                        os.mkdir(comp, 0o755, dir_fd=cur)
                        self._on_mkdir(cur, comp)
                    except FileExistsError:
                        pass
                    fd = os.open(comp, _DIR_FLAGS, dir_fd=cur)
                except OSError as e:
                    if e.errno not in (errno.ENOTDIR, errno.ELOOP):
                        raise
                    st = os.stat(comp, dir_fd=cur, follow_symlinks=False)
                    where = _show((*phys, comp))
                    if not stat.S_ISLNK(st.st_mode):
                        raise LayerError(
                            f"layer entry {entry!r}: {where} is not a directory",
                            hint="the layer puts an entry below a file",
                        ) from None
                    if not follow:
                        raise UnsafeLayerError(
                            f"layer entry {entry!r}: its path goes through the symlink {where}",
                            entry=entry,
                        ) from None
                    hops += 1
                    if hops > _MAX_SYMLINKS:
                        raise UnsafeLayerError(
                            f"layer entry {entry!r}: too many levels of symlinks at {where}",
                            entry=entry,
                        ) from None
                    target = os.readlink(comp, dir_fd=cur)
                    if target.startswith(b"/"):  # chroot semantics: absolute = from the root
                        for extra in fds[1:]:
                            os.close(extra)
                        fds, phys = [self.fd], []
                    todo.extend(reversed(target.split(b"/")))
                    continue
                fds.append(fd)
                phys.append(comp)
            ok = True
            return fds[-1], tuple(phys)
        finally:
            keep = fds[-1] if ok else None
            for fd in fds[1:]:
                if fd != keep:
                    os.close(fd)

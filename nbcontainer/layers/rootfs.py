"""Path resolution confined to a root directory, the way a chroot sees it.

``resolve_in_root`` is the one resolver for trees that are read: symlinks met on the way are
resolved inside the root (absolute targets start again at the root, ``..`` stops at it), as
the kernel does for a process chrooted there. Build contexts, ``RUN --mount`` sources and
stage roots use it.

``RootDir`` is the variant for a tree being *written* (layer extraction): every lookup is
``openat(dir_fd, component, O_NOFOLLOW)``, so nothing is ever resolved by the kernel from a
string that could leave the root; missing directories can be created on the way; and a
``..`` that would climb above the root is refused rather than stopped, since no image needs
it and it is the classic escape. Resolved directories are cached by their path in the layer,
so the sorted entries of a layer cost one ``openat`` per new directory, not per entry.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
from collections.abc import Callable

from ..errors import LayerError, UnsafeLayerError

_DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_SYMLINKS = 40  # Linux's own limit
_CACHE_SIZE = 256

Parts = tuple[bytes, ...]


def resolve_in_root(root: str | os.PathLike[str], path: str, *,
                    follow: bool = True) -> str | None:
    """``path`` looked up in ``root`` as a process chrooted there would: the physical path
    relative to ``root`` (``""`` for the root itself), or None when something is missing.

    ``path`` is first normalised as text (as Docker does with the paths it is given); the
    ``..`` in symlink targets then climb the resolved path and stop at the root. The last
    component is resolved only with ``follow``. Raises ``LayerError`` on a symlink loop.
    """
    todo = [p for p in posixpath.normpath("/" + path).split("/") if p]
    todo.reverse()  # a stack: symlink targets are pushed in front of the rest
    done: list[str] = []
    hops = 0
    while todo:
        name = todo.pop()
        if name in ("", "."):
            continue
        if name == "..":
            if done:
                done.pop()
            continue
        host = os.path.join(root, *done, name)
        try:
            st = os.lstat(host)
        except (FileNotFoundError, NotADirectoryError):
            return None
        if stat.S_ISLNK(st.st_mode) and (todo or follow):
            hops += 1
            if hops > _MAX_SYMLINKS:
                raise LayerError(f"{os.fspath(root)}: too many levels of symbolic links in "
                                 f"{path}", hint="a symlink on the path points back at itself")
            target = os.readlink(host)
            if target.startswith("/"):
                done = []
            todo.extend(reversed(target.split("/")))
            continue
        done.append(name)
    return "/".join(done)


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
                found = self._step(fds[-1], comp, phys, entry=entry, create=create, follow=follow)
                if found is None:
                    return None
                if isinstance(found, bytes):  # a symlink: walk its target instead
                    hops += 1
                    if hops > _MAX_SYMLINKS:
                        raise UnsafeLayerError(
                            f"layer entry {entry!r}: too many levels of symlinks at "
                            f"{_show((*phys, comp))}",
                            entry=entry,
                        )
                    if found.startswith(b"/"):  # chroot semantics: absolute = from the root
                        for extra in fds[1:]:
                            os.close(extra)
                        fds, phys = [self.fd], []
                    todo.extend(reversed(found.split(b"/")))
                    continue
                fds.append(found)
                phys.append(comp)
            ok = True
            return fds[-1], tuple(phys)
        finally:
            keep = fds[-1] if ok else None
            for fd in fds[1:]:
                if fd != keep:
                    os.close(fd)

    def _step(
        self, cur: int, comp: bytes, phys: list[bytes], *, entry: str, create: bool,
        follow: bool
    ) -> int | bytes | None:
        """Directory ``comp`` of ``cur``: its fd, or a symlink's target to walk instead, or
        None when it is missing (and not to be created)."""
        try:
            return os.open(comp, _DIR_FLAGS, dir_fd=cur)
        except FileNotFoundError:
            if not create:
                return None
            try:
                os.mkdir(comp, 0o755, dir_fd=cur)
                self._on_mkdir(cur, comp)
            except FileExistsError:
                pass
            return os.open(comp, _DIR_FLAGS, dir_fd=cur)
        except OSError as e:
            if e.errno not in (errno.ENOTDIR, errno.ELOOP):
                raise
        st = os.stat(comp, dir_fd=cur, follow_symlinks=False)
        where = _show((*phys, comp))
        if not stat.S_ISLNK(st.st_mode):
            raise LayerError(
                f"layer entry {entry!r}: {where} is not a directory",
                hint="the layer puts an entry below a file",
            )
        if not follow:
            raise UnsafeLayerError(
                f"layer entry {entry!r}: its path goes through the symlink {where}",
                entry=entry,
            )
        return os.readlink(comp, dir_fd=cur)

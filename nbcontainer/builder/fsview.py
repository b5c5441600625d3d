"""A read-only merged view of a stack of overlay-format layer dirs, without mounting anything.

COPY needs to know what the image holds at its destination (is ``/app`` a directory? is
``/bin`` a symlink to ``usr/bin``?) and ``--chown`` needs ``/etc/passwd``; a RUN's upper dir
may hide lower entries with whiteouts (char 0:0) and opaque directories. Resolving paths here
follows overlayfs's rules and symlinks as inside a chroot, so nothing escapes the stack.
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import BuildError
from ..layers.overlay import OPAQUE_XATTRS, is_whiteout_device
from ..layers.owners import owners_path, read_owners

MAX_SYMLINKS = 40


def is_opaque(path: Path) -> bool:
    for name in OPAQUE_XATTRS:
        try:
            if os.getxattr(path, name, follow_symlinks=False) == b"y":
                return True
        except OSError:
            continue
    return False


@dataclass(frozen=True)
class Entry:
    """A path of the merged tree: its top host path, lstat, and (dirs) every layer's copy."""

    path: str  # absolute, symlinks in the parents resolved
    host: Path
    st: os.stat_result
    dirs: tuple[Path, ...] = ()
    owner: tuple[int, int] | None = None  # container owner from the tree's record, if kept

    def ids(self, to_uid: Callable[[int], int], to_gid: Callable[[int], int]) -> tuple[int, int]:
        """The container owner: the record's (trees that cannot hold it), else the disk's."""
        if self.owner is not None:
            return self.owner
        return to_uid(self.st.st_uid), to_gid(self.st.st_gid)

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.st.st_mode)

    @property
    def is_symlink(self) -> bool:
        return stat.S_ISLNK(self.st.st_mode)


class StackView:
    """``lowers`` top first, as overlayfs's ``lowerdir=top:…:bottom``."""

    def __init__(self, lowers: Sequence[Path]) -> None:
        self.lowers = [Path(p) for p in lowers]
        # Trees that keep ownership beside them (layers/owners.py): their records.
        self.records = {p: r for p in self.lowers if owners_path(p).exists()
                        for r in [read_owners(p)]}

    def _owner(self, host: Path) -> tuple[int, int] | None:
        if not self.records:
            return None
        for top, record in self.records.items():
            if host.is_relative_to(top):
                return record.get(os.fsencode(host.relative_to(top)), (0, 0))
        return None

    def _child(self, parents: Sequence[Path], name: str, path: str) -> Entry | None:
        found: list[Path] = []
        top: tuple[Path, os.stat_result] | None = None
        for layer_dir in parents:
            host = layer_dir / name
            try:
                st = os.lstat(host)
            except (FileNotFoundError, NotADirectoryError):
                if is_opaque(layer_dir):
                    break
                continue
            if is_whiteout_device(st):
                break
            if not stat.S_ISDIR(st.st_mode):
                if top is None:
                    return Entry(path, host, st, owner=self._owner(host))
                break  # a non-dir below a dir is hidden, and so is all beneath it
            if top is None:
                top = (host, st)
            found.append(host)
            if is_opaque(host):
                break
        if top is None:
            return None
        return Entry(path, top[0], top[1], tuple(found), self._owner(top[0]))

    def _parents_of_dir(self, layer_dirs: Sequence[Path]) -> list[Path]:
        """The layer copies of a dir whose lower copies overlay still shows."""
        out: list[Path] = []
        for d in layer_dirs:
            out.append(d)
            if is_opaque(d):
                break
        return out

    def lookup(self, path: str, *, follow: bool = True) -> Entry | None:
        """The entry at ``path``; symlinks in the parents are always followed (inside the
        root), the last component only with ``follow``."""
        # Its own walk, not layers.rootfs.resolve_in_root (same chroot rules): each step
        # merges the layers' copies of a directory (whiteouts, opaque dirs), and a walk over
        # one host directory cannot.
        if not self.lowers:
            return None
        hops = 0
        path = posixpath.normpath("/" + path)
        while True:
            parts = [c for c in path.split("/") if c]
            cur_path, cur_dirs = "/", self._parents_of_dir(self.lowers)
            entry = Entry("/", self.lowers[0], os.lstat(self.lowers[0]), tuple(self.lowers))
            restart = False
            for i, name in enumerate(parts):
                child_path = posixpath.join(cur_path, name)
                child = self._child(cur_dirs, name, child_path)
                if child is None:
                    return None
                last = i == len(parts) - 1
                if child.is_symlink and (follow or not last):
                    hops += 1
                    if hops > MAX_SYMLINKS:
                        raise BuildError(f"too many levels of symbolic links at {child_path}")
                    target = os.readlink(child.host)
                    base = target if target.startswith("/") else posixpath.join(cur_path, target)
                    path = posixpath.normpath("/" + posixpath.join(base, *parts[i + 1:]))
                    restart = True
                    break
                if not last and not child.is_dir:
                    return None
                if child.is_dir:
                    cur_path, cur_dirs = child_path, self._parents_of_dir(child.dirs)
                entry = child
            if not restart:
                return entry

    def realpath(self, path: str) -> str:
        """``path`` with every symlink resolved (missing tail components kept as given)."""
        parts = [c for c in posixpath.normpath("/" + path).split("/") if c]
        resolved = "/"
        for i, name in enumerate(parts):
            entry = self.lookup(posixpath.join(resolved, name))
            if entry is None:
                return posixpath.join(resolved, *parts[i:])
            resolved = entry.path
        return resolved

    def listdir(self, entry: Entry) -> list[str]:
        names: set[str] = set()
        hidden: set[str] = set()
        for d in self._parents_of_dir(entry.dirs):
            try:
                with os.scandir(d) as it:
                    for de in it:
                        if de.name in names or de.name in hidden:
                            continue
                        if de.is_file(follow_symlinks=False) or de.is_dir(follow_symlinks=False) \
                                or de.is_symlink():
                            names.add(de.name)
                        elif is_whiteout_device(de.stat(follow_symlinks=False)):
                            hidden.add(de.name)
                        else:
                            names.add(de.name)
            except FileNotFoundError:
                continue
        return sorted(names)

    def walk(self, entry: Entry) -> Iterator[tuple[str, Entry]]:
        """(relative path, entry) of everything below a directory entry, parents first."""
        for name in self.listdir(entry):
            child = self._child(self._parents_of_dir(entry.dirs), name,
                                posixpath.join(entry.path, name))
            if child is None:
                continue
            yield name, child
            if child.is_dir:
                for rel, sub in self.walk(child):
                    yield f"{name}/{rel}", sub

    def read(self, path: str) -> bytes | None:
        entry = self.lookup(path)
        if entry is None or not stat.S_ISREG(entry.st.st_mode):
            return None
        try:
            return entry.host.read_bytes()
        except OSError:
            return None

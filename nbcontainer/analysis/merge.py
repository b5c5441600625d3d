"""The one whiteout merge: layers stacked into one filesystem, as the OCI image spec and
overlayfs define it. The merged view of an image (``Image.files()``), the per-layer change
trees and image diffs all stack layers with this class.

The rules (image-spec, "Representing Changes"):

- a layer's whiteouts hide what the layers *below* it hold, never the layer's own entries, so
  they apply before its writes, wherever they stand in the tar;
- ``DIR/.wh.NAME`` hides ``DIR/NAME`` and everything below it;
- ``DIR/.wh..wh..opq`` (an opaque directory) hides everything below ``DIR``; ``DIR`` stays;
- an entry replaces the entry at its path; a non-directory over a directory takes the whole
  subtree with it, a directory over a directory merges with it.

Directories that lower layers hold only implicitly (entries below a path with no entry of
its own, as hand-made tars have) are directories here too: a whiteout hides them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .entries import OPAQUE, WHITEOUT_PREFIX, LayerEntry


@dataclass(frozen=True, slots=True)
class Whiteout:
    """``path`` is the path a ``.wh.`` entry hides, or for an opaque whiteout the directory
    whose lower content it hides."""

    path: str
    opaque: bool = False


@dataclass(frozen=True, slots=True)
class Hidden:
    """A path a whiteout took away, with the entries that were at and below it (by path)."""

    path: str
    entries: tuple[LayerEntry, ...]

    @property
    def kind(self) -> str:
        """The kind of the hidden path; ``d`` for a directory known only by its children."""
        first = self.entries[0] if self.entries else None
        return first.kind if first is not None and first.path == self.path else "d"

    @property
    def size(self) -> int:
        return sum(e.size for e in self.entries)


def split_whiteouts(entries: Iterable[LayerEntry]) -> tuple[list[Whiteout], list[LayerEntry]]:
    """A layer's entries as (whiteouts, the entries it writes), each in tar order."""
    whiteouts: list[Whiteout] = []
    writes: list[LayerEntry] = []
    for e in entries:
        # the substring test first: most paths have no ".wh." anywhere, so .name is rare
        if WHITEOUT_PREFIX in e.path and e.is_whiteout:
            parent, _, name = e.path.rpartition("/")
            if name == OPAQUE:
                whiteouts.append(Whiteout(parent, opaque=True))
            else:
                whiteouts.append(Whiteout((parent + "/" if parent else "") +
                                          name[len(WHITEOUT_PREFIX):]))
        else:
            writes.append(e)
    return whiteouts, writes


class MergedFS:
    """The filesystem of the layers applied so far: ``entries`` by path, plus an index of
    children by directory (``""`` is the root), so hiding a directory walks only its subtree.
    """

    def __init__(self) -> None:
        self.entries: dict[str, LayerEntry] = {}
        self.children: dict[str, set[str]] = {}

    def apply(self, entries: Sequence[LayerEntry]) -> list[Hidden]:
        """Stack one layer on top; returns what its whiteouts hid."""
        whiteouts, writes = split_whiteouts(entries)
        hidden = [h for w in whiteouts for h in self.hide(w)]
        for e in writes:
            self.write(e)
        return hidden

    def hide(self, whiteout: Whiteout) -> list[Hidden]:
        """Apply one whiteout; the paths it hid (an opaque one: each child, by name)."""
        if whiteout.opaque:
            targets = sorted(self.children.get(whiteout.path, ()))
        else:
            targets = [whiteout.path]
        out = []
        for target in targets:
            gone = self.remove(target)
            if gone:
                gone.sort(key=lambda e: e.path)
                out.append(Hidden(target, tuple(gone)))
        return out

    def write(self, e: LayerEntry) -> LayerEntry | None:
        """Put ``e`` at its path; returns the entry it replaced."""
        path = e.path
        old = self.entries.get(path)
        if old is None:
            kids = self.children.get(path.rpartition("/")[0])
            if kids is not None:  # the parent is known: the common case, inline
                kids.add(path)
            else:
                self._link(path)
        if e.kind != "d":
            below = self.children.get(path)
            if below:  # a file over a directory: the directory's content goes with it
                for p in list(below):
                    self.remove(p)
        self.entries[path] = e
        return old

    def _link(self, path: str) -> None:
        """Index a new path under its parent, and a parent no entry has made yet (an
        implicit directory) under its own parent, up to a known directory."""
        while True:
            parent = path.rpartition("/")[0]
            kids = self.children.get(parent)
            if kids is not None:
                kids.add(path)
                return
            self.children[parent] = {path}
            if not parent or parent in self.entries:
                return
            path = parent

    def _paths(self, path: str) -> list[str]:
        out: list[str] = []
        stack = [path]
        while stack:
            p = stack.pop()
            out.append(p)
            stack.extend(self.children.get(p, ()))
        return out

    def subtree(self, path: str) -> list[LayerEntry]:
        """The entries at and below ``path`` (no order)."""
        get = self.entries.get
        return [e for p in self._paths(path) if (e := get(p)) is not None]

    def remove(self, path: str) -> list[LayerEntry]:
        """Take ``path`` and everything below it away; returns the entries removed (no
        order)."""
        gone: list[LayerEntry] = []
        for p in self._paths(path):
            e = self.entries.pop(p, None)
            if e is not None:
                gone.append(e)
            self.children.pop(p, None)
        kids = self.children.get(path.rpartition("/")[0])
        if kids is not None:
            kids.discard(path)
        return gone


def merge(layers: Iterable[Sequence[LayerEntry]]) -> dict[str, LayerEntry]:
    """The merged filesystem of ``layers`` (bottom first): path → the entry that wins."""
    fs = MergedFS()
    for entries in layers:
        fs.apply(entries)
    return fs.entries

"""What changed between two images' merged filesystems (``%image_diff``, ``Image.diff``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .entries import LayerEntry


def change_key(e: LayerEntry) -> tuple[object, ...]:
    """What must match for an entry to count as unchanged: rsync's quick check (type, size,
    mode, owner, link target, mtime). Layers carry no content hashes, and re-reading every
    file would cost seconds for a small signal."""
    if e.kind == "d":  # a directory's mtime moves whenever a child does: not a change of its own
        return (e.kind, e.mode, e.uid, e.gid)
    return (e.kind, e.size, e.mode, e.uid, e.gid, e.link, e.mtime)


@dataclass(frozen=True)
class ImageDiff:
    """Entries of B not in A (``added``), in both but different (``changed``, as (old, new)),
    and in A only (``removed``); each sorted by path."""

    a: str
    b: str
    added: tuple[LayerEntry, ...]
    changed: tuple[tuple[LayerEntry, LayerEntry], ...]
    removed: tuple[LayerEntry, ...]

    def summary(self) -> str:
        return (f"{self.a} → {self.b}: {len(self.added)} added, {len(self.changed)} changed, "
                f"{len(self.removed)} removed")


def diff_files(a: Mapping[str, LayerEntry], b: Mapping[str, LayerEntry], a_name: str = "A",
               b_name: str = "B") -> ImageDiff:
    """The diff of two merged filesystems (:func:`~.merge.merge`), named for display."""
    added = sorted(p for p in b if p not in a)
    removed = sorted(p for p in a if p not in b)
    changed = sorted(p for p in b if p in a and change_key(a[p]) != change_key(b[p]))
    return ImageDiff(a_name, b_name, tuple(b[p] for p in added),
                     tuple((a[p], b[p]) for p in changed), tuple(a[p] for p in removed))

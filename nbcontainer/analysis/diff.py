"""What changed between two images' merged filesystems (``%image_diff``, ``Image.diff``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..humanize import size
from .entries import LayerEntry

_KIND_NAMES = {"f": "file", "d": "directory", "l": "symlink", "h": "hard link",
               "c": "character device", "b": "block device", "p": "fifo"}


def change_key(e: LayerEntry) -> tuple[object, ...]:
    """What must match for an entry to count as unchanged: type, mode, owner, link target
    and, for regular files, size and content (the hash taken while the layer was read).
    Timestamps do not count: the same file built again a second later is the same file."""
    if e.kind == "d":
        return (e.kind, e.mode, e.uid, e.gid)
    return (e.kind, e.size, e.mode, e.uid, e.gid, e.link, e.digest)


def what_changed(old: LayerEntry, new: LayerEntry) -> tuple[str, ...]:
    """The aspects in which two entries at one path differ: ``type``, ``size``, ``content``
    (same size, other bytes), ``mode``, ``owner``, ``link`` (target)."""
    if old.kind != new.kind:
        return ("type",)
    out = []
    if new.kind == "f":
        if old.size != new.size:
            out.append("size")
        elif old.digest != new.digest:
            out.append("content")
    if old.mode != new.mode:
        out.append("mode")
    if (old.uid, old.gid) != (new.uid, new.gid):
        out.append("owner")
    if old.link != new.link:
        out.append("link")
    return tuple(out)


def describe_change(old: LayerEntry, new: LayerEntry) -> str:
    """One line of what changed: ``size 12B → 40B``, ``mode 0644 → 0755``, ``owner 0:0 →
    1000:1000``, ``content``, ``link a → b``, ``type file → symlink``."""
    parts = []
    for aspect in what_changed(old, new):
        if aspect == "type":
            parts.append(f"type {_KIND_NAMES.get(old.kind, old.kind)} → "
                         f"{_KIND_NAMES.get(new.kind, new.kind)}")
        elif aspect == "size":
            parts.append(f"size {size(old.size)} → {size(new.size)}")
        elif aspect == "content":
            parts.append("content (same size)")
        elif aspect == "mode":
            parts.append(f"mode {old.mode:04o} → {new.mode:04o}")
        elif aspect == "owner":
            parts.append(f"owner {old.uid}:{old.gid} → {new.uid}:{new.gid}")
        else:
            parts.append(f"link {old.link} → {new.link}")
    return ", ".join(parts)


def count_files(entries: Sequence[LayerEntry]) -> tuple[int, int]:
    """(files, directories) among ``entries``: files are the non-directory entries."""
    dirs = sum(1 for e in entries if e.kind == "d")
    return len(entries) - dirs, dirs


@dataclass(frozen=True)
class ImageDiff:
    """Entries of B not in A (``added``), in both but different (``changed``, as (old, new)),
    and in A only (``removed``); each sorted by path. Counts say files (non-directory
    entries, as every view counts them) and directories apart."""

    a: str
    b: str
    added: tuple[LayerEntry, ...]
    changed: tuple[tuple[LayerEntry, LayerEntry], ...]
    removed: tuple[LayerEntry, ...]

    def counts(self) -> dict[str, tuple[int, int]]:
        """(files, directories) added, changed and removed."""
        return {"added": count_files(self.added),
                "changed": count_files([new for _, new in self.changed]),
                "removed": count_files(self.removed)}

    def summary(self) -> str:
        """``a → b: 2,679 files added, 3 changed, 5 removed (+153, ~0, -2 directories)``."""
        c = self.counts()
        files = [c[k][0] for k in ("added", "changed", "removed")]
        dirs = [c[k][1] for k in ("added", "changed", "removed")]
        noun = "file" if files[0] == 1 else "files"
        text = (f"{self.a} → {self.b}: {files[0]:,} {noun} added, {files[1]:,} changed, "
                f"{files[2]:,} removed")
        if any(dirs):
            text += f" (directories: +{dirs[0]:,} ~{dirs[1]:,} -{dirs[2]:,})"
        return text

    def bytes_added(self) -> int:
        """The size the regular files of B add or grow by, net of what A had there."""
        grown = sum(new.size - old.size for old, new in self.changed)
        return sum(e.size for e in self.added) + grown - sum(e.size for e in self.removed)


def diff_files(a: Mapping[str, LayerEntry], b: Mapping[str, LayerEntry], a_name: str = "A",
               b_name: str = "B") -> ImageDiff:
    """The diff of two merged filesystems (:func:`~.merge.merge`), named for display."""
    added = sorted(p for p in b if p not in a)
    removed = sorted(p for p in a if p not in b)
    changed = sorted(p for p in b if p in a and change_key(a[p]) != change_key(b[p]))
    return ImageDiff(a_name, b_name, tuple(b[p] for p in added),
                     tuple((a[p], b[p]) for p in changed), tuple(a[p] for p in removed))

"""Ownership a tree on disk cannot hold, kept beside it.

Without a user namespace (or with a single-id map) every file a build writes belongs to the
calling user, however the image says it is owned. The container owner of such entries is
recorded in an *owners record*: a file ``<tree>.owners`` next to the tree (never inside it,
so no RUN sees it and no layer carries it) mapping the entry's path relative to the tree
(``etc/shadow``, bytes) to its ``(uid, gid)``. Entries without a record are owned by
container root. The layer writer takes owners from the record, never from the disk.
"""

from __future__ import annotations

import marshal
import os
from collections.abc import Mapping
from pathlib import Path

Owners = dict[bytes, tuple[int, int]]


def owners_path(tree: str | os.PathLike[str]) -> Path:
    path = Path(tree)
    return path.with_name(path.name + ".owners")


def read_owners(tree: str | os.PathLike[str]) -> Owners:
    """The record of ``tree`` (empty when it has none)."""
    try:
        with open(owners_path(tree), "rb") as f:
            data = marshal.load(f)
    except (OSError, EOFError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_owners(tree: str | os.PathLike[str], owners: Mapping[bytes, tuple[int, int]]) -> None:
    """Write the record of ``tree`` (only entries not owned by root); none when empty."""
    kept = {k: (int(u), int(g)) for k, (u, g) in owners.items() if u or g}
    path = owners_path(tree)
    if not kept:
        path.unlink(missing_ok=True)
        return
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        marshal.dump(kept, f)
    os.replace(tmp, path)


def move_owners(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    """Move ``src``'s record along with the tree (renamed to ``dst``)."""
    try:
        os.replace(owners_path(src), owners_path(dst))
    except FileNotFoundError:
        pass

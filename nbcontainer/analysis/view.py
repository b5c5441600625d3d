"""The image as it stands at one layer, as a tree (dive's main view): the layers up to and
including that one merged, each path marked with what that layer did to it (added,
modified, or removed: the paths its whiteouts hid are kept in the tree, marked).

Also the orderings the views share (by size or by name) and the search over a tree: the
paths that match and the directories that lead to them (which the views open).
"""

from __future__ import annotations

from collections.abc import Sequence

from .changes import (
    ADDED,
    MODIFIED,
    REMOVED,
    UNCHANGED,
    LayerTree,
    Node,
    iter_nodes,
    node_at,
    totals,
)
from .entries import LayerEntry
from .merge import MergedFS

SORTS = ("size", "name")


def children(node: Node, by: str = "size") -> list[Node]:
    """A directory's children, biggest first (``by="size"``, dive's and Docker Desktop's
    useful order) or by name (``ls``)."""
    if not node.children:
        return []
    kids = node.children.values()
    if by == "name":
        return sorted(kids, key=lambda n: n.name)
    return sorted(kids, key=lambda n: (-(n.size or n.removed_size), n.name))


def image_at(layers: Sequence[Sequence[LayerEntry]], changes: LayerTree) -> Node:
    """The tree of ``layers`` (bottom first, up to and including the layer ``changes``
    describes) merged, marked with that layer's changes."""
    fs = MergedFS()
    for entries in layers:
        fs.apply(entries)
    root = Node("", "", children={})
    nodes = {"": root}
    marks = {n.path: n for n in iter_nodes(changes.root) if n.path}
    for path, e in fs.entries.items():
        node = node_at(nodes, path)
        node.kind, node.mode, node.uid, node.gid, node.link = e.kind, e.mode, e.uid, e.gid, e.link
        mark = marks.get(path)
        if mark is not None and mark.status in (ADDED, MODIFIED):
            node.status = mark.status
        if e.kind != "d":
            node.size = e.size
            node.children = None
    for path, mark in marks.items():
        if mark.status == REMOVED and path not in fs.entries:
            node = node_at(nodes, path)
            node.status, node.kind, node.removed_size = REMOVED, mark.kind, mark.removed_size
            node.children = {} if mark.kind == "d" else None
    totals(root)
    _mark_dirs(root)
    return root


def _mark_dirs(root: Node) -> None:
    """A directory that holds changes but was not itself written takes its children's state
    (dive's rule): added when all of them are new, else modified."""
    for n in reversed(list(iter_nodes(root))):
        if not n.children or n.status != UNCHANGED or n is root:
            continue
        states = {c.status for c in n.children.values()}
        if states == {ADDED}:
            n.status = ADDED
        elif states != {UNCHANGED}:
            n.status = MODIFIED


def matches(root: Node, query: str) -> tuple[set[str], set[str]]:
    """(the paths whose name contains ``query``, case-insensitive; the directories above
    them, which a view opens to show them)."""
    q = query.lower()
    found: set[str] = set()
    opened: set[str] = set()
    if not q:
        return found, opened
    for n in iter_nodes(root):
        if n.path and q in n.name.lower():
            found.add(n.path)
            parent = n.path.rpartition("/")[0]
            while parent and parent not in opened:
                opened.add(parent)
                parent = parent.rpartition("/")[0]
    return found, opened

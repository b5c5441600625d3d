"""Per-layer changes: what one layer adds, modifies and removes, as a tree of its paths.

Marking, as dive does it: a path a layer writes is *added* when no lower layer had it and
*modified* when one did; a whiteout (``.wh.name``) or an opaque directory marks the lower
paths *removed*. A directory the layer re-emits with the same mode and owner is context, not
a change (tar writers repeat every parent directory). Directory sizes and file counts total
what the layer writes below them; removed bytes are counted apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .efficiency import Tally
from .entries import LayerEntry
from .history import LayerRef, clean_command
from .merge import MergedFS, Whiteout, split_whiteouts

ADDED, MODIFIED, REMOVED, UNCHANGED = "+", "~", "-", ""
CHANGES = frozenset({ADDED, MODIFIED, REMOVED})


@dataclass(slots=True)
class Node:
    """A path in one layer's change tree. For directories ``size`` and ``files`` total the
    entries beneath that this layer writes (removed entries are counted apart)."""

    name: str
    path: str
    kind: str = "d"
    status: str = UNCHANGED
    size: int = 0
    files: int = 0
    removed_size: int = 0
    mode: int = 0
    uid: int = 0
    gid: int = 0
    link: str = ""
    children: dict[str, Node] | None = None

    @property
    def is_dir(self) -> bool:
        return self.children is not None

    def sorted_children(self) -> list[Node]:
        """By name, as ``ls`` and dive list them (stable output for saved notebooks)."""
        return sorted(self.children.values(), key=lambda n: n.name) if self.children else []

    def walk(self) -> Iterable[Node]:
        yield self
        for c in self.sorted_children():
            yield from c.walk()


@dataclass(slots=True)
class LayerTree:
    """One layer's changes: its tree and its counts. ``entries`` counts the non-directory
    entries the layer writes; ``added``/``modified`` the same entries by status; ``removed``
    the paths its whiteouts hid."""

    index: int
    digest: str
    diff_id: str
    command: str
    compressed_size: int
    root: Node
    size: int = 0  # bytes this layer writes (sum of its regular files)
    entries: int = 0
    added: int = 0
    modified: int = 0
    removed: int = 0
    removed_size: int = 0

    @property
    def anchor(self) -> str:
        """The HTML id of this layer (manifest digests link to it)."""
        return "nbc-layer-" + self.digest.partition(":")[2][:12]


def _node(nodes: dict[str, Node], path: str) -> Node:
    """The node for ``path``, creating (unchanged) parent directories; ``nodes`` maps every
    path of the layer's tree to its node (``""`` is the root), so a lookup is one dict get."""
    node = nodes.get(path)
    if node is not None:
        return node
    parent_path, _, name = path.rpartition("/")
    parent = _node(nodes, parent_path)
    if parent.children is None:
        parent.children = {}
    node = parent.children[name] = nodes[path] = Node(name, path, children={})
    return node


def totals(node: Node) -> None:
    """Directory sizes and file counts, bottom-up, without recursion (deep trees exist)."""
    order: list[Node] = []
    stack = [node]
    while stack:
        n = stack.pop()
        order.append(n)
        if n.children:
            stack.extend(n.children.values())
    for n in reversed(order):
        if not n.children:
            continue
        size = files = removed = 0
        for c in n.children.values():
            removed += c.removed_size
            if c.status != REMOVED:
                size += c.size
                files += c.files if c.children is not None else 1
        n.size, n.files, n.removed_size = size, files, removed


def _hide(fs: MergedFS, whiteout: Whiteout, nodes: dict[str, Node], lt: LayerTree,
          tally: Tally) -> None:
    for hidden in fs.hide(whiteout):
        kind, gone = hidden.kind, hidden.size
        node = _node(nodes, hidden.path)
        node.status, node.kind = REMOVED, kind
        node.removed_size = gone
        node.children = {} if kind == "d" else None
        lt.removed += 1
        lt.removed_size += gone
        tally.seen(hidden.path, gone if kind == "d" else 0)
    if whiteout.opaque and whiteout.path in fs.entries:
        _node(nodes, whiteout.path).status = MODIFIED


def _status(e: LayerEntry, old: LayerEntry | None, node: Node | None) -> str:
    if old is None:
        return ADDED
    if e.kind == "d" and old.kind == "d" and (e.mode, e.uid, e.gid) == \
            (old.mode, old.uid, old.gid):
        # the same directory again: a change only if this layer's whiteouts emptied it
        return MODIFIED if node is not None and node.status == MODIFIED else UNCHANGED
    return MODIFIED


def _update(node: Node, e: LayerEntry, status: str) -> None:
    """A path the layer's tree already holds (a parent made earlier, or hidden and written
    again) takes the entry's data."""
    node.status = status
    node.kind, node.mode, node.uid, node.gid, node.link = e.kind, e.mode, e.uid, e.gid, e.link
    if e.kind != "d":
        node.size = e.size
        node.children = None


def _write(fs: MergedFS, writes: Sequence[LayerEntry], nodes: dict[str, Node], lt: LayerTree,
           tally: Tally) -> None:
    # Once per entry of the layer (30,000 in a big one): the new-node path, the counters and
    # the tally update are inline, in locals.
    stats, write = tally.stats, fs.write
    files = size_total = added = modified = 0
    for e in writes:
        path, kind, size = e.path, e.kind, e.size
        old = write(e)
        node = nodes.get(path)
        status = ADDED if old is None else _status(e, old, node)
        if node is None:
            parent_path, _, name = path.rpartition("/")
            parent = nodes.get(parent_path) or _node(nodes, parent_path)
            if parent.children is None:
                parent.children = {}
            parent.children[name] = nodes[path] = Node(
                name, path, kind, status, 0 if kind == "d" else size, 0, 0, e.mode, e.uid,
                e.gid, e.link, {} if kind == "d" else None)
        else:
            _update(node, e, status)
        if kind != "d":
            files += 1
            size_total += size
            if status == ADDED:
                added += 1
            elif status == MODIFIED:
                modified += 1
        st = stats.get(path)
        if st is None:
            stats[path] = [1, size, size]
        else:
            st[0] += 1
            st[1] += size
            if size < st[2]:
                st[2] = size
    lt.entries += files
    lt.size += size_total
    lt.added += added
    lt.modified += modified


def layer_changes(fs: MergedFS, index: int, ref: LayerRef, entries: Sequence[LayerEntry],
                  tally: Tally) -> LayerTree:
    """Stack layer ``index`` on ``fs`` and record what it changes; ``tally`` collects the
    sizes the efficiency score needs."""
    root = Node("", "", children={})
    nodes = {"": root}
    lt = LayerTree(index, str(ref.digest), str(ref.diff_id or ""),
                   clean_command(ref.created_by), ref.size, root)
    whiteouts, writes = split_whiteouts(entries)
    for w in whiteouts:  # whiteouts hide lower layers only, so they go first
        _hide(fs, w, nodes, lt, tally)
    _write(fs, writes, nodes, lt, tally)
    totals(root)
    return lt


def _copy(n: Node, children: dict[str, Node] | None) -> Node:
    return Node(n.name, n.path, n.kind, n.status, n.size, n.files, n.removed_size, n.mode,
                n.uid, n.gid, n.link, children)


def filter_tree(root: Node, statuses: frozenset[str] = CHANGES, query: str = "") -> Node:
    """A copy of ``root`` keeping the entries whose status is in ``statuses`` and whose path
    contains ``query`` (case-insensitive), with their directories; totals recomputed."""
    q = query.lower()

    def keep(n: Node) -> Node | None:
        if n.children:
            kids = {k: c for k, c in ((k, keep(c)) for k, c in n.children.items())
                    if c is not None}
            own = n.status in statuses and n.status != UNCHANGED and q in n.path.lower()
            return _copy(n, kids) if kids or own else None
        if n.status in statuses and q in n.path.lower():
            return _copy(n, {} if n.children is not None else None)
        return None

    out = keep(root) or Node("", "", children={})
    totals(out)
    return out

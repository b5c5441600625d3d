"""The dive model: per-layer change trees, per-directory sizes and the image's efficiency.

Pure data (no HTML, no IPython) so the HTML view, the widget and tests share one truth.

Marking, as dive does it: a path a layer writes is *added* when no lower layer had it and
*modified* when one did; a whiteout (``.wh.name``) or an opaque directory marks the lower
paths *removed*. Efficiency, also dive's: for every path, ``cumulative`` is the sum of its
sizes over the layers that touch it (a whiteout counts as size 0 for a file and as the removed
subtree for a directory) and ``min`` its smallest size; ``score = Σmin / Σcumulative``.
**Reclaimable** bytes are ``Σ(cumulative − min)`` over paths touched more than once: the copies
a later layer overwrote or deleted. dive's "wasted space" sums ``cumulative`` instead, which
also counts the copy that is kept (wagoodman/dive#684); we do not.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ...image import LayerEntry

ADDED, MODIFIED, REMOVED, UNCHANGED = "+", "~", "-", ""
OPAQUE = ".wh..wh..opq"


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


@dataclass(frozen=True, slots=True)
class Inefficiency:
    path: str
    count: int
    cumulative: int
    min: int

    @property
    def reclaimable(self) -> int:
        return self.cumulative - self.min


@dataclass(slots=True)
class ImageTree:
    layers: list[LayerTree] = field(default_factory=list)
    size: int = 0  # merged filesystem's bytes
    cumulative: int = 0
    minimum: int = 0
    inefficiencies: list[Inefficiency] = field(default_factory=list)

    @property
    def efficiency(self) -> float:
        return 1.0 if self.cumulative == 0 else self.minimum / self.cumulative

    @property
    def reclaimable(self) -> int:
        return sum(i.reclaimable for i in self.inefficiencies)

    @property
    def dive_wasted(self) -> int:
        """What dive would call wasted (it counts the kept copy too); for comparison only."""
        return sum(i.cumulative for i in self.inefficiencies)


def clean_command(created_by: str) -> str:
    """``history.created_by`` as dive shows it: no ``/bin/sh -c`` or ``#(nop)``, one line."""
    cmd = created_by.strip()
    for prefix in ("/bin/sh -c #(nop) ", "/bin/sh -c ", "|"):
        if cmd.startswith(prefix):
            if prefix == "|":  # BuildKit's "|2 A=1 B=2 /bin/sh -c …" for RUN with build args
                n, _, rest = cmd[1:].partition(" ")
                if n.isdigit():
                    parts = rest.split(" ", int(n))
                    cmd = parts[-1] if len(parts) > int(n) else rest
                    cmd = cmd.removeprefix("/bin/sh -c ")
                continue
            cmd = cmd[len(prefix):]
    if cmd.startswith("RUN /bin/sh -c "):  # BuildKit's RUN history: show the command as written
        cmd = "RUN " + cmd[len("RUN /bin/sh -c "):]
    return cmd.removesuffix(" # buildkit").replace("\n", "↵ ").strip()


class _Merged:
    """The stacked filesystem below the current layer: entries plus a child index, so the size
    of a removed directory is found by walking only that directory."""

    def __init__(self) -> None:
        self.entries: dict[str, LayerEntry] = {}
        self.children: dict[str, set[str]] = {}

    def add(self, e: LayerEntry) -> None:
        if e.path not in self.entries:
            parent = e.path.rpartition("/")[0]
            self.children.setdefault(parent, set()).add(e.path)
        old = self.entries.get(e.path)
        if old is not None and old.kind == "d" and e.kind != "d":
            for p in list(self.children.get(e.path, ())):
                self.remove(p)
        self.entries[e.path] = e

    def subtree(self, path: str) -> list[LayerEntry]:
        out: list[LayerEntry] = []
        stack = [path]
        while stack:
            p = stack.pop()
            e = self.entries.get(p)
            if e is not None:
                out.append(e)
            stack.extend(self.children.get(p, ()))
        return out

    def remove(self, path: str) -> None:
        for e in self.subtree(path):
            self.entries.pop(e.path, None)
            self.children.pop(e.path, None)
        parent = path.rpartition("/")[0]
        kids = self.children.get(parent)
        if kids is not None:
            kids.discard(path)


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


def _totals(node: Node) -> None:
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


def build_tree(layers: Sequence[tuple[Sequence[LayerEntry], str, str, str, int]]) -> ImageTree:
    """``layers`` bottom-up as (entries, digest, diff_id, created_by, compressed size)."""
    merged = _Merged()
    stats: dict[str, list[int]] = {}  # path → [count, cumulative, min]
    tree = ImageTree()

    def seen(path: str, size: int) -> None:
        s = stats.get(path)
        if s is None:
            stats[path] = [1, size, size]
        else:
            s[0] += 1
            s[1] += size
            if size < s[2]:
                s[2] = size

    for index, (entries, digest, diff_id, created_by, csize) in enumerate(layers):
        root = Node("", "", children={})
        nodes = {"": root}
        lt = LayerTree(index, digest, diff_id, clean_command(created_by), csize, root)
        removals: list[tuple[str, bool]] = []  # (path, opaque)
        writes: list[LayerEntry] = []
        for e in entries:
            if ".wh." in e.path and e.is_whiteout:
                parent = e.path.rpartition("/")[0]
                if e.name == OPAQUE:
                    removals.append((parent, True))
                else:
                    removals.append(((parent + "/" if parent else "") + e.name[4:], False))
            else:
                writes.append(e)
        # Whiteouts apply to lower layers only, so they go first.
        for path, opaque in removals:
            targets = sorted(merged.children.get(path, ())) if opaque else [path]
            for target in targets:
                old = merged.entries.get(target)
                if old is None:
                    continue
                sub = merged.subtree(target)
                gone = sum(x.size for x in sub)
                node = _node(nodes, target)
                node.status, node.kind = REMOVED, old.kind
                node.removed_size = gone
                node.children = {} if old.kind == "d" else None
                lt.removed += 1
                lt.removed_size += gone
                seen(target, gone if old.kind == "d" else 0)
                merged.remove(target)
            if opaque and path in merged.entries:
                _node(nodes, path).status = MODIFIED
        # Once per entry: _node, seen() and _Merged.add inlined, counters kept in locals.
        m_entries, m_children = merged.entries, merged.children
        files = size_total = added = modified = 0
        for e in writes:
            path, kind, size = e.path, e.kind, e.size
            old = m_entries.get(path)
            node = nodes.get(path)
            if old is None:
                status = ADDED
            elif kind == "d" and old.kind == "d" and (e.mode, e.uid, e.gid) == \
                    (old.mode, old.uid, old.gid):
                status = MODIFIED if node is not None and node.status == MODIFIED else UNCHANGED
            else:
                status = MODIFIED
            parent_path, _, name = path.rpartition("/")
            if node is None:
                parent = nodes.get(parent_path)
                if parent is None:
                    parent = _node(nodes, parent_path)
                if parent.children is None:
                    parent.children = {}
                node = parent.children[name] = nodes[path] = Node(
                    name, path, kind, status, size if kind != "d" else 0, 0, 0, e.mode, e.uid,
                    e.gid, e.link, {} if kind == "d" else None)
            else:
                node.status = status
                node.kind, node.mode, node.uid, node.gid, node.link = \
                    kind, e.mode, e.uid, e.gid, e.link
                if kind != "d":
                    node.size = size
                    node.children = None
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
            if old is None:
                kids = m_children.get(parent_path)
                if kids is None:
                    m_children[parent_path] = {path}
                else:
                    kids.add(path)
            elif old.kind == "d" and kind != "d":
                for p in list(m_children.get(path, ())):
                    merged.remove(p)
            m_entries[path] = e
        lt.entries += files
        lt.size += size_total
        lt.added += added
        lt.modified += modified
        _totals(root)
        tree.layers.append(lt)

    total_cumulative = total_minimum = 0
    for path, (count, cumulative, minimum) in stats.items():
        total_cumulative += cumulative
        total_minimum += minimum
        if count > 1 and cumulative > minimum:
            tree.inefficiencies.append(Inefficiency(path, count, cumulative, minimum))
    tree.cumulative += total_cumulative
    tree.minimum += total_minimum
    tree.inefficiencies.sort(key=lambda i: (-i.reclaimable, i.path))
    tree.size = sum(e.size for e in merged.entries.values())
    return tree


# Trees by layer stack: images that differ only in their config (a changed CMD, LABEL, tag)
# share one. Trees are read-only once built (filter_tree copies).
_STACKS: OrderedDict[tuple[tuple[str, str, str, int], ...], ImageTree] = OrderedDict()
_STACKS_MAX = 4
_stacks_lock = threading.Lock()


def image_tree(image) -> ImageTree:  # noqa: ANN001 - an nbcontainer.image.Image
    """The tree of an :class:`~nbcontainer.image.Image` (reads every layer once, cached; the
    tree itself is kept for the last few layer stacks)."""
    layers = [(layer, str(layer.digest), str(layer.diff_id or ""), layer.created_by, layer.size)
              for layer in image.layers]
    key = tuple(x[1:] for x in layers)
    with _stacks_lock:
        tree = _STACKS.get(key)
        if tree is not None:
            _STACKS.move_to_end(key)
            return tree
    tree = build_tree([(layer.entries(), *rest) for layer, *rest in layers])
    with _stacks_lock:
        _STACKS[key] = tree
        while len(_STACKS) > _STACKS_MAX:
            _STACKS.popitem(last=False)
    return tree


def filter_tree(root: Node, statuses: frozenset[str] = frozenset({ADDED, MODIFIED, REMOVED}),
                query: str = "") -> Node:
    """A copy of ``root`` keeping the entries whose status is in ``statuses`` and whose path
    contains ``query`` (case-insensitive), with their directories; totals recomputed."""
    q = query.lower()

    def keep(n: Node) -> Node | None:
        if n.children is not None and n.children:
            kids = {k: c for k, c in ((k, keep(c)) for k, c in n.children.items())
                    if c is not None}
            own = n.status in statuses and n.status != UNCHANGED and q in n.path.lower()
            if not kids and not own:
                return None
            return Node(n.name, n.path, n.kind, n.status, n.size, n.files, n.removed_size,
                        n.mode, n.uid, n.gid, n.link, kids)
        if n.status in statuses and q in n.path.lower():
            return Node(n.name, n.path, n.kind, n.status, n.size, n.files, n.removed_size,
                        n.mode, n.uid, n.gid, n.link, {} if n.children is not None else None)
        return None

    out = keep(root) or Node("", "", children={})
    _totals(out)
    return out

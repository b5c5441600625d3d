"""The model of an image: per-layer change trees, the merged filesystem, waste and sizes.

Pure data (no HTML, no IPython): the notebook views, the widget, the command line and the
tests render or read the same objects. Built from plain inputs — the image's layers as
:class:`~.history.LayerRef` and an :data:`~.entries.EntryReader` — never from an ``Image``.

Marking, as dive does it: a path a layer writes is *added* when no lower layer had it and
*modified* when one did; a whiteout (``.wh.name``) or an opaque directory marks the lower
paths *removed* (:mod:`.changes`, over the one whiteout merge of :mod:`.merge`).

Two scores. :attr:`ImageTree.efficiency` is ours: the share of the bytes the image's own
layers store that is not waste — junk (caches, package lists, /tmp …), copies a later layer
overwrote or deleted, content stored twice (:mod:`.insight`, :mod:`.junk`).
:attr:`ImageTree.dive_efficiency` is dive's, for comparison: for every path, ``cumulative``
is the sum of its sizes over the layers that touch it (a whiteout counts as size 0 for a
file and as the removed subtree for a directory) and ``min`` its smallest size; ``score =
Σmin / Σcumulative``. dive sees only paths touched twice, so a 90 MB apt cache written once
scores as efficient there.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

from .changes import LayerTree, layer_changes
from .efficiency import Inefficiency, Tally
from .entries import EntryReader, LayerEntry
from .history import LayerRef, own_from
from .insight import Insight, Shadows, build_insight
from .merge import MergedFS


@dataclass(slots=True)
class ImageTree:
    """Every layer's changes (bottom first), the merged filesystem (``files``: path → the
    entry that wins), the waste findings and sizes (``insight``) and dive's numbers."""

    layers: list[LayerTree] = field(default_factory=list)
    size: int = 0  # merged filesystem's bytes
    cumulative: int = 0
    minimum: int = 0
    inefficiencies: tuple[Inefficiency, ...] = ()
    files: dict[str, LayerEntry] = field(default_factory=dict)
    insight: Insight = field(default_factory=Insight)

    @property
    def efficiency(self) -> float:
        """Ours: 1 − waste / bytes of the image's own layers (junk counts as waste)."""
        return self.insight.efficiency

    @property
    def reclaimable(self) -> int:
        """The waste behind :attr:`efficiency`: bytes of the own layers a better Dockerfile
        would not store."""
        return self.insight.waste

    @property
    def dive_efficiency(self) -> float:
        """dive's score (Σmin / Σcumulative over every path of every layer)."""
        return 1.0 if self.cumulative == 0 else self.minimum / self.cumulative

    @property
    def overwritten(self) -> int:
        """Σ(cumulative − min) over the paths touched more than once: dive's inefficiencies
        with the kept copy counted once (wagoodman/dive#684)."""
        return sum(i.reclaimable for i in self.inefficiencies)

    @property
    def dive_wasted(self) -> int:
        """What dive would call wasted (it counts the kept copy too); for comparison only."""
        return sum(i.cumulative for i in self.inefficiencies)

    @property
    def own_size(self) -> int:
        """Bytes the image's own layers store (the base image's layers excluded)."""
        return self.insight.own_size

    def count(self) -> tuple[int, int]:
        """(files, directories) of the image as it stands: files are non-directory entries,
        as every view counts them."""
        dirs = sum(1 for e in self.files.values() if e.kind == "d")
        return len(self.files) - dirs, dirs


def build_tree(stack: Sequence[tuple[LayerRef, Sequence[LayerEntry]]]) -> ImageTree:
    """The model of ``stack``: each layer (bottom first) with its entries."""
    fs = MergedFS()
    tally = Tally()
    shadows: Shadows = {}
    tree = ImageTree()
    for index, (ref, entries) in enumerate(stack):
        tree.layers.append(layer_changes(fs, index, ref, entries, tally, shadows))
    result = tally.result()
    tree.cumulative, tree.minimum = result.cumulative, result.minimum
    tree.inefficiencies = result.inefficiencies
    tree.files = fs.entries
    tree.size = sum(e.size for e in fs.entries.values())
    tree.insight = build_insight([entries for _, entries in stack], fs.entries, shadows,
                                 own_from([ref for ref, _ in stack]))
    return tree


class TreeCache:
    """Trees of the last few layer stacks. Keyed by the stack, not by the image: images that
    differ only in their config (a changed CMD, LABEL, tag) share one tree. Trees are
    read-only once built (:func:`~.changes.filter_tree` copies)."""

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self._data: OrderedDict[tuple[LayerRef, ...], ImageTree] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[LayerRef, ...]) -> ImageTree | None:
        with self._lock:
            tree = self._data.get(key)
            if tree is not None:
                self._data.move_to_end(key)
            return tree

    def put(self, key: tuple[LayerRef, ...], tree: ImageTree) -> ImageTree:
        with self._lock:
            self._data[key] = tree
            while len(self._data) > self.size:
                self._data.popitem(last=False)
        return tree

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


TREES = TreeCache()
"""The one cache of trees."""


def image_tree(layers: Sequence[LayerRef], read: EntryReader) -> ImageTree:
    """The tree of the stack ``layers`` (bottom first) whose entries ``read`` gives: each
    layer read once (entry cache), the tree kept for the last few stacks."""
    key = tuple(layers)
    tree = TREES.get(key)
    if tree is None:
        tree = TREES.put(key, build_tree([(ref, read(ref.digest)) for ref in layers]))
    return tree

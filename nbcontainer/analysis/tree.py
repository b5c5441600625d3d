"""The dive model of an image: per-layer change trees, per-directory sizes and efficiency.

Pure data (no HTML, no IPython): the notebook views, the widget, the command line and the
tests render or read the same objects. Built from plain inputs — the image's layers as
:class:`~.history.LayerRef` and an :data:`~.entries.EntryReader` — never from an ``Image``.

Marking, as dive does it: a path a layer writes is *added* when no lower layer had it and
*modified* when one did; a whiteout (``.wh.name``) or an opaque directory marks the lower
paths *removed* (:mod:`.changes`, over the one whiteout merge of :mod:`.merge`). Efficiency,
also dive's: for every path, ``cumulative`` is the sum of its sizes over the layers that touch
it (a whiteout counts as size 0 for a file and as the removed subtree for a directory) and
``min`` its smallest size; ``score = Σmin / Σcumulative``. **Reclaimable** bytes are
``Σ(cumulative − min)`` over paths touched more than once: the copies a later layer overwrote
or deleted. dive's "wasted space" sums ``cumulative`` instead, which also counts the copy that
is kept (wagoodman/dive#684); we do not.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

from .changes import LayerTree, layer_changes
from .efficiency import Inefficiency, Tally
from .entries import EntryReader, LayerEntry
from .history import LayerRef
from .merge import MergedFS


@dataclass(slots=True)
class ImageTree:
    """Every layer's changes (bottom first) and the efficiency of the whole stack."""

    layers: list[LayerTree] = field(default_factory=list)
    size: int = 0  # merged filesystem's bytes
    cumulative: int = 0
    minimum: int = 0
    inefficiencies: tuple[Inefficiency, ...] = ()

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


def build_tree(stack: Sequence[tuple[LayerRef, Sequence[LayerEntry]]]) -> ImageTree:
    """The model of ``stack``: each layer (bottom first) with its entries."""
    fs = MergedFS()
    tally = Tally()
    tree = ImageTree()
    for index, (ref, entries) in enumerate(stack):
        tree.layers.append(layer_changes(fs, index, ref, entries, tally))
    result = tally.result()
    tree.cumulative, tree.minimum = result.cumulative, result.minimum
    tree.inefficiencies = result.inefficiencies
    tree.size = sum(e.size for e in fs.entries.values())
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

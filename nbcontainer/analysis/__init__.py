"""What an image contains, UI-free: layer entries, the merged filesystem, per-layer changes,
diffs and efficiency (dive's model; dive's ``filetree`` package is the precedent).

Everything here is plain data built from plain inputs — the image's layers as
:class:`LayerRef` and an :data:`EntryReader` (:func:`store_reader` reads a store's blobs) —
so the notebook views, the widget, the command line and tests render or check one truth.

- :mod:`.entries`: a layer's tar entries as :class:`LayerEntry` records; one cache of entry
  lists (by blob digest).
- :mod:`.merge`: the one whiteout merge (:class:`MergedFS`); :func:`merge` gives an image's
  merged filesystem.
- :mod:`.changes`: what each layer adds, modifies and removes, as a tree (:class:`LayerTree`);
  :func:`filter_tree`.
- :mod:`.efficiency`: dive's efficiency score and the paths that waste space.
- :mod:`.tree`: the whole model of an image (:class:`ImageTree`) and one cache of trees.
- :mod:`.diff`: two merged filesystems compared (:class:`ImageDiff`).

What is counted where: ``LayerEntry`` lists are the raw tar (directories and whiteouts
included); a :class:`LayerTree`'s ``entries``/``added``/``modified`` count the non-directory
entries the layer writes and ``removed`` the paths its whiteouts hide; an :class:`ImageDiff`
holds entries of every kind. All of them come from the same records through the same merge,
so one definition of "a file" can serve them all.

May import ``oci``, ``layers``, ``store`` and the level-0 modules; never an upper layer.
"""

from .changes import (
    ADDED,
    CHANGES,
    MODIFIED,
    REMOVED,
    UNCHANGED,
    LayerTree,
    Node,
    filter_tree,
    layer_changes,
)
from .diff import ImageDiff, change_key, diff_files
from .efficiency import Efficiency, Inefficiency, Tally
from .entries import (
    ENTRIES,
    EntryCache,
    EntryReader,
    LayerEntry,
    layer_entries,
    read_entries,
    store_reader,
)
from .history import LayerRef, clean_command, layer_commands
from .merge import Hidden, MergedFS, Whiteout, merge, split_whiteouts
from .tree import TREES, ImageTree, TreeCache, build_tree, image_tree

__all__ = [
    "ADDED", "CHANGES", "ENTRIES", "MODIFIED", "REMOVED", "TREES", "UNCHANGED", "Efficiency",
    "EntryCache", "EntryReader", "Hidden", "ImageDiff", "ImageTree", "Inefficiency",
    "LayerEntry", "LayerRef", "LayerTree", "MergedFS", "Node", "Tally", "TreeCache",
    "Whiteout", "build_tree", "change_key", "clean_command", "diff_files", "filter_tree",
    "image_tree", "layer_changes", "layer_commands", "layer_entries", "merge", "read_entries",
    "split_whiteouts", "store_reader",
]

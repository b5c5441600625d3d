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
- :mod:`.junk`: the junk rules, each a small record (:class:`JunkRule`).
- :mod:`.insight`: waste per layer by rule, our efficiency score, directory sizes
  (:class:`Insight`).
- :mod:`.tree`: the whole model of an image (:class:`ImageTree`) and one cache of trees.
- :mod:`.view`: the image as it stands at a layer, as a tree (the explorer's merged view).
- :mod:`.check`: dive's CI rules and the junk rules as pass/fail results.
- :mod:`.diff`: two merged filesystems compared (:class:`ImageDiff`).

What is counted where: ``LayerEntry`` lists are the raw tar (directories and whiteouts
included). Everywhere else a *file* is a non-directory entry (regular file, link, device)
and directories are counted apart: a :class:`LayerTree`'s ``files``/``added``/``modified``
count the files the layer writes, ``dirs`` its directories and ``removed`` the paths its
whiteouts hide; :meth:`ImageDiff.counts` and :meth:`ImageTree.count` say (files,
directories). All of them come from the same records through the same merge.

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
    iter_nodes,
    layer_changes,
)
from .check import (
    FAIL,
    PASS,
    SKIP,
    CheckConfigError,
    CheckReport,
    CiRules,
    RuleResult,
    check,
    parse_bytes,
    parse_dive_ci,
    parse_ratio,
)
from .diff import ImageDiff, change_key, count_files, describe_change, diff_files, what_changed
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
from .history import (
    LayerRef,
    Source,
    clean_command,
    layer_commands,
    layer_history,
    own_from,
    parse_source,
)
from .insight import DirSize, Finding, Insight
from .junk import ALL_RULES, DUPLICATE, RULES, SHADOWED, JunkRule
from .merge import Hidden, MergedFS, Whiteout, merge, split_whiteouts
from .tree import TREES, ImageTree, TreeCache, build_tree, image_tree
from .view import SORTS, children, image_at, matches

__all__ = [
    "ADDED", "ALL_RULES", "CHANGES", "DUPLICATE", "ENTRIES", "FAIL", "MODIFIED", "PASS",
    "REMOVED", "RULES", "SHADOWED", "SKIP", "SORTS", "TREES", "UNCHANGED", "CheckConfigError",
    "CheckReport", "CiRules", "DirSize", "Efficiency", "EntryCache", "EntryReader", "Finding",
    "Hidden", "ImageDiff", "ImageTree", "Inefficiency", "Insight", "JunkRule", "LayerEntry",
    "LayerRef", "LayerTree", "MergedFS", "Node", "RuleResult", "Source", "Tally",
    "TreeCache", "Whiteout", "build_tree", "change_key", "check", "children", "clean_command",
    "count_files", "describe_change", "diff_files", "filter_tree", "image_at", "image_tree",
    "iter_nodes", "layer_changes", "layer_commands", "layer_entries", "layer_history",
    "matches", "merge", "own_from", "parse_bytes", "parse_dive_ci", "parse_ratio",
    "parse_source", "read_entries", "split_whiteouts", "store_reader", "what_changed",
]

"""Where the bytes are: junk and waste per layer, the efficiency score that counts them, and
the sizes of the image's directories (the pictures' data).

Every regular file a layer stores is one *copy*. A copy is waste when

- a junk rule matches its path (:mod:`.junk`: caches, package lists, archives, /tmp …),
- a later layer overwrote or deleted it (rule ``shadowed``): the earlier layer still carries
  the bytes, or
- a later layer stores the same content again (rule ``duplicate``): at another path, or at
  the same path rewritten unchanged (a chmod/chown/touch RUN copies whole files up).

Each waste copy is charged to the layer that holds it, so a finding points at the
instruction to change. The image's *own* layers are the ones its Dockerfile made (known from
the history's source lines, :func:`.history.parse_source`; else, as dive counts, every layer
but the first): the efficiency score is ``1 − waste / bytes`` over those. Waste in the base
image's layers is reported apart ("in the base image"): the Dockerfile cannot reclaim it —
deleting a base file in a later layer only hides it.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .entries import LayerEntry
from .junk import DUPLICATE, MATCHER, SHADOWED, JunkRule

EXAMPLES = 5  # paths kept per finding (the largest)
LARGEST = 20  # files kept in the largest-files list

# What shadowed a copy: (the layer index, the entry that replaced it or None if deleted),
# keyed by id() of the copy; filled while the layers are stacked (see .changes).
Shadows = dict[int, tuple[int, LayerEntry | None]]


@dataclass(frozen=True, slots=True)
class Finding:
    """Waste of one ``rule`` in one ``layer``: ``size`` bytes in ``files`` files, the
    largest as ``examples`` (path, size). ``by`` is the other layer involved: the one that
    overwrote or deleted the copies (a junk rule or ``shadowed``), or the one holding the
    first copy (``duplicate``). ``base``: the bytes are in the base image's layers."""

    rule: JunkRule
    layer: int
    size: int
    files: int
    examples: tuple[tuple[str, int], ...]
    by: int | None = None
    base: bool = False

    @property
    def flagged(self) -> bool:
        """A finding the Dockerfile can fix and big enough to matter (see ``floor``)."""
        return not self.base and self.size >= self.rule.floor and self.size > 0


@dataclass(frozen=True, slots=True)
class DirSize:
    """A directory of the image as it stands: bytes and files below it, and which layers
    those bytes came from, most first."""

    path: str
    size: int
    files: int
    layers: tuple[tuple[int, int], ...]

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def layer(self) -> int:
        """The layer that contributes most of the bytes (the treemap's colour)."""
        return self.layers[0][0] if self.layers else 0


@dataclass(slots=True)
class Insight:
    """The waste findings and size breakdown of one image (bottom layer first)."""

    own_from: int = 0
    own_size: int = 0
    waste: int = 0
    findings: tuple[Finding, ...] = ()
    largest_files: tuple[tuple[str, int, int], ...] = ()  # (path, size, layer)
    dirs: dict[str, DirSize] = field(default_factory=dict)
    subdirs: dict[str, tuple[str, ...]] = field(default_factory=dict)  # largest first

    @property
    def efficiency(self) -> float:
        """``1 − waste / bytes`` over the own layers (1.0 when they store nothing)."""
        return 1.0 if self.own_size == 0 else max(0.0, 1.0 - self.waste / self.own_size)

    @property
    def flagged(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.flagged)

    def by_rule(self, *, base: bool = False) -> list[tuple[JunkRule, int, list[Finding]]]:
        """(rule, bytes, findings) of the own layers (or of the base), most bytes first."""
        groups: dict[str, list[Finding]] = {}
        for f in self.findings:
            if f.base == base:
                groups.setdefault(f.rule.id, []).append(f)
        out = [(fs[0].rule, sum(f.size for f in fs), fs) for fs in groups.values()]
        out.sort(key=lambda t: (-t[1], t[0].id))
        return out

    def largest_dirs(self, n: int = 10, depth: int = 3) -> list[DirSize]:
        """The biggest directories at most ``depth`` levels deep (no parent of a listed
        directory that is listed only because of it)."""
        found = [d for p, d in self.dirs.items() if p and p.count("/") < depth]
        found.sort(key=lambda d: (-d.size, d.path))
        return found[:n]


class _Tally:
    """Waste copies grouped by (rule, layer, other layer)."""

    def __init__(self) -> None:
        self.groups: dict[tuple[str, int, int | None], list] = {}  # [rule, size, files, ex]

    def add(self, rule: JunkRule, layer: int, by: int | None, e: LayerEntry) -> None:
        key = (rule.id, layer, by)
        g = self.groups.get(key)
        if g is None:
            g = self.groups[key] = [rule, 0, 0, []]
        g[1] += e.size
        g[2] += 1
        ex = g[3]
        if len(ex) < EXAMPLES or e.size > ex[-1][1]:
            ex.append((e.path, e.size))
            ex.sort(key=lambda t: (-t[1], t[0]))
            del ex[EXAMPLES:]

    def findings(self, own_from: int) -> tuple[Finding, ...]:
        out = [Finding(rule, layer, size, files, tuple(ex), by, layer < own_from)
               for (_, layer, by), (rule, size, files, ex) in self.groups.items()]
        out.sort(key=lambda f: (f.base, -f.size, f.rule.id, f.layer))
        return tuple(out)


def _copy_waste(tally: _Tally, i: int, e: LayerEntry, live: bool, shadows: Shadows,
                first_copy: dict[bytes, int], rewrites: dict[int, int]) -> bool:
    """Charge one copy (layer ``i``) to its rule; whether it is waste."""
    rule = MATCHER.rule(e.path)
    shade = None if live else shadows.get(id(e))
    if rule is not None:
        tally.add(rule, i, shade[0] if shade else None, e)
        return True
    if not live:
        if shade is not None and shade[1] is not None and e.digest and \
                shade[1].digest == e.digest:
            rewrites[id(shade[1])] = i  # the same bytes again: the later copy is the waste
            return False
        tally.add(SHADOWED, i, shade[0] if shade else None, e)
        return True
    original = rewrites.get(id(e))
    if original is None and e.digest:
        seen = first_copy.setdefault(e.digest, i)
        original = seen if seen != i else None
    if original is not None:
        tally.add(DUPLICATE, i, original, e)
        return True
    return False


def build_insight(layers: Sequence[Sequence[LayerEntry]], final: Mapping[str, LayerEntry],
                  shadows: Shadows, own_from: int) -> Insight:
    """The insight of a layer stack (bottom first) whose merged filesystem is ``final`` and
    whose overwritten or deleted copies ``shadows`` records."""
    tally = _Tally()
    first_copy: dict[bytes, int] = {}  # content → the layer of its first live copy
    rewrites: dict[int, int] = {}  # id of a copy → the layer whose copy it rewrote unchanged
    own_size = waste = 0
    parent_bytes: dict[str, dict[int, list[int]]] = {}  # dir → layer → [bytes, files]
    largest: list[tuple[int, str, int]] = []
    get = final.get
    for i, entries in enumerate(layers):
        own = i >= own_from
        for e in entries:
            if e.kind != "f" or not e.size:
                continue
            live = get(e.path) is e
            wasted = _copy_waste(tally, i, e, live, shadows, first_copy, rewrites)
            if own:
                own_size += e.size
                waste += e.size if wasted else 0
            if live:
                _count_file(parent_bytes, largest, e, i)
    dirs, subdirs = _roll_up(parent_bytes, final)
    biggest = tuple((p, n, layer) for n, p, layer in sorted(largest, key=lambda t: (-t[0], t[1])))
    return Insight(own_from, own_size, waste, tally.findings(own_from), biggest, dirs, subdirs)


def _count_file(parent_bytes: dict[str, dict[int, list[int]]],
                largest: list[tuple[int, str, int]], e: LayerEntry, layer: int) -> None:
    parent = e.path.rpartition("/")[0]
    per = parent_bytes.get(parent)
    if per is None:
        per = parent_bytes[parent] = {}
    slot = per.get(layer)
    if slot is None:
        per[layer] = [e.size, 1]
    else:
        slot[0] += e.size
        slot[1] += 1
    if len(largest) < LARGEST:  # a min-heap of the biggest files so far
        heapq.heappush(largest, (e.size, e.path, layer))
    elif e.size > largest[0][0]:
        heapq.heapreplace(largest, (e.size, e.path, layer))


def _roll_up(parent_bytes: dict[str, dict[int, list[int]]], final: Mapping[str, LayerEntry]
             ) -> tuple[dict[str, DirSize], dict[str, tuple[str, ...]]]:
    """Directory totals bottom-up (deepest first), each directory's by-layer bytes summed
    into its parent; every directory of the image appears, empty ones with size 0."""
    totals: dict[str, dict[int, list[int]]] = {p: {k: list(v) for k, v in per.items()}
                                               for p, per in parent_bytes.items()}
    totals.setdefault("", {})
    for path, e in final.items():
        if e.kind == "d":
            totals.setdefault(path, {})
    for path in list(totals):  # implicit parents (no entry of their own) appear too
        while path:
            path = path.rpartition("/")[0]
            if path in totals:
                break
            totals[path] = {}
    kids: dict[str, list[str]] = {}
    for path in sorted(totals, key=lambda p: -p.count("/") if p else 1):
        if not path:
            continue
        parent = path.rpartition("/")[0]
        up = totals[parent]
        kids.setdefault(parent, []).append(path)
        for layer, (size, files) in totals[path].items():
            slot = up.get(layer)
            if slot is None:
                up[layer] = [size, files]
            else:
                slot[0] += size
                slot[1] += files
    dirs: dict[str, DirSize] = {}
    for path, per in totals.items():
        layers = tuple(sorted(((k, v[0]) for k, v in per.items()), key=lambda t: (-t[1], t[0])))
        dirs[path] = DirSize(path, sum(v[0] for v in per.values()),
                             sum(v[1] for v in per.values()), layers)
    subdirs = {p: tuple(sorted(ks, key=lambda k: (-dirs[k].size, k))) for p, ks in kids.items()}
    return dirs, subdirs

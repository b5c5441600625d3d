"""Image efficiency, as dive scores it, and the paths that waste space.

For every path, ``cumulative`` is the sum of its sizes over the layers that touch it (a
whiteout counts as size 0 for a file and as the removed subtree for a directory) and ``min``
its smallest size; the score is ``Σmin / Σcumulative``. **Reclaimable** bytes are
``Σ(cumulative − min)`` over the paths touched more than once: the copies that a later layer
overwrote or deleted. dive's "wasted space" sums ``cumulative`` instead, which also counts the
copy that is kept (wagoodman/dive#684); it is offered for comparison only.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Inefficiency:
    """A path that more than one layer wrote or deleted."""

    path: str
    count: int
    cumulative: int
    min: int

    @property
    def reclaimable(self) -> int:
        return self.cumulative - self.min


@dataclass(frozen=True, slots=True)
class Efficiency:
    cumulative: int
    minimum: int
    inefficiencies: tuple[Inefficiency, ...]  # most reclaimable first, then by path


class Tally:
    """Per path: [layers touching it, the sum of its sizes over them, its smallest size]."""

    def __init__(self) -> None:
        # a plain dict of lists: the tree builder updates it inline, once per entry
        self.stats: dict[str, list[int]] = {}

    def seen(self, path: str, size: int) -> None:
        s = self.stats.get(path)
        if s is None:
            self.stats[path] = [1, size, size]
        else:
            s[0] += 1
            s[1] += size
            if size < s[2]:
                s[2] = size

    def result(self) -> Efficiency:
        cumulative = minimum = 0
        found: list[Inefficiency] = []
        for path, (count, total, smallest) in self.stats.items():
            cumulative += total
            minimum += smallest
            if count > 1 and total > smallest:
                found.append(Inefficiency(path, count, total, smallest))
        found.sort(key=lambda i: (-i.reclaimable, i.path))
        return Efficiency(cumulative, minimum, tuple(found))

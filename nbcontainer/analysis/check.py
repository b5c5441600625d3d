"""``nbcontainer check``: dive's CI mode over our numbers, plus the junk rules.

dive's three rules and its ``.dive-ci`` file (``rules:`` with ``lowestEfficiency``,
``highestWastedBytes``, ``highestUserWastedPercent``; a value may be ``disabled``) are read
as dive reads them, but measured with the waste this package finds (junk counts), over the
image's own layers: the base image's bytes are not the Dockerfile's to fix (dive, too,
leaves the first layer out of its "user" percentage). With that, ``lowestEfficiency`` and
``highestUserWastedPercent`` test one ratio from two sides; both are kept so a ``.dive-ci``
reads unchanged. Each junk rule is a rule too: it fails when one of the image's own layers
holds more than the rule's noise floor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from ..errors import NbcontainerError
from ..humanize import size
from .junk import ALL_RULES, BY_ID
from .tree import ImageTree

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"


class CheckConfigError(NbcontainerError):
    """A ``.dive-ci`` file or a threshold that cannot be read."""


@dataclass(frozen=True)
class CiRules:
    """Thresholds (None: disabled) and the junk rules to leave out. Defaults are dive's."""

    lowest_efficiency: float | None = 0.9
    highest_wasted_bytes: int | None = None
    highest_user_wasted_percent: float | None = 0.1
    ignore: frozenset[str] = field(default_factory=frozenset)
    source: str = "defaults"  # where the thresholds came from (a file name, or "defaults")


@dataclass(frozen=True)
class RuleResult:
    """One line of the verdict: the rule, its status, the measured value and the limit, and
    for a failed junk rule where the bytes are and the fix."""

    rule: str
    status: str
    value: str
    limit: str
    detail: str = ""


@dataclass(frozen=True)
class CheckReport:
    image: str
    efficiency: float
    wasted: int
    user_wasted_percent: float
    dive_efficiency: float
    results: tuple[RuleResult, ...]
    rules: CiRules

    @property
    def passed(self) -> bool:
        return all(r.status != FAIL for r in self.results)

    @property
    def failed(self) -> tuple[RuleResult, ...]:
        return tuple(r for r in self.results if r.status == FAIL)


_UNITS = {"": 1, "b": 1, "kb": 1000, "mb": 1000 ** 2, "gb": 1000 ** 3, "tb": 1000 ** 4,
          "k": 1000, "m": 1000 ** 2, "g": 1000 ** 3, "kib": 1024, "mib": 1024 ** 2,
          "gib": 1024 ** 3, "tib": 1024 ** 4}
_BYTES = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*")


def parse_bytes(text: str) -> int:
    """``20MB``, ``1.5GiB``, ``1000`` (dive's humanized sizes: decimal kB/MB/GB, binary
    KiB/MiB/GiB)."""
    m = _BYTES.fullmatch(text)
    unit = m.group(2).lower() if m else ""
    if m is None or unit not in _UNITS:
        raise CheckConfigError(f"not a size: {text!r}", hint="write e.g. 20MB, 512kB or 1GiB")
    return int(float(m.group(1)) * _UNITS[unit])


def parse_ratio(text: str) -> float:
    """A ratio between 0 and 1 (``0.9``); ``90%`` is accepted too."""
    t = text.strip()
    try:
        value = float(t[:-1]) / 100 if t.endswith("%") else float(t)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise CheckConfigError(f"not a ratio between 0 and 1: {text!r}", hint="write e.g. 0.9")
    return value


def _disabled(value: str) -> bool:
    return value.strip().strip("'\"").lower() in ("disabled", "off", "false", "")


def parse_dive_ci(text: str, source: str = ".dive-ci") -> CiRules:
    """dive's ``.dive-ci`` (YAML: ``rules:`` and three keys beneath it). Unknown keys are
    left alone, as dive does; a value that is neither a number nor ``disabled`` is an
    error that names the line."""
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip() or line.strip() == "rules:":
            continue
        key, sep, value = line.strip().partition(":")
        if not sep:
            raise CheckConfigError(f"{source}:{number}: expected `key: value`, got {raw!r}")
        values[key.strip()] = value.strip().strip("'\"")
    rules = CiRules(source=source)
    try:
        if "lowestEfficiency" in values:
            v = values["lowestEfficiency"]
            rules = replace(rules, lowest_efficiency=None if _disabled(v) else parse_ratio(v))
        if "highestWastedBytes" in values:
            v = values["highestWastedBytes"]
            rules = replace(rules, highest_wasted_bytes=None if _disabled(v) else
                             parse_bytes(v))
        if "highestUserWastedPercent" in values:
            v = values["highestUserWastedPercent"]
            rules = replace(rules, highest_user_wasted_percent=None if _disabled(v) else
                             parse_ratio(v))
    except CheckConfigError as exc:
        raise CheckConfigError(f"{source}: {exc.message}", hint=exc.hint) from None
    return rules


def check(tree: ImageTree, rules: CiRules, image: str = "") -> CheckReport:
    """The verdict of ``rules`` on an image's tree."""
    ins = tree.insight
    wasted = ins.waste
    percent = 0.0 if ins.own_size == 0 else wasted / ins.own_size
    results = [_efficiency(tree.efficiency, rules), _wasted_bytes(wasted, rules),
               _wasted_percent(percent, rules)]
    results += _junk(tree, rules)
    return CheckReport(image, tree.efficiency, wasted, percent, tree.dive_efficiency,
                       tuple(results), rules)


def _efficiency(value: float, rules: CiRules) -> RuleResult:
    limit = rules.lowest_efficiency
    if limit is None:
        return RuleResult("lowestEfficiency", SKIP, f"{value:.1%}", "disabled")
    return RuleResult("lowestEfficiency", FAIL if value < limit else PASS, f"{value:.1%}",
                      f"≥ {limit:.1%}")


def _wasted_bytes(value: int, rules: CiRules) -> RuleResult:
    limit = rules.highest_wasted_bytes
    if limit is None:
        return RuleResult("highestWastedBytes", SKIP, size(value), "disabled")
    return RuleResult("highestWastedBytes", FAIL if value > limit else PASS, size(value),
                      f"≤ {size(limit)}")


def _wasted_percent(value: float, rules: CiRules) -> RuleResult:
    limit = rules.highest_user_wasted_percent
    if limit is None:
        return RuleResult("highestUserWastedPercent", SKIP, f"{value:.1%}", "disabled")
    return RuleResult("highestUserWastedPercent", FAIL if value >= limit and value > 0 else
                      PASS, f"{value:.1%}", f"< {limit:.1%}")


def _junk(tree: ImageTree, rules: CiRules) -> list[RuleResult]:
    unknown = sorted(rules.ignore - set(BY_ID))
    if unknown:
        raise CheckConfigError(f"unknown junk rule: {', '.join(unknown)}",
                               hint="the rules are " + ", ".join(r.id for r in ALL_RULES))
    by_rule = {rule.id: (total, found) for rule, total, found in tree.insight.by_rule()}
    out = []
    for rule in ALL_RULES:
        total, found = by_rule.get(rule.id, (0, []))
        limit = f"< {size(rule.floor)}" if rule.floor else "0B"
        if rule.id in rules.ignore:
            out.append(RuleResult(f"junk:{rule.id}", SKIP, size(total), "ignored"))
            continue
        flagged = [f for f in found if f.flagged]
        if not flagged:
            out.append(RuleResult(f"junk:{rule.id}", PASS, size(total), limit))
            continue
        worst = max(flagged, key=lambda f: f.size)
        lt = tree.layers[worst.layer]
        where = f"layer {worst.layer}" + (f" ({lt.source})" if lt.source else "")
        out.append(RuleResult(f"junk:{rule.id}", FAIL, size(total), limit,
                              f"{where}: {lt.command[:60]} — fix: {rule.fix}"))
    return out

"""dive's CI mode over our numbers: the ``.dive-ci`` file as dive reads it, thresholds, and
each junk rule as a rule of its own."""

from __future__ import annotations

import pytest

from nbcontainer.analysis import (
    FAIL,
    PASS,
    SKIP,
    CheckConfigError,
    CiRules,
    build_tree,
    check,
    parse_bytes,
    parse_dive_ci,
    parse_ratio,
)
from tests.support.synthetic import d, f, junk_stack, layer


def test_sizes_and_ratios_as_dive_writes_them() -> None:
    assert parse_bytes("20MB") == 20_000_000 and parse_bytes("1.5 kB") == 1500
    assert parse_bytes("2MiB") == 2 << 20 and parse_bytes("1000") == 1000
    assert parse_ratio("0.9") == 0.9 and parse_ratio("95%") == 0.95
    for bad in ("lots", "12 parsecs"):
        with pytest.raises(CheckConfigError, match="not a size"):
            parse_bytes(bad)
    with pytest.raises(CheckConfigError, match="between 0 and 1"):
        parse_ratio("1.5")


def test_dive_ci_file() -> None:
    rules = parse_dive_ci("""
rules:
  # If the efficiency is measured below X%, mark as failed.
  lowestEfficiency: 0.95
  highestWastedBytes: 20MB   # at most
  highestUserWastedPercent: disabled
  someFutureRule: 3
""", "ci/.dive-ci")
    assert rules == CiRules(0.95, 20_000_000, None, source="ci/.dive-ci")
    assert parse_dive_ci("") == CiRules(source=".dive-ci")  # dive's defaults
    with pytest.raises(CheckConfigError, match=r"\.dive-ci: not a ratio"):
        parse_dive_ci("rules:\n  lowestEfficiency: high\n")
    with pytest.raises(CheckConfigError, match=r"\.dive-ci:2: expected `key: value`"):
        parse_dive_ci("rules:\n  lowestEfficiency\n")


def test_a_junk_image_fails_and_says_where() -> None:
    report = check(build_tree(junk_stack()), CiRules(), "junk")
    status = {r.rule: r for r in report.results}
    assert not report.passed
    assert status["lowestEfficiency"].status == FAIL
    assert status["highestWastedBytes"].status == SKIP  # dive's default: disabled
    assert status["junk:apt-cache"].status == FAIL
    assert "layer 1 (Dockerfile:2)" in status["junk:apt-cache"].detail
    assert "apt-get clean" in status["junk:apt-cache"].detail
    assert status["junk:shadowed"].status == PASS  # 1 kB: below its noise floor
    assert {r.rule for r in report.failed} >= {"junk:apt-cache", "junk:apt-lists",
                                              "junk:pip-cache"}


def test_thresholds_and_ignored_rules() -> None:
    tree = build_tree(junk_stack())
    relaxed = CiRules(lowest_efficiency=None, highest_user_wasted_percent=None,
                      highest_wasted_bytes=10_000_000,
                      ignore=frozenset({"apt-cache", "apt-lists", "pip-cache", "duplicate"}))
    report = check(tree, relaxed)
    assert report.passed, report.failed
    assert {r.rule: r.status for r in report.results}["junk:apt-cache"] == SKIP
    with pytest.raises(CheckConfigError, match="unknown junk rule: nope"):
        check(tree, CiRules(ignore=frozenset({"nope"})))


def test_a_clean_image_passes() -> None:
    tree = build_tree([layer([d("var/lib/apt/lists"), f("var/lib/apt/lists/P", 50_000)]),
                       layer([f("usr/lib/libpy.so", 20_000), f("var/lib/apt/.wh.lists")],
                             line=2)])
    report = check(tree, CiRules())
    assert report.passed and report.efficiency == 1.0 and report.dive_efficiency < 0.6

"""Sizes as docker prints them (three significant digits) and plurals."""

from __future__ import annotations

import pytest

from nbcontainer.humanize import plural, size


@pytest.mark.parametrize(("n", "text"), [
    (0, "0B"), (999, "999B"), (1000, "1kB"), (1168, "1.17kB"), (146_400_000, "146MB"),
    (167_023_871, "167MB"), (45_460_183, "45.5MB"), (999_499, "999kB"),
    (999_500, "1MB"),  # rounds up to the next unit, never "1e+03kB"
    (1_200_000_000, "1.2GB"),
])
def test_sizes_have_three_significant_digits(n: int, text: str) -> None:
    assert size(n) == text


def test_plurals() -> None:
    assert plural(1, "layer") == "1 layer" and plural(2, "layer") == "2 layers"
    assert plural(0, "file") == "0 files" and plural(1234, "file") == "1,234 files"
    assert plural(3, "directory", "directories") == "3 directories"

"""Human-readable sizes and times, in Docker's style (decimal units, "2 hours ago")."""

from __future__ import annotations

import datetime as _dt

_UNITS = ("B", "kB", "MB", "GB", "TB", "PB")


def size(n: float) -> str:
    """``143MB``, ``1.17kB``, ``999B``: docker's sizes (``docker images``, ``docker
    history``: ``units.HumanSizeWithPrecision(n, 3)``), three significant digits, base 1000.
    Unlike Go's ``%.3g`` a value that rounds up to 1000 moves to the next unit (``1MB``,
    never ``1e+03kB``)."""
    i = 0
    n = float(n)
    while i < len(_UNITS) - 1 and (n >= 1000 or float(f"{n:.3g}") >= 1000):
        n /= 1000.0
        i += 1
    return f"{n:.3g}{_UNITS[i]}" if n < 1000 else f"{n:.0f}{_UNITS[i]}"


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """``1 layer``, ``3 layers``, ``0 files`` (``nouns``: an irregular plural)."""
    return f"{n:,} {noun if n == 1 else nouns or noun + 's'}"


def duration(seconds: float) -> str:
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    m = s // 60
    if m == 1:
        return "About a minute"
    if m < 60:
        return f"{m} minutes"
    h = round(s / 3600)
    if h == 1:
        return "About an hour"
    if h < 48:
        return f"{h} hours"
    if h < 24 * 7 * 2:
        return f"{h // 24} days"
    if h < 24 * 30 * 2:
        return f"{h // 24 // 7} weeks"
    if h < 24 * 365 * 2:
        return f"{h // 24 // 30} months"
    return f"{h // 24 // 365} years"


def ago(rfc3339: str | None, now: _dt.datetime | None = None) -> str:
    if not rfc3339:
        return "N/A"
    try:
        when = _dt.datetime.fromisoformat(rfc3339.replace("Z", "+00:00"))
    except ValueError:
        return "N/A"
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.UTC)
    now = now or _dt.datetime.now(_dt.UTC)
    return duration((now - when).total_seconds()) + " ago"

"""Time in images: ``SOURCE_DATE_EPOCH`` and the RFC 3339 stamps of ``created`` fields.

One reading of ``SOURCE_DATE_EPOCH`` for the whole toolkit (reproducible-builds.org): a
whole, non-negative number of seconds. Anything else is a clear error, never silently
ignored: a build that was asked to be reproducible and is not would be worse than a failure.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Mapping

from .errors import NbcontainerError

VARIABLE = "SOURCE_DATE_EPOCH"
MAX_EPOCH = 253402300799  # 9999-12-31T23:59:59Z


def parse_epoch(value: str | int | None, *, where: str = "the environment") -> int | None:
    """A ``SOURCE_DATE_EPOCH`` value: None when unset or empty, else whole seconds."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    else:
        text = str(value).strip()
    if not text:
        return None
    # ASCII digits only ("²" and "١" are digits to str.isdigit, not to int()), and a time
    # that RFC 3339 and the file systems can still write (up to the year 9999).
    if not (text.isascii() and text.isdigit()) or len(text) > 12 or int(text) > MAX_EPOCH:
        raise NbcontainerError(
            f"{VARIABLE} in {where} must be a whole number of seconds since 1970 "
            f"(at most {MAX_EPOCH}), got {str(value)[:40]!r}",
            hint=f"e.g. {VARIABLE}=$(git log -1 --format=%ct), or unset it")
    return int(text)


def source_date_epoch(build_args: Mapping[str, str | None] | None = None,
                      meta_args: Mapping[str, str | None] | None = None,
                      env: Mapping[str, str] | None = None) -> int | None:
    """The epoch a build or import uses: a ``--build-arg``, then the Dockerfile's global
    ``ARG SOURCE_DATE_EPOCH=…`` default, then the environment (BuildKit's order)."""
    for where, source in (("--build-arg", build_args), ("the Dockerfile's ARG", meta_args),
                          ("the environment", os.environ if env is None else env)):
        if source:
            value = parse_epoch(source.get(VARIABLE), where=where)
            if value is not None:
                return value
    return None


def rfc3339(epoch: int | None = None) -> str:
    """``created`` as Docker and BuildKit write it: whole seconds for a fixed epoch,
    microseconds for the current time."""
    if epoch is not None:
        return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def mtime_ns(epoch: int | None) -> int:
    """File times of new entries: the epoch when set (clamped builds), else now."""
    return epoch * 1_000_000_000 if epoch is not None else time.time_ns()

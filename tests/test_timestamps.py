"""``SOURCE_DATE_EPOCH`` has one reading everywhere: whole seconds, or a clear error."""

from __future__ import annotations

import pytest

from nbcontainer.errors import NbcontainerError
from nbcontainer.timestamps import mtime_ns, parse_epoch, rfc3339, source_date_epoch


def test_parse_epoch() -> None:
    assert parse_epoch("1234") == 1234
    assert parse_epoch(" 1234 ") == 1234
    assert parse_epoch(None) is None and parse_epoch("") is None
    for bad in ("soon", "-1", "1.5", "0x10"):
        with pytest.raises(NbcontainerError, match="whole number of seconds"):
            parse_epoch(bad)


def test_order_build_arg_then_dockerfile_then_environment() -> None:
    env = {"SOURCE_DATE_EPOCH": "3"}
    assert source_date_epoch({"SOURCE_DATE_EPOCH": "1"}, {"SOURCE_DATE_EPOCH": "2"}, env) == 1
    assert source_date_epoch({}, {"SOURCE_DATE_EPOCH": "2"}, env) == 2
    assert source_date_epoch({}, {"SOURCE_DATE_EPOCH": None}, env) == 3
    assert source_date_epoch(None, None, {}) is None
    with pytest.raises(NbcontainerError, match="--build-arg"):
        source_date_epoch({"SOURCE_DATE_EPOCH": "soon"}, None, env)


def test_stamps() -> None:
    assert rfc3339(0) == "1970-01-01T00:00:00Z"
    assert rfc3339(1700000000) == "2023-11-14T22:13:20Z"
    assert rfc3339().endswith("Z") and "." in rfc3339()
    assert mtime_ns(5) == 5_000_000_000

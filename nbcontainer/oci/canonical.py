"""Canonical JSON: the one way nbcontainer serializes manifests, indexes and configs.

Sorted keys, no insignificant whitespace, UTF-8: the same object always gives the same bytes,
so the same image always gets the same digest.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import ImageFormatError


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def loads(data: bytes | str, what: str = "JSON document") -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise ImageFormatError(f"{what} is not valid JSON: {e}") from None

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


class Document:
    """Mixin for the JSON documents that are stored as blobs (manifest, index, config).

    ``raw`` holds the exact bytes a document was read from, so pulled or imported content keeps
    its digest; a document made here serializes canonically.
    """

    __slots__ = ()
    raw: bytes | None

    def to_dict(self) -> dict[str, Any]:  # pragma: no cover - every document defines it
        raise NotImplementedError

    def to_bytes(self) -> bytes:
        return self.raw if self.raw is not None else dumps(self.to_dict())


def optional_fields(d: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """Add the fields whose value is set (not None, not empty) to ``d``, like Go's omitempty."""
    for key, val in fields.items():
        if val is not None and val != {} and val != "":
            d[key] = val
    return d


def loads(data: bytes | str, what: str = "JSON document") -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise ImageFormatError(f"{what} is not valid JSON: {e}") from None
    except RecursionError:  # "[[[[…": Python's decoder recurses once per level
        raise ImageFormatError(f"{what} is not valid JSON: nested too deeply") from None

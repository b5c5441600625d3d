"""Strict reading of JSON documents that come from outside (registries, archives, layouts).

Every check the image-spec's JSON schemas and containerd make, as small typed readers: a
field of the wrong type, a missing required field, a malformed digest or media type, a
negative size or an annotation that is not a string map fails with an
:class:`~nbcontainer.errors.ImageFormatError` naming the document and the field, e.g.
``config.history[3]: expected an object, got str``. Unknown fields are never an error (the
spec requires readers to ignore them); the models keep them so a document round-trips.

The readers are plain functions over ``dict``/``list`` values as :func:`json.loads` returns
them, cheap enough that a pull (one index, one manifest, one config) spends microseconds here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any

from ..errors import ImageFormatError, ReferenceFormatError
from .digest import Digest

# RFC 6838 as the image-spec's schema writes it (defs-descriptor.json "mediaType").
_MEDIA_TYPE_RE = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}")
# Sizes are Go int64s everywhere else (containerd, distribution).
MAX_SIZE = (1 << 63) - 1

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_JSON_NAMES = {dict: "object", list: "list", str: "str", int: "int", float: "float",
               bool: "bool", type(None): "null"}


def kind(value: object) -> str:
    """The JSON type of a value as an error message names it."""
    return _JSON_NAMES.get(type(value), type(value).__name__)


def fail(where: str, problem: str, *, hint: str | None = None) -> ImageFormatError:
    return ImageFormatError(f"{where}: {problem}", hint=hint)


def expected(where: str, what: str, value: object) -> ImageFormatError:
    return fail(where, f"expected {what}, got {kind(value)}")


def obj(value: object, where: str) -> Mapping[str, Any]:
    if isinstance(value, Mapping):
        return value
    raise expected(where, "an object", value)


def required(d: Mapping[str, Any], key: str, where: str) -> Any:
    try:
        return d[key]
    except KeyError:
        raise fail(where, f"missing required field {key!r}") from None


def string(d: Mapping[str, Any], key: str, where: str, *, need: bool = False) -> str | None:
    """``d[key]`` as a string; absent (or null, as Go reads it) gives None unless ``need``."""
    value = d.get(key)
    if type(value) is str:
        return value
    if value is None:
        if need:
            if key in d:
                raise expected(f"{where}.{key}", "a string", value)
            raise fail(where, f"missing required field {key!r}")
        return None
    raise expected(f"{where}.{key}", "a string", value)


def integer(d: Mapping[str, Any], key: str, where: str, *, default: int = 0,
            minimum: int = 0) -> int:
    value = d.get(key)
    if value is None:
        return default
    if type(value) is not int:
        raise expected(f"{where}.{key}", "an integer", value)
    if not minimum <= value <= MAX_SIZE:
        raise fail(f"{where}.{key}", f"{value} is out of range")
    return value


def boolean(d: Mapping[str, Any], key: str, where: str) -> bool | None:
    value = d.get(key)
    if value is None or type(value) is bool:
        return value
    raise expected(f"{where}.{key}", "a boolean", value)


def string_list(d: Mapping[str, Any], key: str, where: str) -> tuple[str, ...] | None:
    """A list of strings; absent or null gives None (Docker writes ``"Cmd": null``)."""
    value = d.get(key)
    if value is None:
        return None
    if type(value) is not list:
        raise expected(f"{where}.{key}", "a list of strings", value)
    for i, item in enumerate(value):
        if type(item) is not str:
            raise expected(f"{where}.{key}[{i}]", "a string", item)
    return tuple(value)


def string_map(d: Mapping[str, Any], key: str, where: str) -> Mapping[str, str]:
    """Annotations and labels: an object whose values are all strings."""
    value = d.get(key)
    if value is None:
        return _EMPTY
    if not isinstance(value, Mapping):
        raise expected(f"{where}.{key}", "an object of strings", value)
    for k, v in value.items():
        if type(v) is not str:
            raise expected(f"{where}.{key}[{k!r}]", "a string", v)
    return MappingProxyType(dict(value)) if value else _EMPTY


def key_set(d: Mapping[str, Any], key: str, where: str) -> tuple[str, ...] | None:
    """Docker's sets (``ExposedPorts``, ``Volumes``): an object whose values are objects."""
    value = d.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise expected(f"{where}.{key}", "an object", value)
    for k, v in value.items():
        if v is not None and not isinstance(v, Mapping):
            raise expected(f"{where}.{key}[{k!r}]", "an object", v)
    return tuple(value)


def array(d: Mapping[str, Any], key: str, where: str, *, need: bool = False) -> list[Any]:
    """A list; absent or null gives an empty one unless ``need``."""
    value = d.get(key)
    if type(value) is list:
        return value
    if value is None and not need:
        return []
    if key not in d:
        raise fail(where, f"missing required field {key!r}")
    raise expected(f"{where}.{key}", "a list", value)


def digest(value: object, where: str) -> Digest:
    if type(value) is not str:
        raise expected(where, "a digest string", value)
    try:
        return Digest.parse(value)
    except ReferenceFormatError as e:
        raise fail(where, e.message, hint=e.hint) from None


def media_type(d: Mapping[str, Any], key: str, where: str, *, need: bool = False) -> str | None:
    value = string(d, key, where, need=need)
    if value is not None and not _MEDIA_TYPE_RE.fullmatch(value):
        raise fail(f"{where}.{key}", f"{value[:80]!r} is not a media type (type/subtype)")
    return value


@contextmanager
def context(prefix: str, hint: str | None = None) -> Iterator[None]:
    """Say which document failed: ``<prefix>: config.history[3]: expected an object, …``."""
    try:
        yield
    except ImageFormatError as e:
        raise ImageFormatError(f"{prefix}: {e.message}", hint=e.hint or hint) from e


def unknown(d: Mapping[str, Any], known: frozenset[str]) -> Mapping[str, Any]:
    """The fields a model does not know, kept so the document round-trips."""
    if known.issuperset(d):  # the common case, decided in C
        return _EMPTY
    extra = {k: v for k, v in d.items() if k not in known}
    return MappingProxyType(extra) if extra else _EMPTY

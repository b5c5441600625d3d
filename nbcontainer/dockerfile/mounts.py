"""``RUN --mount`` values (BuildKit's ``instructions/commands_runmount.go``).

One ``--mount=`` value is a CSV row of ``key=value`` fields (``ro``/``rw``/``required`` may
stand alone). Each key has its own setter, each mount type its own checks and defaults, so
the order of BuildKit's checks — and so its first error message — is kept.
"""

from __future__ import annotations

import csv
import math
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nbcontainer.dockerfile.errors import InstructionError
from nbcontainer.dockerfile.flags import with_suggestion
from nbcontainer.dockerfile.lexer import saturating_int

__all__ = ["MOUNT_KEYS", "MOUNT_TYPES", "Mount", "parse_mount"]

Expander = Callable[[str], str]  # a word as written to the word expanded

MOUNT_TYPES = ("bind", "cache", "tmpfs", "secret", "ssh")
MOUNT_KEYS = (
    "type", "from", "source", "target", "readonly", "id", "sharing", "required", "size",
    "mode", "uid", "gid", "src", "dst", "destination", "ro", "rw", "readwrite", "env",
)  # fmt: skip
_SHARING_MODES = ("shared", "private", "locked")
_FILE_INFO_TYPES = ("cache", "secret", "ssh")  # BuildKit's fileInfoAllowed
_TARGET_REQUIRED_TYPES = ("bind", "cache", "tmpfs")
_RAM_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5}


@dataclass(frozen=True)
class Mount:
    """One ``RUN --mount``, with BuildKit's defaults applied where they don't need expansion."""

    type: str = "bind"
    target: str = ""
    source: str = ""
    from_: str = ""
    readonly: bool = True
    id: str = ""
    sharing: str = ""
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    size: int | None = None
    required: bool = False
    env: str | None = None
    raw: str = ""


def parse_mount(value: str, expand: Expander | None = None) -> Mount:
    """BuildKit's ``parseMount``: one ``--mount=`` value (CSV of ``key=value``) to a Mount.

    Without ``expand`` the values that may contain variables are kept raw and checked later
    (the plan expands them; the mount target is only required then).
    """
    spec = _MountSpec(value)
    for item in _csv_fields(value):
        key, sep, val = item.partition("=")
        key = key.lower()
        if not sep:
            _set_bare_key(spec, key, item)
            continue
        if expand is not None:
            val = expand(val)
        _FIELD_SETTERS.get(key, _unknown_key)(spec, key, val, item)
    _check_mount(spec, expanded=expand is not None)
    _TYPE_DEFAULTS.get(spec.type, _no_defaults)(spec.fields)
    return Mount(**spec.fields)


class _MountSpec:
    """The fields of one mount as they are read, before the checks and defaults."""

    def __init__(self, raw: str) -> None:
        self.raw = raw
        self.fields: dict[str, Any] = {"type": "bind", "readonly": True, "raw": raw}
        self.readonly_auto = True  # no ro/rw given: the type decides

    @property
    def type(self) -> str:
        return str(self.fields["type"])

    def get(self, key: str) -> Any:
        return self.fields.get(key)

    def wrong_type(self, key: str, item: str) -> InstructionError:
        return InstructionError(f"unexpected key '{key}' for mount type '{self.type}'", item)


def _csv_fields(value: str) -> list[str]:
    try:
        rows = list(csv.reader([value], strict=True))
    except csv.Error as exc:
        raise InstructionError(f"failed to parse csv mounts: {exc}", value) from None
    return rows[0] if rows else []


# --------------------------------------------------------------------------- fields


def _set_bare_key(spec: _MountSpec, key: str, item: str) -> None:
    """A field without ``=``: ``ro``/``readonly``, ``rw``/``readwrite`` or ``required``."""
    if key in ("readonly", "ro", "readwrite", "rw"):
        spec.fields["readonly"] = key in ("readonly", "ro")
        spec.readonly_auto = False
    elif key == "required":
        if spec.type not in ("secret", "ssh"):
            raise spec.wrong_type(key, item)
        spec.fields["required"] = True
    else:
        raise InstructionError(f"invalid field '{item}' must be a key=value pair", item)


def _set_type(spec: _MountSpec, key: str, val: str, item: str) -> None:
    if val.lower() not in MOUNT_TYPES:
        raise InstructionError(
            with_suggestion(f'unsupported mount type "{val}"', val, MOUNT_TYPES, case_sensitive=True),
            val,
        )
    spec.fields["type"] = val.lower()


def _setter(name: str) -> Callable[[_MountSpec, str, str, str], None]:
    """A setter that stores the value as written under ``name``."""

    def set_value(spec: _MountSpec, key: str, val: str, item: str) -> None:
        spec.fields[name] = val

    return set_value


def _set_readonly(spec: _MountSpec, key: str, val: str, item: str) -> None:
    b = _parse_bool(key, val, item)
    spec.fields["readonly"] = b if key in ("readonly", "ro") else not b
    spec.readonly_auto = False


def _set_required(spec: _MountSpec, key: str, val: str, item: str) -> None:
    if spec.type not in ("secret", "ssh"):
        raise spec.wrong_type(key, item)
    spec.fields["required"] = _parse_bool(key, val, item)


def _set_sharing(spec: _MountSpec, key: str, val: str, item: str) -> None:
    if val and spec.type != "cache":
        raise InstructionError(f"invalid cache sharing set for {spec.type} mount", item)
    spec.fields["sharing"] = val


def _set_owner(spec: _MountSpec, key: str, val: str, item: str) -> None:
    if not val.isdigit() or not val.isascii() or saturating_int(val) >= 2**32:
        raise InstructionError(f"invalid value for {key}: {val}", item)
    spec.fields[key] = saturating_int(val)


def _set_mode(spec: _MountSpec, key: str, val: str, item: str) -> None:
    if not re.fullmatch(r"[0-7]+", val) or int(val, 8) >= 2**32:
        raise InstructionError(f"invalid value for {key}: {val}", item)
    spec.fields["mode"] = int(val, 8)


def _set_size(spec: _MountSpec, key: str, val: str, item: str) -> None:
    if spec.type != "tmpfs":
        raise spec.wrong_type(key, item)
    spec.fields["size"] = _ram_in_bytes(val)


def _unknown_key(spec: _MountSpec, key: str, val: str, item: str) -> None:
    raise InstructionError(
        with_suggestion(f"unexpected key '{key}' in '{item}'", key, MOUNT_KEYS, case_sensitive=True),
        item,
    )


_FIELD_SETTERS: dict[str, Callable[[_MountSpec, str, str, str], None]] = {
    "type": _set_type,
    "from": _setter("from_"),
    "source": _setter("source"),
    "src": _setter("source"),
    "target": _setter("target"),
    "dst": _setter("target"),
    "destination": _setter("target"),
    "readonly": _set_readonly,
    "ro": _set_readonly,
    "readwrite": _set_readonly,
    "rw": _set_readonly,
    "required": _set_required,
    "sharing": _set_sharing,
    "id": _setter("id"),
    "uid": _set_owner,
    "gid": _set_owner,
    "mode": _set_mode,
    "size": _set_size,
    "env": _setter("env"),
}


def _parse_bool(key: str, val: str, item: str) -> bool:
    """Go's ``strconv.ParseBool``."""
    if val in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if val in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise InstructionError(f"invalid value for {key}: {val}", item)


def _ram_in_bytes(value: str) -> int:
    """docker/go-units ``RAMInBytes`` (binary units, optional ``b``/``ib`` suffix)."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kKmMgGtTpP]?)(?:[iI]?[bB])?", value)
    size = float(m.group(1)) * _RAM_UNITS[m.group(2).lower()] if m else math.inf
    if size >= 2**63:  # no match, or more than an int64 holds (an endless number is inf)
        raise InstructionError(f"invalid size: '{value}'", value)
    return int(size)


# --------------------------------------------------------------------------- checks


def _check_mount(spec: _MountSpec, *, expanded: bool) -> None:
    """BuildKit's checks after all fields are read, in BuildKit's order."""
    mtype, value = spec.type, spec.raw
    if mtype not in _FILE_INFO_TYPES:
        for k in ("mode", "uid", "gid"):
            if spec.get(k) is not None:
                raise InstructionError(f'{k} not allowed for "{mtype}" type mounts', value)
    if spec.readonly_auto:
        spec.fields["readonly"] = mtype not in ("cache", "tmpfs")
    if spec.get("sharing") and mtype != "cache":
        raise InstructionError(f"invalid cache sharing set for {mtype} mount", value)
    if mtype == "secret":
        _check_secret(spec)
    if spec.get("env") is not None and mtype != "secret":
        raise InstructionError(f"unexpected key 'env' for mount type '{mtype}'", value)
    sharing = spec.fields.get("sharing", "")
    if sharing and sharing not in _SHARING_MODES:
        raise InstructionError(f'unsupported sharing value "{sharing}"', sharing)
    if mtype == "cache" and not sharing:
        spec.fields["sharing"] = "shared"
    if mtype in _TARGET_REQUIRED_TYPES and not spec.get("target") and expanded:
        raise InstructionError("mount target is required", value)


def _check_secret(spec: _MountSpec) -> None:
    if spec.get("from_"):
        raise InstructionError("secret mount should not have a from", spec.raw)
    if not spec.get("source") and not spec.get("target") and not spec.get("id"):
        raise InstructionError("one of source, target required", spec.raw)
    if spec.get("source") and spec.get("id"):
        raise InstructionError("both source and id can't be set", spec.raw)


# --------------------------------------------------------------------------- defaults
# BuildKit applies these at dispatch time; here, so the builder sees complete mounts.


def _cache_defaults(m: dict[str, Any]) -> None:
    m.setdefault("id", "")
    if not m["id"]:
        m["id"] = m.get("target", "")
    if m.get("mode") is None:
        m["mode"] = 0o755


def _secret_defaults(m: dict[str, Any]) -> None:
    if not m.get("id"):
        m["id"] = m.get("source") or posixpath.basename(m.get("target", ""))
    if not m.get("target") and m.get("env") is None:
        m["target"] = "/run/secrets/" + m["id"]
    if m.get("mode") is None:
        m["mode"] = 0o400


def _ssh_defaults(m: dict[str, Any]) -> None:
    if not m.get("id"):
        m["id"] = "default"
    if m.get("mode") is None:
        m["mode"] = 0o600


def _no_defaults(m: dict[str, Any]) -> None:
    return None


_TYPE_DEFAULTS: dict[str, Callable[[dict[str, Any]], None]] = {
    "cache": _cache_defaults,
    "secret": _secret_defaults,
    "ssh": _ssh_defaults,
}

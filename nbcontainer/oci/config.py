"""Image configuration (OCI ``image.config.v1+json`` = Docker ``container.image.v1+json``).

Typed for the fields nbcontainer reads and writes; any other field is kept in ``extra`` so a
config from another tool round-trips unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any

from . import canonical, validate
from .digest import Digest
from .platform import Platform

_EMPTY: Mapping[str, Any] = MappingProxyType({})

# Docker's JSON key for each ContainerConfig field, in Docker's order.
_CC_KEYS = {
    "user": "User",
    "exposed_ports": "ExposedPorts",
    "env": "Env",
    "entrypoint": "Entrypoint",
    "cmd": "Cmd",
    "volumes": "Volumes",
    "working_dir": "WorkingDir",
    "labels": "Labels",
    "stop_signal": "StopSignal",
    "args_escaped": "ArgsEscaped",
    "healthcheck": "Healthcheck",
    "on_build": "OnBuild",
    "shell": "Shell",
}


@dataclass(frozen=True, slots=True)
class Healthcheck:
    test: tuple[str, ...]
    interval: int = 0  # nanoseconds, as Docker stores them
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0
    extra: Mapping[str, Any] = field(default_factory=lambda: _EMPTY, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {**self.extra, "Test": list(self.test)}
        for key, val in (
            ("Interval", self.interval), ("Timeout", self.timeout),
            ("StartPeriod", self.start_period), ("StartInterval", self.start_interval),
            ("Retries", self.retries),
        ):
            if val:
                d[key] = val
        return d

    @classmethod
    def from_dict(cls, d: object, where: str = "Healthcheck") -> Healthcheck:
        d = validate.obj(d, where)
        return cls(
            validate.string_list(d, "Test", where) or (),
            interval=validate.integer(d, "Interval", where),
            timeout=validate.integer(d, "Timeout", where),
            start_period=validate.integer(d, "StartPeriod", where),
            start_interval=validate.integer(d, "StartInterval", where),
            retries=validate.integer(d, "Retries", where),
            extra=validate.unknown(d, _HC_KNOWN),
        )


@dataclass(frozen=True, slots=True)
class ContainerConfig:
    """The ``config`` object: how a container of this image runs. None = field absent."""

    user: str | None = None
    exposed_ports: tuple[str, ...] | None = None
    env: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    volumes: tuple[str, ...] | None = None
    working_dir: str | None = None
    labels: Mapping[str, str] | None = None
    stop_signal: str | None = None
    args_escaped: bool | None = None
    healthcheck: Healthcheck | None = None
    on_build: tuple[str, ...] | None = None
    shell: tuple[str, ...] | None = None
    extra: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = dict(self.extra)
        for f in fields(self):
            if f.name == "extra":
                continue
            val = getattr(self, f.name)
            if val is None:
                continue
            key = _CC_KEYS[f.name]
            if f.name in ("exposed_ports", "volumes"):
                d[key] = {k: {} for k in val}
            elif f.name == "labels":
                d[key] = dict(val)
            elif f.name == "healthcheck":
                d[key] = val.to_dict()
            elif isinstance(val, tuple):
                d[key] = list(val)
            else:
                d[key] = val
        return d

    @classmethod
    def from_dict(cls, d: object, where: str = "config") -> ContainerConfig:
        if d is None:
            return cls()
        d = validate.obj(d, where)
        kw: dict[str, Any] = {}
        for name, key in _CC_KEYS.items():
            if d.get(key) is None:
                continue
            read = _CC_READERS.get(name)
            if read is not None:
                kw[name] = read(d, key, where)
            elif name == "healthcheck":
                kw[name] = Healthcheck.from_dict(d[key], f"{where}.{key}")
            elif name == "args_escaped":
                kw[name] = validate.boolean(d, key, where)
            else:
                kw[name] = validate.string(d, key, where)
        kw["extra"] = validate.unknown(d, _CC_KNOWN)
        return cls(**kw)

    def env_dict(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for item in self.env or ():
            k, _, v = item.partition("=")
            out[k] = v
        return out

    def with_env(self, key: str, value: str) -> ContainerConfig:
        """Set one variable, keeping the order of the others (Docker's behaviour)."""
        items = list(self.env or ())
        for i, item in enumerate(items):
            if item.partition("=")[0] == key:
                items[i] = f"{key}={value}"
                break
        else:
            items.append(f"{key}={value}")
        return replace(self, env=tuple(items))


@dataclass(frozen=True, slots=True)
class History:
    created: str | None = None
    created_by: str | None = None
    author: str | None = None
    comment: str | None = None
    empty_layer: bool = False
    extra: Mapping[str, Any] = field(default_factory=lambda: _EMPTY, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return canonical.optional_fields(
            dict(self.extra), created=self.created, created_by=self.created_by, author=self.author,
            comment=self.comment, empty_layer=self.empty_layer or None,
        )

    @classmethod
    def from_dict(cls, d: object, where: str = "history") -> History:
        if type(d) is dict and _HISTORY_KNOWN.issuperset(d):  # a config holds dozens: fast path
            get = d.get
            created, by, author, comment, empty = (
                get("created"), get("created_by"), get("author"), get("comment"),
                get("empty_layer"))
            if (by is None or type(by) is str) and (author is None or type(author) is str) and \
                    (comment is None or type(comment) is str) and \
                    (empty is None or type(empty) is bool) and \
                    (created is None or (type(created) is str and _RFC3339_RE.fullmatch(created))):
                return cls(created, by, author, comment, bool(empty))
        d = validate.obj(d, where)  # the careful way, which names what is wrong
        return cls(
            _timestamp(d, "created", where), validate.string(d, "created_by", where),
            validate.string(d, "author", where), validate.string(d, "comment", where),
            bool(validate.boolean(d, "empty_layer", where)),
            extra=validate.unknown(d, _HISTORY_KNOWN),
        )


@dataclass(frozen=True, slots=True)
class ImageConfig(canonical.Document):
    architecture: str
    os: str
    config: ContainerConfig = field(default_factory=ContainerConfig)
    diff_ids: tuple[Digest, ...] = ()
    history: tuple[History, ...] = ()
    created: str | None = None
    author: str | None = None
    variant: str | None = None
    os_version: str | None = None
    extra: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    raw: bytes | None = field(default=None, compare=False, repr=False)

    @property
    def platform(self) -> Platform:
        return Platform.normalized(self.os, self.architecture, self.variant or "", self.os_version or "")

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = dict(self.extra)
        d["architecture"] = self.architecture
        d["os"] = self.os
        if self.variant:
            d["variant"] = self.variant
        if self.os_version:
            d["os.version"] = self.os_version
        if self.created is not None:
            d["created"] = self.created
        if self.author is not None:
            d["author"] = self.author
        d["config"] = self.config.to_dict()
        d["rootfs"] = {"type": "layers", "diff_ids": [str(x) for x in self.diff_ids]}
        if self.history:
            d["history"] = [h.to_dict() for h in self.history]
        return d

    @property
    def digest(self) -> Digest:
        return Digest.of(self.to_bytes())

    def evolve(self, **changes: Any) -> ImageConfig:
        """A modified copy; the raw bytes are dropped so it serializes canonically."""
        return replace(self, raw=None, **changes)

    @classmethod
    def from_bytes(cls, data: bytes, where: str = "config") -> ImageConfig:
        d = canonical.loads(data, where)
        return cls.from_dict(d, raw=bytes(data), where=where)

    @classmethod
    def from_dict(cls, d: object, raw: bytes | None = None, where: str = "config"
                  ) -> ImageConfig:
        """The image-spec's config schema: ``architecture``, ``os`` and ``rootfs`` required,
        every known field of its type; unknown fields kept in ``extra``."""
        d = validate.obj(d, where)
        arch = validate.string(d, "architecture", where, need=True)
        os_ = validate.string(d, "os", where, need=True)
        validate.string_list(d, "os.features", where)
        assert arch is not None and os_ is not None
        return cls(
            architecture=arch,
            os=os_,
            config=ContainerConfig.from_dict(d.get("config"), f"{where}.config"),
            diff_ids=_diff_ids(d, where),
            history=tuple(History.from_dict(h, f"{where}.history[{i}]")
                          for i, h in enumerate(validate.array(d, "history", where))),
            created=_timestamp(d, "created", where),
            author=validate.string(d, "author", where),
            variant=validate.string(d, "variant", where),
            os_version=validate.string(d, "os.version", where),
            extra=validate.unknown(d, _CONFIG_KNOWN),
            raw=raw,
        )


_HC_KNOWN = frozenset({"Test", "Interval", "Timeout", "StartPeriod", "StartInterval", "Retries"})
_CC_KNOWN = frozenset(_CC_KEYS.values())
_CC_READERS: dict[str, Callable[[Mapping[str, Any], str, str], Any]] = {
    "exposed_ports": validate.key_set, "volumes": validate.key_set,
    "labels": validate.string_map,
    "env": validate.string_list, "entrypoint": validate.string_list, "cmd": validate.string_list,
    "on_build": validate.string_list, "shell": validate.string_list,
}
_HISTORY_KNOWN = frozenset({"created", "created_by", "author", "comment", "empty_layer"})
_CONFIG_KNOWN = frozenset({"architecture", "os", "variant", "os.version", "created", "author",
                           "config", "rootfs", "history"})
# RFC 3339 as Go's time.Time reads it (containerd and Docker fail on anything else).
_RFC3339_RE = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})")


def _timestamp(d: Mapping[str, Any], key: str, where: str) -> str | None:
    value = validate.string(d, key, where)
    if value is not None and not _RFC3339_RE.fullmatch(value):
        raise validate.fail(f"{where}.{key}", f"{value[:40]!r} is not an RFC 3339 time")
    return value


def _diff_ids(d: Mapping[str, Any], where: str) -> tuple[Digest, ...]:
    rootfs = validate.obj(validate.required(d, "rootfs", where), f"{where}.rootfs")
    where = f"{where}.rootfs"
    kind = validate.string(rootfs, "type", where, need=True)
    if kind != "layers":
        raise validate.fail(f"{where}.type", f"expected \"layers\", got {kind!r}")
    return tuple(validate.digest(x, f"{where}.diff_ids[{i}]")
                 for i, x in enumerate(validate.array(rootfs, "diff_ids", where, need=True)))

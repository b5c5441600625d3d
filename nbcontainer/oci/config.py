"""Image configuration (OCI ``image.config.v1+json`` = Docker ``container.image.v1+json``).

Typed for the fields nbcontainer reads and writes; any other field is kept in ``extra`` so a
config from another tool round-trips unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any

from ..errors import ImageFormatError
from . import canonical
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

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"Test": list(self.test)}
        for key, val in (
            ("Interval", self.interval), ("Timeout", self.timeout),
            ("StartPeriod", self.start_period), ("StartInterval", self.start_interval),
            ("Retries", self.retries),
        ):
            if val:
                d[key] = val
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Healthcheck:
        return cls(
            tuple(d.get("Test") or ()), d.get("Interval", 0), d.get("Timeout", 0),
            d.get("StartPeriod", 0), d.get("StartInterval", 0), d.get("Retries", 0),
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
    def from_dict(cls, d: Mapping[str, Any] | None) -> ContainerConfig:
        if not d:
            return cls()
        if not isinstance(d, Mapping):
            raise ImageFormatError("image config: 'config' must be an object")
        kw: dict[str, Any] = {}
        known = set(_CC_KEYS.values())
        for name, key in _CC_KEYS.items():
            val = d.get(key)
            if val is None:
                continue
            if name in ("exposed_ports", "volumes"):
                kw[name] = tuple(val)
            elif name == "labels":
                kw[name] = MappingProxyType(dict(val))
            elif name == "healthcheck":
                kw[name] = Healthcheck.from_dict(val)
            elif isinstance(val, list):
                kw[name] = tuple(val)
            else:
                kw[name] = val
        kw["extra"] = MappingProxyType({k: v for k, v in d.items() if k not in known})
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

    def to_dict(self) -> dict[str, Any]:
        return canonical.optional_fields(
            {}, created=self.created, created_by=self.created_by, author=self.author,
            comment=self.comment, empty_layer=self.empty_layer or None,
        )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> History:
        return cls(
            d.get("created"), d.get("created_by"), d.get("author"), d.get("comment"),
            bool(d.get("empty_layer", False)),
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
    def from_bytes(cls, data: bytes) -> ImageConfig:
        d = canonical.loads(data, "image config")
        return cls.from_dict(d, raw=bytes(data))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], raw: bytes | None = None) -> ImageConfig:
        if not isinstance(d, Mapping):
            raise ImageFormatError("image config: expected a JSON object")
        rootfs = d.get("rootfs") or {}
        if not isinstance(rootfs, Mapping):
            raise ImageFormatError("image config: 'rootfs' must be an object")
        try:
            diff_ids = tuple(Digest.parse(x) for x in rootfs.get("diff_ids") or ())
        except Exception as e:  # ReferenceFormatError → format error with context
            raise ImageFormatError(f"image config: bad rootfs.diff_ids entry: {e}") from e
        known = {"architecture", "os", "variant", "os.version", "created", "author", "config",
                 "rootfs", "history"}
        return cls(
            architecture=d.get("architecture", ""),
            os=d.get("os", ""),
            config=ContainerConfig.from_dict(d.get("config")),
            diff_ids=diff_ids,
            history=tuple(History.from_dict(h) for h in d.get("history") or ()),
            created=d.get("created"),
            author=d.get("author"),
            variant=d.get("variant"),
            os_version=d.get("os.version"),
            extra=MappingProxyType({k: v for k, v in d.items() if k not in known}),
            raw=raw,
        )

"""Platforms (os/arch/variant), normalized and matched the way containerd does."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from ..errors import ReferenceFormatError
from . import validate

_ARCH_ALIASES = {
    "x86_64": "amd64", "x86-64": "amd64", "amd64": "amd64",
    "aarch64": "arm64", "arm64": "arm64",
    "i386": "386", "i686": "386", "386": "386",
    "armhf": "arm", "armel": "arm", "armv7l": "arm", "armv6l": "arm", "arm": "arm",
    "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64", "mips64le": "mips64le",
    "loong64": "loong64",
}
# containerd's specifier syntax (plus dots, for variants such as v8.2)
_PART_RE = re.compile(r"[a-z0-9_.-]+")
_ARCH_DEFAULT_VARIANT = {"armhf": "v7", "armv7l": "v7", "armel": "v6", "armv6l": "v6"}


@dataclass(frozen=True, slots=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""
    os_version: str = ""
    os_features: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Platform:
        """``linux/arm64``, ``linux/arm/v7``, ``linux/amd64/v3``; ``arm64`` alone means linux."""
        parts = [p.strip().lower() for p in text.split("/")] if isinstance(text, str) else []
        if not parts or len(parts) > 3 or not all(_PART_RE.fullmatch(p) for p in parts):
            raise ReferenceFormatError(
                f"invalid platform {text!r}", hint="use os/arch[/variant], e.g. linux/amd64"
            )
        if len(parts) == 1:
            parts = ["linux", *parts]
        os_, arch = parts[0], parts[1]
        variant = parts[2] if len(parts) == 3 else ""
        return cls.normalized(os_, arch, variant)

    @classmethod
    def normalized(cls, os_: str, arch: str, variant: str = "", os_version: str = "",
                   os_features: tuple[str, ...] = ()) -> Platform:
        a = arch.lower()
        variant = variant or _ARCH_DEFAULT_VARIANT.get(a, "")
        a = _ARCH_ALIASES.get(a, a)
        if a == "arm64" and variant in ("8", "v8"):
            variant = ""  # containerd's normal form: arm64/v8 is plain arm64
        if a == "arm" and variant in ("", "7"):
            variant = "v7"
        elif variant and variant[0].isdigit():
            variant = "v" + variant
        return cls(os_.lower(), a, variant, os_version, os_features)

    @classmethod
    def host(cls) -> Platform:
        return cls.normalized("linux", os.uname().machine)

    @classmethod
    def from_dict(cls, d: object, where: str = "platform") -> Platform:
        """A descriptor's ``platform`` object, checked: ``os`` and ``architecture`` are
        required strings, ``variant`` and ``os.version`` strings, ``os.features`` a list."""
        d = validate.obj(d, where)
        os_ = validate.string(d, "os", where, need=True)
        arch = validate.string(d, "architecture", where, need=True)
        variant = validate.string(d, "variant", where) or ""
        os_version = validate.string(d, "os.version", where) or ""
        features = validate.string_list(d, "os.features", where) or ()
        assert os_ is not None and arch is not None
        return cls.normalized(os_, arch, variant, os_version, features)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            d["variant"] = self.variant
        if self.os_version:
            d["os.version"] = self.os_version
        if self.os_features:
            d["os.features"] = list(self.os_features)
        return d

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    def matches(self, candidate: Platform) -> bool:
        """Whether an image built for ``candidate`` runs on this (wanted) platform."""
        if (self.os, self.architecture) != (candidate.os, candidate.architecture):
            return False
        if not self.variant or not candidate.variant:
            return True
        if self.architecture == "arm":  # an armv7 machine runs v6 and v5 images too
            return _variant_rank(candidate.variant) <= _variant_rank(self.variant)
        return candidate.variant == self.variant


def _variant_rank(v: str) -> int:
    try:
        return int(v.lstrip("v"))
    except ValueError:
        return 0


def best_match(wanted: Platform, candidates: list[Platform]) -> int | None:
    """Index of the best candidate for ``wanted`` (exact variant first), or None."""
    best: int | None = None
    best_score: float = -1
    for i, c in enumerate(candidates):
        if not wanted.matches(c):
            continue
        score = 2.0 if c.variant == wanted.variant else (
            1 if not c.variant else _variant_rank(c.variant) / 100)
        if score > best_score:
            best, best_score = i, score
    return best

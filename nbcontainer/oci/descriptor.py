"""Content descriptors: the typed pointer (media type, digest, size) every OCI object uses."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ..errors import ImageFormatError, ReferenceFormatError
from . import mediatypes as mt
from .digest import Digest
from .platform import Platform

_EMPTY: Mapping[str, str] = MappingProxyType({})


def frozen_map(d: Mapping[str, str] | None) -> Mapping[str, str]:
    return MappingProxyType(dict(d)) if d else _EMPTY


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: Digest
    size: int
    annotations: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    platform: Platform | None = None
    urls: tuple[str, ...] = ()
    data: bytes | None = None
    artifact_type: str | None = None

    @classmethod
    def for_bytes(cls, media_type: str, data: bytes, **kw: Any) -> Descriptor:
        return cls(media_type, Digest.of(data), len(data), **kw)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "descriptor") -> Descriptor:
        if not isinstance(d, Mapping):
            raise ImageFormatError(f"{where}: expected an object, got {type(d).__name__}")
        try:
            media_type = d["mediaType"]
            digest = Digest.parse(d["digest"])
            size = d["size"]
        except KeyError as e:
            raise ImageFormatError(f"{where}: missing field {e.args[0]!r}") from None
        except ReferenceFormatError as e:
            raise ImageFormatError(f"{where}: {e.message}") from None
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ImageFormatError(f"{where}: size must be a non-negative integer, got {size!r}")
        if not isinstance(media_type, str):
            raise ImageFormatError(f"{where}: mediaType must be a string")
        data = None
        if d.get("data") is not None:
            try:
                data = base64.b64decode(d["data"], validate=True)
            except ValueError as e:  # the cause says why (padding, a bad character)
                raise ImageFormatError(f"{where}: data is not valid base64") from e
        plat = Platform.from_dict(d["platform"]) if d.get("platform") else None
        return cls(
            media_type, digest, size,
            annotations=frozen_map(d.get("annotations")),
            platform=plat,
            urls=tuple(d.get("urls") or ()),
            data=data,
            artifact_type=d.get("artifactType"),
        )

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"mediaType": self.media_type, "digest": str(self.digest), "size": self.size}
        if self.annotations:
            d["annotations"] = dict(self.annotations)
        if self.platform is not None:
            d["platform"] = self.platform.to_dict()
        if self.urls:
            d["urls"] = list(self.urls)
        if self.data is not None:
            d["data"] = base64.b64encode(self.data).decode()
        if self.artifact_type:
            d["artifactType"] = self.artifact_type
        return d

    @property
    def is_manifest(self) -> bool:
        return self.media_type in mt.MANIFEST_TYPES

    @property
    def is_index(self) -> bool:
        return self.media_type in mt.INDEX_TYPES

    @property
    def ref_name(self) -> str | None:
        return self.annotations.get("org.opencontainers.image.ref.name")


EMPTY_JSON = b"{}"
EMPTY_DESCRIPTOR = Descriptor(mt.OCI_EMPTY, Digest.of(EMPTY_JSON), 2, data=EMPTY_JSON)

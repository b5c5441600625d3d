"""Content descriptors: the typed pointer (media type, digest, size) every OCI object uses."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from . import mediatypes as mt
from . import validate
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
    # Fields this model does not know, written back as they came (not part of equality).
    extra: Mapping[str, Any] = field(default_factory=lambda: _EMPTY, compare=False, repr=False)

    @classmethod
    def for_bytes(cls, media_type: str, data: bytes, **kw: Any) -> Descriptor:
        return cls(media_type, Digest.of(data), len(data), **kw)

    @classmethod
    def from_dict(cls, d: object, where: str = "descriptor") -> Descriptor:
        """A descriptor as a manifest, index or layout holds it, checked field by field."""
        d = validate.obj(d, where)
        media_type = validate.media_type(d, "mediaType", where, need=True)
        digest = validate.digest(validate.required(d, "digest", where), f"{where}.digest")
        size = validate.required(d, "size", where)
        if type(size) is not int:
            raise validate.expected(f"{where}.size", "an integer", size)
        if not 0 <= size <= validate.MAX_SIZE:
            raise validate.fail(f"{where}.size", f"{size} is out of range")
        data = _inline_data(d, where, digest, size)
        plat = d.get("platform")
        assert media_type is not None
        return cls(
            media_type, digest, size,
            annotations=validate.string_map(d, "annotations", where),
            platform=None if plat is None else Platform.from_dict(plat, f"{where}.platform"),
            urls=validate.string_list(d, "urls", where) or (),
            data=data,
            artifact_type=validate.media_type(d, "artifactType", where),
            extra=validate.unknown(d, _KNOWN),
        )

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = dict(self.extra)
        d.update(mediaType=self.media_type, digest=str(self.digest), size=self.size)
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


_KNOWN = frozenset({"mediaType", "digest", "size", "urls", "annotations", "data", "platform",
                    "artifactType"})


def _inline_data(d: Mapping[str, Any], where: str, digest: Digest, size: int) -> bytes | None:
    """``data``: base64 of the content itself, which must match the digest and size."""
    text = d.get("data")
    if text is None:
        return None
    if type(text) is not str:
        raise validate.expected(f"{where}.data", "a base64 string", text)
    try:
        data = base64.b64decode(text, validate=True)
    except ValueError as e:  # the cause says why (padding, a bad character)
        raise validate.fail(f"{where}.data", "not valid base64") from e
    if len(data) != size or Digest.of(data, digest.algorithm) != digest:
        raise validate.fail(f"{where}.data", f"the inline data does not match the "
                            f"descriptor's digest and size ({size} bytes)")
    return data


EMPTY_JSON = b"{}"
EMPTY_DESCRIPTOR = Descriptor(mt.OCI_EMPTY, Digest.of(EMPTY_JSON), 2, data=EMPTY_JSON)

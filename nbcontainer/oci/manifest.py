"""Image manifests and indexes (OCI and Docker schema2), parsed strictly, written canonically.

A parsed object remembers the exact bytes it came from (``raw``): pulled and imported images
keep their manifest bytes unchanged so their digests are preserved.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ImageFormatError
from . import canonical
from . import mediatypes as mt
from .descriptor import _EMPTY, Descriptor, frozen_map
from .digest import Digest


class _Blob(canonical.Document):
    """What manifests and indexes share: bytes, digest and a descriptor pointing at them."""

    __slots__ = ()
    media_type: str

    @property
    def digest(self) -> Digest:
        return Digest.of(self.to_bytes())

    def descriptor(self, **kw: Any) -> Descriptor:
        data = self.to_bytes()
        return Descriptor(self.media_type, Digest.of(data), len(data), **kw)


def _common_tail(d: dict[str, Any], doc: Manifest | Index) -> dict[str, Any]:
    return canonical.optional_fields(
        d,
        annotations=dict(doc.annotations) or None,
        subject=doc.subject.to_dict() if doc.subject is not None else None,
        artifactType=doc.artifact_type,
    )


@dataclass(frozen=True, slots=True)
class Manifest(_Blob):
    config: Descriptor
    layers: tuple[Descriptor, ...]
    media_type: str = mt.OCI_MANIFEST
    annotations: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    subject: Descriptor | None = None
    artifact_type: str | None = None
    raw: bytes | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": self.media_type,  # always written (python-dxf crashes without it)
            "config": self.config.to_dict(),
            "layers": [layer.to_dict() for layer in self.layers],
        }
        return _common_tail(d, self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], raw: bytes | None = None) -> Manifest:
        _check_schema(d, "manifest")
        media_type = d.get("mediaType") or _guess_manifest_type(d)
        if media_type not in mt.MANIFEST_TYPES:
            raise ImageFormatError(f"manifest: unexpected mediaType {media_type!r}")
        if "config" not in d:
            raise ImageFormatError("manifest: missing field 'config'")
        layers = d.get("layers")
        layers = [] if layers is None else layers
        if not isinstance(layers, list):
            raise ImageFormatError("manifest: 'layers' must be a list")
        return cls(
            config=Descriptor.from_dict(d["config"], "manifest config"),
            layers=tuple(Descriptor.from_dict(x, f"manifest layer {i}") for i, x in enumerate(layers)),
            media_type=media_type,
            annotations=frozen_map(d.get("annotations")),
            subject=Descriptor.from_dict(d["subject"], "manifest subject") if d.get("subject") else None,
            artifact_type=d.get("artifactType"),
            raw=raw,
        )


@dataclass(frozen=True, slots=True)
class Index(_Blob):
    manifests: tuple[Descriptor, ...]
    media_type: str = mt.OCI_INDEX
    annotations: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    subject: Descriptor | None = None
    artifact_type: str | None = None
    raw: bytes | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": self.media_type,
            "manifests": [m.to_dict() for m in self.manifests],
        }
        return _common_tail(d, self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], raw: bytes | None = None) -> Index:
        _check_schema(d, "index")
        media_type = d.get("mediaType") or mt.OCI_INDEX
        if media_type not in mt.INDEX_TYPES:
            raise ImageFormatError(f"index: unexpected mediaType {media_type!r}")
        manifests = d.get("manifests")
        if not isinstance(manifests, list):
            raise ImageFormatError("index: 'manifests' must be a list")
        return cls(
            manifests=tuple(Descriptor.from_dict(x, f"index entry {i}") for i, x in enumerate(manifests)),
            media_type=media_type,
            annotations=frozen_map(d.get("annotations")),
            subject=Descriptor.from_dict(d["subject"], "index subject") if d.get("subject") else None,
            artifact_type=d.get("artifactType"),
            raw=raw,
        )


def _check_schema(d: Any, what: str) -> None:
    if not isinstance(d, Mapping):
        raise ImageFormatError(f"{what}: expected a JSON object")
    if d.get("schemaVersion") != 2:
        raise ImageFormatError(
            f"{what}: unsupported schemaVersion {d.get('schemaVersion')!r}",
            hint="only schema 2 (OCI and Docker v2) is supported; schema 1 is long deprecated",
        )


def _guess_manifest_type(d: Mapping[str, Any]) -> str:
    cfg = d.get("config")
    if isinstance(cfg, Mapping) and cfg.get("mediaType") == mt.DOCKER_CONFIG:
        return mt.DOCKER_MANIFEST
    return mt.OCI_MANIFEST


def parse(data: bytes, media_type: str | None = None) -> Manifest | Index:
    """Parse manifest or index bytes; ``media_type`` (e.g. from Content-Type) breaks ties."""
    d = canonical.loads(data, "manifest")
    if not isinstance(d, Mapping):
        raise ImageFormatError("manifest: expected a JSON object")
    kind = d.get("mediaType") or media_type
    if kind in mt.INDEX_TYPES or (kind is None and "manifests" in d):
        return Index.from_dict(d, raw=bytes(data))
    return Manifest.from_dict(d, raw=bytes(data))

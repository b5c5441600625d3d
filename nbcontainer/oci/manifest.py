"""Image manifests and indexes (OCI and Docker schema2), parsed strictly, written canonically.

A parsed object remembers the exact bytes it came from (``raw``): pulled and imported images
keep their manifest bytes unchanged so their digests are preserved.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import canonical, validate
from . import mediatypes as mt
from .descriptor import _EMPTY, Descriptor
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
    extra: Mapping[str, Any] = field(default_factory=lambda: _EMPTY, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            **self.extra,
            "schemaVersion": 2,
            "mediaType": self.media_type,  # always written (python-dxf crashes without it)
            "config": self.config.to_dict(),
            "layers": [layer.to_dict() for layer in self.layers],
        }
        return _common_tail(d, self)

    @classmethod
    def from_dict(cls, d: object, raw: bytes | None = None, where: str = "manifest") -> Manifest:
        d = _check_schema(d, where)
        media_type = validate.media_type(d, "mediaType", where) or _guess_manifest_type(d)
        if media_type not in mt.MANIFEST_TYPES:
            raise validate.fail(f"{where}.mediaType", f"{media_type!r} is not an image manifest "
                                "type", hint=_TYPES_HINT)
        if "manifests" in d:  # containerd: a manifest must not also look like an index
            raise validate.fail(where, "an image manifest must not have 'manifests'")
        config = Descriptor.from_dict(validate.required(d, "config", where), f"{where}.config")
        # "layers" is required by the schema; a missing or null list reads as empty, as Go
        # (containerd, distribution) reads it.
        layers = validate.array(d, "layers", where)
        return cls(
            config=config,
            layers=tuple(Descriptor.from_dict(x, f"{where}.layers[{i}]")
                         for i, x in enumerate(layers)),
            media_type=media_type,
            raw=raw,
            **_common_fields(d, where, _MANIFEST_KNOWN),
        )


@dataclass(frozen=True, slots=True)
class Index(_Blob):
    manifests: tuple[Descriptor, ...]
    media_type: str = mt.OCI_INDEX
    annotations: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    subject: Descriptor | None = None
    artifact_type: str | None = None
    raw: bytes | None = field(default=None, compare=False, repr=False)
    extra: Mapping[str, Any] = field(default_factory=lambda: _EMPTY, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            **self.extra,
            "schemaVersion": 2,
            "mediaType": self.media_type,
            "manifests": [m.to_dict() for m in self.manifests],
        }
        return _common_tail(d, self)

    @classmethod
    def from_dict(cls, d: object, raw: bytes | None = None, where: str = "index") -> Index:
        d = _check_schema(d, where)
        media_type = validate.media_type(d, "mediaType", where) or mt.OCI_INDEX
        if media_type not in mt.INDEX_TYPES:
            raise validate.fail(f"{where}.mediaType", f"{media_type!r} is not an image index "
                                "type", hint=_TYPES_HINT)
        if "config" in d or "layers" in d:  # containerd: an index must not look like a manifest
            raise validate.fail(where, "an image index must not have 'config' or 'layers'")
        manifests = validate.array(d, "manifests", where, need=True)
        return cls(
            manifests=tuple(Descriptor.from_dict(x, f"{where}.manifests[{i}]")
                            for i, x in enumerate(manifests)),
            media_type=media_type,
            raw=raw,
            **_common_fields(d, where, _INDEX_KNOWN),
        )


_TYPES_HINT = ("OCI (application/vnd.oci.image.*) and Docker schema 2 "
               "(application/vnd.docker.distribution.*) manifests and indexes are supported")
_COMMON = {"schemaVersion", "mediaType", "annotations", "subject", "artifactType"}
_MANIFEST_KNOWN = frozenset(_COMMON | {"config", "layers"})
_INDEX_KNOWN = frozenset(_COMMON | {"manifests"})


def _common_fields(d: Mapping[str, Any], where: str, known: frozenset[str]) -> dict[str, Any]:
    """annotations, subject, artifactType and the unknown fields, shared by both kinds."""
    subject = d.get("subject")
    return {
        "annotations": validate.string_map(d, "annotations", where),
        "subject": None if subject is None else Descriptor.from_dict(subject, f"{where}.subject"),
        "artifact_type": validate.media_type(d, "artifactType", where),
        "extra": validate.unknown(d, known),
    }


def _check_schema(d: object, where: str) -> Mapping[str, Any]:
    d = validate.obj(d, where)
    version = d.get("schemaVersion")
    if type(version) is not int or version != 2:
        if "schemaVersion" not in d:
            raise validate.fail(where, "missing required field 'schemaVersion'")
        raise validate.fail(
            f"{where}.schemaVersion", f"unsupported schemaVersion {version!r}",
            hint="only schema 2 (OCI and Docker v2) is supported; schema 1 is long deprecated",
        )
    return d


def _guess_manifest_type(d: Mapping[str, Any]) -> str:
    cfg = d.get("config")
    if isinstance(cfg, Mapping) and cfg.get("mediaType") == mt.DOCKER_CONFIG:
        return mt.DOCKER_MANIFEST
    return mt.OCI_MANIFEST


def parse(data: bytes, media_type: str | None = None, where: str | None = None
          ) -> Manifest | Index:
    """Parse manifest or index bytes; ``media_type`` (the descriptor's or the registry's
    Content-Type) decides when the document does not say what it is, and must agree with it
    when it does. ``where`` names the document in errors (default: manifest/index)."""
    d = canonical.loads(data, where or "manifest")
    d = validate.obj(d, where or "manifest")
    name = where or ("index" if "manifests" in d else "manifest")
    declared = validate.media_type(d, "mediaType", name)
    known = mt.INDEX_TYPES | mt.MANIFEST_TYPES
    if declared in known and media_type in known and \
            (declared in mt.INDEX_TYPES) != (media_type in mt.INDEX_TYPES):
        raise validate.fail(name, f"the document says it is {declared} but was served as "
                            f"{media_type}")
    kind = declared or media_type
    if kind in mt.INDEX_TYPES or (kind not in mt.MANIFEST_TYPES and "manifests" in d):
        return Index.from_dict(d, raw=bytes(data), where=where or "index")
    return Manifest.from_dict(d, raw=bytes(data), where=where or "manifest")

"""What a build step produces: the image so far (config, layers, history), serializable so the
cache can hand it back without re-running the step."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from ..oci import mediatypes as mt
from ..oci.config import ContainerConfig, History, ImageConfig
from ..oci.descriptor import Descriptor
from ..oci.digest import Digest

# BuildKit exports OCI manifests; Docker-typed base layers keep their bytes, change their type.
_TO_OCI = {mt.DOCKER_LAYER_GZIP: mt.OCI_LAYER_GZIP}


@dataclass(frozen=True)
class LayerRef:
    blob: Digest
    diff_id: Digest
    size: int
    media_type: str

    @property
    def descriptor(self) -> Descriptor:
        return Descriptor(_TO_OCI.get(self.media_type, self.media_type), self.blob, self.size)


@dataclass(frozen=True)
class ImageState:
    architecture: str
    os: str
    variant: str | None = None
    config: ContainerConfig = field(default_factory=ContainerConfig)
    layers: tuple[LayerRef, ...] = ()
    history: tuple[History, ...] = ()
    created: str | None = None
    author: str | None = None
    cmd_set: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def evolve(self, **kw: Any) -> ImageState:
        return replace(self, **kw)

    @property
    def layer_pairs(self) -> list[tuple[Digest, Digest]]:
        return [(lr.blob, lr.diff_id) for lr in self.layers]

    def image_config(self) -> ImageConfig:
        return ImageConfig(
            architecture=self.architecture, os=self.os, variant=self.variant,
            config=self.config, diff_ids=tuple(lr.diff_id for lr in self.layers),
            history=self.history, created=self.created, author=self.author,
        )

    def to_json(self) -> str:
        return json.dumps(self.to_value(), sort_keys=True)

    def to_value(self) -> dict[str, Any]:
        return {
            "architecture": self.architecture, "os": self.os, "variant": self.variant,
            "config": self.config.to_dict(),
            "layers": [[str(lr.blob), str(lr.diff_id), lr.size, lr.media_type]
                       for lr in self.layers],
            "history": [h.to_dict() for h in self.history],
            "created": self.created, "author": self.author, "cmd_set": self.cmd_set,
        }

    @classmethod
    def from_json(cls, text: str) -> ImageState:
        return cls.from_value(json.loads(text))

    @classmethod
    def from_value(cls, d: dict[str, Any]) -> ImageState:
        return cls(
            architecture=d["architecture"], os=d["os"], variant=d.get("variant"),
            config=ContainerConfig.from_dict(d.get("config")),
            layers=tuple(LayerRef(Digest.parse(b), Digest.parse(i), s, m)
                         for b, i, s, m in d.get("layers", [])),
            history=tuple(History.from_dict(h) for h in d.get("history", [])),
            created=d.get("created"), author=d.get("author"), cmd_set=d.get("cmd_set", False),
        )

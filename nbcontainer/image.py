"""``Image``: the object the Python API, the CLI and the notebook all hand around.

A thin, read-mostly view of one platform-specific image in a store; richer views (layer trees,
widgets) are added by the notebook layer without changing this class's data.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .oci.config import History, ImageConfig
from .oci.digest import Digest
from .oci.manifest import Manifest
from .oci.reference import Reference
from .store import Store, StoredImage

if TYPE_CHECKING:
    from collections.abc import Iterator


@dataclass(frozen=True)
class Layer:
    index: int
    digest: Digest
    diff_id: Digest | None
    size: int
    media_type: str
    created_by: str
    _store: Store

    def open(self):
        """The uncompressed tar stream of this layer."""
        from .layers import open_layer

        return open_layer(self._store.blobs.open(self.digest))

    def files(self) -> Iterator[tuple[str, int]]:
        """(path, size) of every entry, in tar order."""
        import tarfile

        with self.open() as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                yield member.name, member.size


def layer_commands(config: ImageConfig, n_layers: int) -> list[str]:
    """The ``created_by`` of each non-empty history entry, aligned with the layers."""
    cmds = [h.created_by or "" for h in config.history if not h.empty_layer]
    if len(cmds) != n_layers:  # history absent or inconsistent (hand-made images)
        cmds = (cmds + [""] * n_layers)[:n_layers]
    return cmds


class Image:
    def __init__(self, store: Store, stored: StoredImage, ref: Reference | None = None):
        self._store = store
        self._stored = stored
        self.ref = ref

    @classmethod
    def load(cls, store: Store, name: str, platform=None) -> Image:
        stored = store.image(name, platform)
        ref = None
        try:
            ref = Reference.parse(name)
            if str(ref) not in stored.tags:
                ref = None
        except Exception:
            ref = None
        if ref is None and stored.tags:
            ref = Reference.parse(stored.tags[0])
        return cls(store, stored, ref)

    # ------------------------------------------------------------------ data
    @property
    def store(self) -> Store:
        return self._store

    @property
    def digest(self) -> Digest:
        """The manifest digest (what a registry calls the image)."""
        return self._stored.digest

    @property
    def id(self) -> Digest:
        """Docker's image id: the config digest."""
        return self._stored.id

    @property
    def manifest(self) -> Manifest:
        return self._stored.manifest

    @property
    def config(self) -> ImageConfig:
        return self._stored.config

    @property
    def history(self) -> tuple[History, ...]:
        return self._stored.config.history

    @property
    def tags(self) -> tuple[str, ...]:
        return self._stored.tags

    @property
    def size(self) -> int:
        return self._stored.size

    @cached_property
    def layers(self) -> list[Layer]:
        m = self.manifest
        cmds = layer_commands(self.config, len(m.layers))
        diff_ids = list(self.config.diff_ids) + [None] * len(m.layers)
        return [
            Layer(i, d.digest, diff_ids[i], d.size, d.media_type, cmds[i], self._store)
            for i, d in enumerate(m.layers)
        ]

    @property
    def name(self) -> str:
        return self.ref.familiar if self.ref else self.id.short

    def __repr__(self) -> str:
        return f"<Image {self.name} {len(self.manifest.layers)} layers {self.digest}>"

    # ------------------------------------------------------------------ actions
    def save(self, path: str | Path, format: str = "oci-archive") -> Path:
        from . import api

        return api.save([str(self.ref) if self.ref else str(self.digest)], path, format=format,
                        store=self._store)

    def push(self, dest: str | None = None, **kw: Any) -> str:
        """Upload to ``dest`` (default: this image's own name); returns the manifest digest."""
        from . import api

        return api.push(str(self.ref) if self.ref else str(self.digest), dest,
                        store=self._store, **kw)

    def inspect(self) -> dict[str, Any]:
        from . import api

        return api.inspect_image(self)

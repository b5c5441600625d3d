"""``Image``: the object the Python API, the CLI and the notebook all hand around.

A thin, read-mostly view of one platform-specific image in a store; richer views (layer trees,
widgets) are added by the notebook layer without changing this class's data.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
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
    from collections.abc import Iterator, Sequence


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
        for e in self.entries():
            yield e.path, e.size

    def entries(self) -> list[LayerEntry]:
        """Every tar entry (whiteouts included, as ``.wh.`` names), read with the strict reader
        and cached: layer views and diffs read each layer once."""
        cached = _ENTRY_CACHE.get(self.digest)
        if cached is None:
            from .layers.tarreader import TarReader

            out: list[LayerEntry] = []
            with self.open() as stream:
                reader = TarReader(stream)
                add = out.append
                for e in reader.entries():
                    path = os.fsdecode(e.name).lstrip("/").removeprefix("./").rstrip("/")
                    if not path or path == ".":
                        continue
                    add(LayerEntry(path, _KINDS.get(e.type, "f"),
                                   e.size if e.type in _REGULAR else 0, e.mode & 0o7777, e.uid,
                                   e.gid, e.mtime_ns // 1_000_000_000,
                                   os.fsdecode(e.linkname) if e.linkname else ""))
                reader.drain()
            cached = _ENTRY_CACHE.put(self.digest, out)
        return cached


@dataclass(frozen=True, slots=True)
class LayerEntry:
    """One tar entry of a layer: ``kind`` is f(ile) d(ir) l(symlink) h(ardlink) c b p."""

    path: str
    kind: str
    size: int
    mode: int
    uid: int
    gid: int
    mtime: int
    link: str = ""

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def is_whiteout(self) -> bool:
        return self.name.startswith(".wh.")


_KINDS = {b"0": "f", b"\0": "f", b"7": "f", b"1": "h", b"2": "l", b"3": "c", b"4": "b",
          b"5": "d", b"6": "p"}
_REGULAR = (b"0", b"\0", b"7")


class _LRU:
    """Entry lists of the last few layers (a 30,000-file layer is a few MB of tuples)."""

    def __init__(self, size: int = 16) -> None:
        self.size = size
        self.data: OrderedDict[Digest, list[LayerEntry]] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: Digest) -> list[LayerEntry] | None:
        with self.lock:
            if key in self.data:
                self.data.move_to_end(key)
                return self.data[key]
        return None

    def put(self, key: Digest, value: list[LayerEntry]) -> list[LayerEntry]:
        with self.lock:
            self.data[key] = value
            while len(self.data) > self.size:
                self.data.popitem(last=False)
        return value


_ENTRY_CACHE = _LRU()


def layer_commands(config: ImageConfig, n_layers: int) -> list[str]:
    """The ``created_by`` of each non-empty history entry, aligned with the layers."""
    cmds = [h.created_by or "" for h in config.history if not h.empty_layer]
    if len(cmds) != n_layers:  # history absent or inconsistent (hand-made images)
        cmds = (cmds + [""] * n_layers)[:n_layers]
    return cmds


class _StoreActions:
    """``save`` and ``push`` by the object's own name (its tag, else its digest): the same
    for an image and for a multi-platform index (which moves with all its images)."""

    ref: Reference | None
    digest: Digest
    _store: Store

    def save(self, path: str | Path, format: str = "oci-archive") -> Path:
        from . import api

        return api.save([str(self.ref) if self.ref else str(self.digest)], path, format=format,
                        store=self._store)

    def push(self, dest: str | None = None, **kw: Any) -> str:
        """Upload to ``dest`` (default: the object's own name); returns the digest pushed."""
        from . import api

        return api.push(str(self.ref) if self.ref else str(self.digest), dest,
                        store=self._store, **kw)


class Image(_StoreActions):
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
    def inspect(self) -> dict[str, Any]:
        from . import api

        return api.inspect_image(self)

    def run(self, command: Sequence[str] | str | None = None, **kw: Any) -> int:
        """Run the image's entrypoint/cmd (or ``command``) in the sandbox, like
        ``docker run --rm``; returns the exit code. Keywords as :func:`nbcontainer.api.run`."""
        from . import api

        if isinstance(command, str):
            command = ["/bin/sh", "-c", command]
        return api.run(str(self.digest), command, store=self._store, **kw)

    def files(self) -> dict[str, LayerEntry]:
        """The merged filesystem: path → the entry that wins (whiteouts applied)."""
        merged: dict[str, LayerEntry] = {}
        for layer in self.layers:
            entries = layer.entries()
            for e in entries:  # a layer's whiteouts hide only what lies below it
                if not e.is_whiteout:
                    continue
                parent = e.path.rpartition("/")[0]
                if e.name == ".wh..wh..opq":
                    gone = [p for p in merged if p.startswith(parent + "/")] if parent else \
                        list(merged)
                else:
                    target = (parent + "/" if parent else "") + e.name[4:]
                    gone = [p for p in merged if p == target or p.startswith(target + "/")]
                for p in gone:
                    del merged[p]
            for e in entries:
                if e.is_whiteout:
                    continue
                old = merged.get(e.path)
                if old is not None and old.kind == "d" and e.kind != "d":
                    for p in [p for p in merged if p.startswith(e.path + "/")]:
                        del merged[p]
                merged[e.path] = e
        return merged

    def diff(self, other: Image) -> ImageDiff:
        """Files added, changed and removed going from ``self`` to ``other``. "Changed" is
        rsync's quick check (type, size, mode, owner, link target, mtime): layers carry no
        content hashes, and re-reading every file would cost seconds for a small signal."""
        a, b = self.files(), other.files()
        added = sorted(p for p in b if p not in a)
        removed = sorted(p for p in a if p not in b)
        changed = sorted(p for p in b if p in a and _key(a[p]) != _key(b[p]))
        return ImageDiff(self.name, other.name, tuple(b[p] for p in added),
                         tuple((a[p], b[p]) for p in changed), tuple(a[p] for p in removed))

    # ------------------------------------------------------------------ display
    def summary(self) -> str:
        """``my-python-image: 4 layers, 143MB, sha256:…`` (sizes are compressed, as stored)."""
        from . import humanize

        n = len(self.manifest.layers)
        name = self.name.removesuffix(":latest")
        return (f"{name}: {n} layer{'' if n == 1 else 's'}, {humanize.size(self.size)}, "
                f"{self.digest}")

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        from .notebook.views import image_bundle

        return image_bundle(self)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.summary())

    def manifest_view(self, *, html: bool = False) -> Any:
        """The manifest, config (and index) as JSON: a separate ``application/json`` output."""
        from .notebook.views import ManifestView

        return ManifestView.of(self, html=html)

    def layer_view(self) -> Any:
        """The layer tree (dive's view) as an object that displays itself."""
        from .notebook.views import LayersView

        return LayersView(self)

    def widget(self) -> Any:
        """A live ipywidgets explorer of the layers; its bundle also carries the static view."""
        from .notebook.widgets import LayerTreeWidget

        return LayerTreeWidget(self)


def _key(e: LayerEntry) -> tuple:
    if e.kind == "d":  # a directory's mtime moves whenever a child does: not a change of its own
        return (e.kind, e.mode, e.uid, e.gid)
    return (e.kind, e.size, e.mode, e.uid, e.gid, e.link, e.mtime)


@dataclass(frozen=True)
class ImageDiff:
    """What ``%image_diff A B`` shows: entries of B not in A, changed, and gone."""

    a: str
    b: str
    added: tuple[LayerEntry, ...]
    changed: tuple[tuple[LayerEntry, LayerEntry], ...]
    removed: tuple[LayerEntry, ...]

    def summary(self) -> str:
        return (f"{self.a} → {self.b}: {len(self.added)} added, {len(self.changed)} changed, "
                f"{len(self.removed)} removed")

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        from .notebook.views import diff_bundle

        return diff_bundle(self)


class ImageIndex(_StoreActions):
    """A multi-platform image: an OCI image index in the store, one :class:`Image` per
    platform (what ``build(platform="linux/amd64,linux/arm64")`` returns)."""

    def __init__(self, store: Store, digest: Digest, ref: Reference | None = None) -> None:
        from .oci.manifest import Index

        parsed = store.read_manifest(digest)
        if not isinstance(parsed, Index):
            raise TypeError(f"{digest} is not an image index")
        self._store = store
        self.digest = digest
        self.index: Index = parsed
        self.ref = ref

    @classmethod
    def load(cls, store: Store, name: str) -> ImageIndex:
        digest = store.resolve_digest(name)
        tags = store.refs.read().tags_of(str(digest))
        ref = None
        try:
            ref = Reference.parse(name)
            if str(ref) not in tags:
                ref = None
        except Exception:
            ref = None
        if ref is None and tags:
            ref = Reference.parse(tags[0])
        return cls(store, digest, ref)

    @property
    def store(self) -> Store:
        return self._store

    @property
    def id(self) -> Digest:
        """What buildx reports as the id of a multi-platform build: the index digest."""
        return self.digest

    @property
    def tags(self) -> tuple[str, ...]:
        return tuple(self._store.refs.read().tags_of(str(self.digest)))

    @property
    def platforms(self) -> list[str]:
        return [str(m.platform) for m in self.index.manifests if m.platform is not None]

    @cached_property
    def images(self) -> list[Image]:
        """The per-platform images, in the index's order."""
        return [Image(self._store, self._store.image_by_digest(m.digest), self.ref)
                for m in self.index.manifests if m.is_manifest]

    def image(self, platform: str) -> Image:
        """The image for ``platform`` (``linux/arm64``)."""
        from .oci.platform import Platform

        return Image(self._store, self._store.image_by_digest(self.digest,
                                                              Platform.parse(platform)), self.ref)

    @property
    def name(self) -> str:
        return self.ref.familiar if self.ref else self.digest.short

    def __repr__(self) -> str:
        return f"<ImageIndex {self.name} [{', '.join(self.platforms)}] {self.digest}>"

    def platform_images(self) -> list[tuple[str, Image]]:
        """(platform, image) per manifest of the index, in its order."""
        return [(str(m.platform), img) for m, img in
                zip([m for m in self.index.manifests if m.is_manifest], self.images,
                    strict=True)]

    def summary(self) -> str:
        lines = [f"{self.name}  index {self.digest}"]
        for plat, img in self.platform_images():
            lines.append(f"  {plat:<16} {img.digest}  {len(img.manifest.layers)} layers")
        return "\n".join(lines)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.summary())

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        from .notebook.views import index_bundle

        return index_bundle(self)

    def inspect(self) -> dict[str, Any]:
        return {
            "Digest": str(self.digest),
            "MediaType": self.index.media_type,
            "RepoTags": [Reference.parse(t).familiar for t in self.tags],
            "Manifests": [{"Digest": str(img.digest), "Platform": plat,
                           "Id": str(img.id), "Size": img.size}
                          for plat, img in self.platform_images()],
            "Index": self.index.to_dict(),
        }

"""``Image``: the object the Python API, the CLI and the notebook all hand around.

A thin, read-mostly view of one platform-specific image in a store. What the image contains
comes from :mod:`nbcontainer.analysis` (plain data); how it looks in a notebook is the
notebook skin's business: it registers IPython formatters for these classes and supplies
:meth:`Image.layer_view`, :meth:`Image.widget` and :meth:`Image.manifest_view` through
:func:`provide_views`, so this module never imports a skin (nor ``api``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import humanize
from .errors import ImageFormatError, NbcontainerError
from .oci.digest import Digest
from .oci.manifest import Manifest
from .oci.platform import Platform
from .oci.reference import Reference
from .progress import ProgressFn, null_progress
from .store import Store, StoredImage

if TYPE_CHECKING:
    from .analysis import ImageDiff, ImageTree, LayerEntry, LayerRef, layer_commands
    from .builder.hostca import ForRun
    from .layers import LayerStream
    from .oci.config import History, ImageConfig
    from .sandbox.hardening import Hardening
    from .sandbox.spec import Control, Mount

# Re-exported: they were defined here before the analysis package existed.
__all__ = ["Image", "ImageDiff", "ImageIndex", "Layer", "LayerEntry", "layer_commands",
           "provide_views"]
_FROM_ANALYSIS = ("ImageDiff", "LayerEntry", "layer_commands")


def __getattr__(name: str) -> Any:
    """The re-exports, loaded when first used: the analysis (and the layer codec under it)
    is not needed to list, tag, push or run images (CLI start-up time)."""
    if name in _FROM_ANALYSIS:
        from . import analysis

        return getattr(analysis, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class Layer:
    index: int
    digest: Digest
    diff_id: Digest | None
    size: int
    media_type: str
    created_by: str
    _store: Store
    comment: str = ""  # its history entry's (the Dockerfile lines, when built here)

    @property
    def ref(self) -> LayerRef:
        """This layer as the analysis takes it."""
        from .analysis import LayerRef

        return LayerRef(self.digest, self.diff_id, self.size, self.created_by, self.comment)

    def open(self) -> LayerStream:
        from .layers import LayerStream

        """The uncompressed tar stream of this layer (closing it closes the blob file)."""
        return LayerStream(self._store.blobs.open(self.digest), close_raw=True)

    def files(self) -> Iterator[tuple[str, int]]:
        """(path, size) of every tar entry (directories and whiteouts included), in tar order."""
        for e in self.entries():
            yield e.path, e.size

    def entries(self) -> list[LayerEntry]:
        """Every tar entry (directories and whiteouts included, as ``.wh.`` names), read with
        the strict reader and cached: layer views and diffs read each layer once. These are
        the raw records; ``Image.tree().layers[i].files`` counts what the views call files
        (non-directory entries the layer writes)."""
        from .analysis import layer_entries

        return layer_entries(self._store, self.digest)


class _StoreActions:
    """``save`` and ``push`` by the object's own name (its tag, else its digest): the same
    for an image and for a multi-platform index (which moves with all its images)."""

    ref: Reference | None
    _store: Store

    @property
    def digest(self) -> Digest:
        raise NotImplementedError

    def _own_name(self) -> str:
        return str(self.ref) if self.ref else str(self.digest)

    def save(self, path: str | Path, format: str = "oci-archive") -> Path:
        """``docker save`` of this object (``docker-archive``, ``oci-archive``, ``oci-dir``)."""
        from .store.save import save
        from .timestamps import source_date_epoch

        return save(self._store, [self._own_name()], path, format=format,
                    mtime=source_date_epoch() or 0)

    def push(self, dest: str | None = None, *, progress: ProgressFn | None = None,
             digestfile: str | Path | None = None, tls_verify: bool | None = None) -> str:
        """Upload to ``dest`` (default: the object's own name); returns the digest pushed."""
        from . import registry

        return str(registry.push(self._store, self._own_name(), dest,
                                 progress=progress or null_progress, digestfile=digestfile,
                                 tls_verify=tls_verify))


class Image(_StoreActions):
    def __init__(self, store: Store, stored: StoredImage, ref: Reference | None = None):
        self._store = store
        self._stored = stored
        self.ref = ref

    @classmethod
    def load(cls, store: Store, name: str, platform: Platform | None = None) -> Image:
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
    def index_digest(self) -> Digest | None:
        """The image index this image was reached through, if any."""
        return self._stored.index_digest

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
        from .analysis import layer_history

        m = self.manifest
        history = layer_history(self.config, len(m.layers))
        diff_ids = list(self.config.diff_ids) + [None] * len(m.layers)
        return [
            Layer(i, d.digest, diff_ids[i], d.size, d.media_type, history[i][0], self._store,
                  history[i][1])
            for i, d in enumerate(m.layers)
        ]

    @property
    def name(self) -> str:
        return self.ref.familiar if self.ref else self.id.short

    def __repr__(self) -> str:
        return f"<Image {self.name} {humanize.plural(len(self.manifest.layers), 'layer')} " \
            f"{self.digest}>"

    # ------------------------------------------------------------------ contents
    def tree(self) -> ImageTree:
        """dive's model of the image: each layer's changes, sizes and the efficiency (read
        once per layer stack, cached)."""
        from .analysis import image_tree, store_reader

        return image_tree([layer.ref for layer in self.layers], store_reader(self._store))

    def files(self) -> dict[str, LayerEntry]:
        """The merged filesystem: path → the entry that wins (whiteouts applied); the same
        mapping the tree holds (``tree().files``)."""
        return dict(self.tree().files)

    def diff(self, other: Image) -> ImageDiff:
        """Files added, changed and removed going from ``self`` to ``other`` (see
        :func:`nbcontainer.analysis.change_key` for what "changed" means, and
        :func:`nbcontainer.analysis.what_changed` for how)."""
        from .analysis import diff_files

        return diff_files(self.files(), other.files(), self.name, other.name)

    # ------------------------------------------------------------------ actions
    def inspect(self) -> dict[str, Any]:
        """``docker inspect``'s shape, plus the manifest (what registries see) and, when a
        build provenance statement is attached, a ``Provenance`` summary."""
        cfg = self.config
        refs = [Reference.parse(t) for t in self.tags]
        return {
            "Id": str(self.id),
            "Digest": str(self.digest),
            "RepoTags": [r.familiar for r in refs],
            "RepoDigests": sorted({f"{r.familiar_repository}@{self.digest}" for r in refs}),
            "Parent": "",
            "Comment": next((h.comment for h in cfg.history if h.comment), "") or "",
            "Created": cfg.created or "",
            "Author": cfg.author or "",
            "Config": cfg.config.to_dict(),
            "Architecture": cfg.architecture,
            "Variant": cfg.variant or "",
            "Os": cfg.os,
            "Size": self.size,
            "RootFS": {"Type": "layers", "Layers": [str(d) for d in cfg.diff_ids]},
            "History": [h.to_dict() for h in cfg.history],
            "Manifest": self.manifest.to_dict(),
            "ManifestMediaType": self.manifest.media_type,
            **self._provenance_section(),
        }

    def _provenance_section(self) -> dict[str, Any]:
        """``Provenance``: a summary of each attached statement (OCI referrer); absent when
        there is none, so plain images keep docker's shape."""
        from .store.referrers import statements, summary

        found = [summary(d, doc) for d, doc in statements(self._store, self.digest)]
        return {"Provenance": found} if found else {}

    def run(self, command: Sequence[str] | str | None = None, *,
            env: dict[str, str] | None = None, network: str = "default", user: str | None = None,
            workdir: str | None = None, entrypoint: Sequence[str] | None = None,
            output: Callable[[bytes], None] | None = None, stdin: bytes | int | None = None,
            timeout: float | None = None, isolation: str | None = None,
            host_ca: bool | None = None, allow: Sequence[str] = (),
            security_opt: Sequence[str] = (), memory: str | int | None = None,
            pids_limit: int | None = None, hardening: Hardening | None = None,
            mounts: Sequence[Mount] = (), init: bool = False, tty: bool = False,
            control: Control | None = None) -> int:
        """Run the image's entrypoint/cmd (or ``command``; a string runs under ``/bin/sh -c``)
        in the sandbox over its layers, like ``docker run --rm``; returns the exit code. The
        container's changes are thrown away. ``isolation``: as for builds (``info``);
        ``network``: default (private), none, or host (with ``allow=["network.host"]``);
        ``allow``, ``security_opt``, ``memory``, ``pids_limit`` as for builds (or all of
        them checked already as ``hardening``; default: Docker's containment).
        ``host_ca``: the container trusts the CAs this host trusts, as a build's RUN steps
        with ``--host-ca`` (default ``$NBCONTAINER_HOST_CA``). ``mounts`` (bind, tmpfs),
        ``init`` (``--init``), ``tty`` (``stdin`` is a pty's follower side, ``-t``) and
        ``control`` (signals while it runs): see ``RunSpec``."""
        from .sandbox import open_executor, run_container
        from .sandbox.fileops import FileOps
        from .store.snapshots import Snapshots, build_area

        if isinstance(command, str):
            command = ["/bin/sh", "-c", command]
        diff_ids = self.config.diff_ids
        if len(diff_ids) != len(self.manifest.layers):
            raise ImageFormatError(f"image {self.name}: its config has {len(diff_ids)} "
                                   f"diff_ids for {len(self.manifest.layers)} layer(s)")
        layers = [(d.digest, diff) for d, diff in
                  zip(self.manifest.layers, diff_ids, strict=True)]
        if hardening is None and (allow or security_opt or memory is not None
                                  or pids_limit is not None):
            from .sandbox.hardening import Hardening

            hardening = Hardening.parse(allow, security_opt, memory, pids_limit)
        sandbox = open_executor(isolation, scratch_parent=build_area(self._store),
                                hardening=hardening)
        try:
            ops = FileOps(sandbox)
            idmap = sandbox.idmap.map_lines("uid") + sandbox.idmap.map_lines("gid")
            snapshots = Snapshots.open(self._store, ops, idmap if sandbox.rootless else None,
                                       vfs=sandbox.vfs, records=sandbox.records)
            lowers = snapshots.lowers_or_empty(layers)
            ca = _host_ca(lowers, self.config.config.env_dict(), host_ca)
            scratch = snapshots.scratch()
            try:
                result = run_container(
                    lowers, self.config.config.to_dict(), list(command) if command else None,
                    entrypoint=entrypoint, env={**ca.variables, **(env or {})}, user=user,
                    workdir=workdir,
                    network="host" if network == "host" else "none" if network == "none"
                    else "default",
                    output=output or _stdout, stdin=stdin, timeout=timeout, scratch=scratch,
                    sandbox=sandbox, mounts=[*ca.mounts, *mounts], lower_files=ca.lower_files,
                    init=init, tty=tty, control=control)
            finally:
                ops.remove(scratch)
            return result.exit_code
        finally:
            sandbox.close()

    # ------------------------------------------------------------------ display
    def summary(self) -> str:
        """``my-python-image: 4 layers, 143MB, sha256:…`` (sizes are compressed, as stored)."""
        name = self.name.removesuffix(":latest")
        return (f"{name}: {humanize.plural(len(self.manifest.layers), 'layer')}, "
                f"{humanize.size(self.size)}, {self.digest}")

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.summary())

    def manifest_view(self, *, html: bool = False) -> Any:
        """The manifest, config (and index) as JSON: a separate ``application/json`` output
        (a notebook view: needs IPython)."""
        return _notebook_view("manifest_view", self, html=html)

    def layer_view(self) -> Any:
        """The layer tree (dive's view) as an object that displays itself (a notebook view:
        needs IPython; :meth:`tree` gives the same data as plain objects)."""
        return _notebook_view("layer_view", self)

    def widget(self) -> Any:
        """A live ipywidgets explorer of the layers; its bundle also carries the static view
        (a notebook view: needs IPython)."""
        return _notebook_view("widget", self)


def _host_ca(lowers: Sequence[Path], env: dict[str, str], flag: bool | None) -> ForRun:
    """What ``--host-ca`` gives a container over ``lowers`` (nothing when it is off)."""
    from .builder.certs import host_ca_default, host_trust
    from .builder.hostca import ForRun

    return ForRun(lowers, env, host_trust, on=host_ca_default() if flag is None else flag)


def _stdout(chunk: bytes) -> None:
    """The container's output, when the caller gives no sink: ours, like ``docker run``."""
    sys.stdout.buffer.write(chunk)
    sys.stdout.buffer.flush()


# The notebook skin supplies its views (nbcontainer.notebook.display registers them when it
# is loaded): the engine never imports a skin, and a process without IPython never loads one.
_VIEWS: dict[str, Callable[..., Any]] = {}
VIEW_NAMES = ("layer_view", "manifest_view", "widget")


def provide_views(**factories: Callable[..., Any]) -> None:
    """Set the factories behind :meth:`Image.layer_view`, :meth:`Image.manifest_view` and
    :meth:`Image.widget` (each called with the image and the method's keywords)."""
    unknown = set(factories) - set(VIEW_NAMES)
    if unknown:
        raise TypeError(f"unknown notebook views: {', '.join(sorted(unknown))}")
    _VIEWS.update(factories)


def _notebook_view(name: str, image: Image, **kw: Any) -> Any:
    factory = _VIEWS.get(name)
    if factory is None:
        raise NbcontainerError(
            f"Image.{name}() is a notebook view and no notebook is loaded in this process",
            hint="call it in IPython or Jupyter (after `import nbcontainer` or `%load_ext "
                 "nbcontainer`); Image.tree() and Image.files() give the data anywhere")
    return factory(image, **kw)


class ImageIndex(_StoreActions):
    """A multi-platform image: an OCI image index in the store, one :class:`Image` per
    platform (what ``build(platform="linux/amd64,linux/arm64")`` returns)."""

    def __init__(self, store: Store, digest: Digest, ref: Reference | None = None) -> None:
        from .oci.manifest import Index

        parsed = store.read_manifest(digest)
        if not isinstance(parsed, Index):
            raise TypeError(f"{digest} is not an image index")
        self._store = store
        self._digest = digest
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
    def digest(self) -> Digest:
        """The index digest (what a registry calls the multi-platform image)."""
        return self._digest

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
            lines.append(f"  {plat:<16} {img.digest}  "
                         f"{humanize.plural(len(img.manifest.layers), 'layer')}")
        return "\n".join(lines)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.summary())

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

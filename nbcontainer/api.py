"""The Python API: every CLI verb and notebook magic is a thin call into these functions."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ImageFormatError, ImageNotFound, NbcontainerError, StoreError
from .image import Image, ImageIndex
from .oci import mediatypes as mt
from .oci.config import ContainerConfig, History, ImageConfig
from .oci.descriptor import Descriptor
from .oci.manifest import Index, Manifest
from .oci.platform import Platform
from .oci.reference import Reference
from .progress import ProgressFn, null_progress
from .timestamps import rfc3339, source_date_epoch

if TYPE_CHECKING:
    from .sandbox.report import SandboxReport
    from .store.oci_layout import ExportItem
from .store import FsckReport, PruneReport, Store
from .store import fsck as _fsck
from .store import prune as _prune

SAVE_FORMATS = ("docker-archive", "oci-archive", "oci-dir")

_stores: dict[str, Store] = {}


def get_store(store: Store | str | Path | None = None) -> Store:
    """The store to use: an explicit one, else the default location (one instance per path)."""
    if isinstance(store, Store):
        return store
    s = Store(store) if store is not None else Store()
    return _stores.setdefault(str(s.home), s)


def parse_bool(text: str) -> bool:
    """``true``/``false`` (and 1/0, yes/no, on/off) as docker's flags accept them; the CLI and
    the magics both parse ``--tls-verify=BOOL`` with it."""
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


# ---------------------------------------------------------------------------- images
def image(name: str, *, store: Store | None = None, platform: str | None = None) -> Image:
    st = get_store(store)
    return Image.load(st, name, Platform.parse(platform) if platform else None)


def images(*, store: Store | None = None):
    return get_store(store).list_images()


def tag(source: str, target: str, *, store: Store | None = None) -> None:
    get_store(store).tag(source, target)


def rmi(names: Sequence[str], *, force: bool = False, store: Store | None = None) -> list[str]:
    st = get_store(store)
    events: list[str] = []
    for name in names:
        events.extend(st.remove(name, force=force))
    return events


def prune(*, store: Store | None = None) -> PruneReport:
    """Drop unreferenced blobs and the build area's unused snapshots and cache entries."""
    with _file_ops() as ops:
        return _prune(get_store(store), remove=ops.remove)


def prune_cache_mounts(*, store: Store | None = None) -> tuple[int, int]:
    """``prune --cache``: remove every ``RUN --mount=type=cache`` directory; (count, bytes)."""
    from .store.cache_mounts import CacheMountStore, cache_mounts_dir

    with _file_ops() as ops:
        return CacheMountStore(cache_mounts_dir(get_store(store))).prune(ops.remove)


@contextlib.contextmanager
def _file_ops() -> Iterator[Any]:
    """File operations with the builder's ids: rootless stores hold files owned by
    subordinate ids that only root of the sandbox's user namespace may delete."""
    from .sandbox.fileops import FileOps

    ops = FileOps.for_current_user()
    try:
        yield ops
    finally:
        ops.close()


def reset(*, store: Store | None = None) -> Path:
    """``system reset``: delete the whole store, images and build area included. A rootless
    store holds files owned by subordinate ids that the user's own ``rm -rf`` cannot delete;
    they are deleted as root of the user namespace that made them. Returns the path."""
    from .sandbox.fileops import force_remove

    st = get_store(store)
    home = st.home
    _stores.pop(str(home), None)
    try:
        force_remove(home)
    except PermissionError:
        _remove_in_userns(home)
    return home


def _remove_in_userns(path: Path) -> None:
    from .layers.idmap import IdMap
    from .sandbox import NamespaceExecutor

    box = NamespaceExecutor(True, idmap=IdMap.for_current_user(), fork_server=False)
    try:
        code = box.run_in_userns(["rm", "-rf", "--", str(path)])
    finally:
        box.close()
    if code or path.exists():
        raise StoreError(f"cannot delete {path}: files owned by ids this user cannot map",
                         hint="ask an administrator to delete it, or restore the subordinate "
                              "id range it was made with (/etc/subuid, /etc/subgid)")


@dataclass(frozen=True)
class SystemInfo:
    """``nbcontainer info``: the version, the store, and the sandbox (the probe's findings,
    the rung builds will use, missing rungs with reason and remedy, measures in force)."""

    version: str
    store: dict[str, Any]
    sandbox: SandboxReport

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "store": self.store, "sandbox": self.sandbox.to_dict()}


def info(*, store: Store | None = None, isolation: str | None = None) -> SystemInfo:
    """Like ``docker info``/``podman info``: what this environment gives a build."""
    from .sandbox.probe import fs_type
    from .sandbox.report import sandbox_report
    from .store.snapshots import build_area
    from .version import __version__

    st = get_store(store)
    area = build_area(st)
    report = sandbox_report(area, isolation)
    images = st.list_images()
    return SystemInfo(__version__, {"path": str(st.home), "filesystem": fs_type(str(area)),
                                    "images": len(images)}, report)


def fsck(*, store: Store | None = None, quarantine: bool = True) -> FsckReport:
    return _fsck(get_store(store), quarantine=quarantine)


# ---------------------------------------------------------------------------- import
def import_image(
    source: str | Path,
    tag: str | None = None,
    *,
    changes: Sequence[str] = (),
    message: str | None = None,
    platform: str | None = None,
    store: Store | None = None,
) -> Image:
    """``docker import``: a root filesystem (directory or tarball) becomes a one-layer image."""
    from . import layers

    st = get_store(store)
    src = Path(source)
    if not src.exists():
        raise NbcontainerError(f"import source {str(src)!r} does not exist",
                               hint="give a root filesystem directory or a tarball")
    ref = Reference.parse(tag) if tag else None
    epoch = source_date_epoch()
    with st.operation():
        with st.blobs.writer() as w:
            if src.is_dir():
                info = layers.write_layer(src, w, source_date_epoch=epoch)
            else:
                with open(src, "rb") as raw, layers.open_layer(raw) as tar_stream:
                    info = layers.compress_stream(tar_stream, w)
            w.commit(info.digest)
        plat = Platform.parse(platform) if platform else Platform.host()
        created = rfc3339(epoch)
        config = ImageConfig(
            architecture=plat.architecture,
            os=plat.os,
            variant=plat.variant or None,
            config=apply_changes(ContainerConfig(), changes),
            diff_ids=(info.diff_id,),
            history=(History(created=created, created_by=f"nbcontainer import {src.name}",
                             comment=message or f"Imported from {src.name}"),),
            created=created,
        )
        cfg_bytes = config.to_bytes()
        cfg_digest = st.blobs.put(cfg_bytes)
        manifest = Manifest(
            Descriptor(mt.OCI_CONFIG, cfg_digest, len(cfg_bytes)),
            (Descriptor(info.media_type, info.digest, info.size),),
        )
        digest = st.add_image(manifest.to_bytes(), tags=[str(ref)] if ref else [])
    return Image.load(st, str(ref) if ref else str(digest))


def apply_changes(config: ContainerConfig, changes: Sequence[str]) -> ContainerConfig:
    """Apply ``docker import --change`` / ``commit --change`` Dockerfile instructions."""
    if not changes:
        return config
    from .builder.metadata import apply_config_changes

    return apply_config_changes(config, changes)


# ---------------------------------------------------------------------------- registries
def pull(
    ref: str, *, platform: str | None = None, all_platforms: bool = False,
    progress: ProgressFn | None = None, tls_verify: bool | None = None,
    store: Store | None = None,
) -> Image:
    """``docker pull``: fetch an image (or, with ``all_platforms``, a whole index)."""
    from . import registry

    st = get_store(store)
    plat = Platform.parse(platform) if platform else None
    digest = registry.pull(st, ref, platform=plat, all_platforms=all_platforms,
                           progress=progress or null_progress, tls_verify=tls_verify)
    img = Image(st, st.image_by_digest(digest, plat), None)
    return Image.load(st, str(Reference.parse(ref))) if img.tags else img


def push(
    name: str, dest: str | None = None, *, progress: ProgressFn | None = None,
    digestfile: str | Path | None = None, tls_verify: bool | None = None,
    store: Store | None = None,
) -> str:
    """``docker push``: upload an image to ``dest`` (default: its own name). Returns the
    manifest digest the registry now serves."""
    from . import registry

    st = get_store(store)
    digest = registry.push(st, name, dest, progress=progress or null_progress,
                           digestfile=digestfile, tls_verify=tls_verify)
    return str(digest)


# ---------------------------------------------------------------------------- inspect
def inspect_image(img: Image) -> dict[str, Any]:
    """``docker inspect``'s shape, plus the manifest (what registries see)."""
    cfg = img.config
    repo_tags = [Reference.parse(t).familiar for t in img.tags]
    repo_digests = sorted({f"{Reference.parse(t).familiar_repository}@{img.digest}" for t in img.tags})
    return {
        "Id": str(img.id),
        "Digest": str(img.digest),
        "RepoTags": repo_tags,
        "RepoDigests": repo_digests,
        "Parent": "",
        "Comment": next((h.comment for h in cfg.history if h.comment), "") or "",
        "Created": cfg.created or "",
        "Author": cfg.author or "",
        "Config": cfg.config.to_dict(),
        "Architecture": cfg.architecture,
        "Variant": cfg.variant or "",
        "Os": cfg.os,
        "Size": img.size,
        "RootFS": {"Type": "layers", "Layers": [str(d) for d in cfg.diff_ids]},
        "History": [h.to_dict() for h in cfg.history],
        "Manifest": img.manifest.to_dict(),
        "ManifestMediaType": img.manifest.media_type,
        **_provenance_section(img),
    }


def _provenance_section(img: Image) -> dict[str, Any]:
    """``Provenance``: a summary of each attached build provenance statement (OCI referrer);
    absent when there is none, so plain images keep docker's shape."""
    from .store.referrers import statements, summary

    found = [summary(d, doc) for d, doc in statements(img.store, img.digest)]
    return {"Provenance": found} if found else {}


def provenance(name: str, *, store: Store | None = None,
               platform: str | None = None) -> list[dict[str, Any]]:
    """The full in-toto statements attached to an image (``inspect --provenance``)."""
    from .store.referrers import statements

    img = image(name, store=store, platform=platform)
    return [doc for _, doc in statements(img.store, img.digest)]


def inspect(names: Sequence[str], *, store: Store | None = None) -> list[dict[str, Any]]:
    st = get_store(store)
    return [inspect_image(Image.load(st, n)) for n in names]


# ---------------------------------------------------------------------------- save / load
def _export_items(st: Store, names: Sequence[str]) -> list[ExportItem]:
    from .store.oci_layout import ExportItem

    items = []
    for name in names:
        digest = st.resolve_digest(name)
        ref = None
        try:
            ref = Reference.parse(name)
            if ref.digest is not None or str(ref) not in st.refs.read().tags:
                ref = None
        except NbcontainerError:
            ref = None
        if ref is None:
            tags = st.refs.read().tags_of(str(digest))
            ref = Reference.parse(tags[0]) if tags else None
        items.append(ExportItem(digest, ref))
    if not items:
        raise StoreError("nothing to save", hint="name at least one image")
    return items


def save(
    names: Sequence[str], output: str | Path, *, format: str = "docker-archive",
    store: Store | None = None,
) -> Path:
    """``docker save``: one or more images into a docker-archive, oci-archive or oci-dir."""
    from .store import docker_archive, oci_layout

    if format not in SAVE_FORMATS:
        raise NbcontainerError(f"unknown save format {format!r}",
                               hint=f"choose one of {', '.join(SAVE_FORMATS)}")
    st = get_store(store)
    items = _export_items(st, names)
    dest = Path(output)
    mtime = source_date_epoch() or 0
    if format == "oci-dir":
        oci_layout.export_dir(st, items, dest)
    elif format == "oci-archive":
        oci_layout.export_archive(st, items, dest, mtime=mtime)
    else:
        pairs = []
        for it in items:
            stored = st.image_by_digest(it.digest)
            pairs.append((stored, [it.ref] if it.ref else []))
        docker_archive.export_archive(st, pairs, dest, mtime=mtime)
    return dest


def load(source: str | Path, *, store: Store | None = None) -> list[tuple[str, list[str]]]:
    """``docker load``: a docker-archive, an oci-archive or an OCI layout directory."""
    from .store import docker_archive, oci_layout

    st = get_store(store)
    src = Path(source)
    if src.is_dir():
        loaded = oci_layout.import_dir(st, src)
    elif src.is_file():
        loaded = docker_archive.import_archive(st, src)
    else:
        raise StoreError(f"{src}: no such file or directory")
    if not loaded:
        raise ImageFormatError(f"{src}: the archive holds no image")
    return [(str(d), t) for d, t in loaded]


# ---------------------------------------------------------------------------- build / run
def build(dockerfile: str | Path, context: str | Path = ".", tags: Sequence[str] = (),
          build_args: dict[str, str] | None = None, target: str | None = None,
          no_cache: bool = False, store: Store | None = None, progress: ProgressFn | None = None,
          secrets: Any = (), platform: Any = None, ssh: Any = (), *,
          cache_from: Sequence[str] = (), cache_to: Sequence[str] = (),
          provenance: bool | str = False, isolation: str | None = None) -> Image | ImageIndex:
    """``docker build``: a Dockerfile (text or path) and a context directory → an Image.
    Several platforms (``linux/amd64,linux/arm64``) give an :class:`ImageIndex`.
    ``ssh``: ``--ssh`` specs (``default``, ``ID=SOCKET|KEY[,KEY]``) for RUN --mount=type=ssh.
    ``cache_from``/``cache_to``: buildx specs (``type=registry,ref=R[,mode=max]``,
    ``type=inline``; a bare ref for ``cache_from``): the build cache in a registry.
    ``provenance``: ``True``/``"mode=min"``/``"mode=max"`` attaches a SLSA provenance statement
    as an OCI referrer of the image (shown by ``inspect``, pushed and pulled with it).
    ``isolation``: the rung for RUN steps (``auto``, ``full``, ``reduced``, ``ptrace``,
    ``none``); default ``$NBCONTAINER_ISOLATION``, else the strongest that works (``info``)."""
    from .builder import build as _build

    st = get_store(store)
    out = _build(dockerfile, context, store=st, tags=tags, build_args=build_args, target=target,
                 no_cache=no_cache, progress=progress, secrets=secrets, platform=platform,
                 ssh=ssh, provenance_mode=provenance, cache_from=cache_from, cache_to=cache_to,
                 isolation=isolation)
    name = tags[0] if tags else str(out.digest)
    if out.is_index:
        return ImageIndex.load(st, name)
    return Image.load(st, name, out.platforms[0])


def run(image: str, command: Sequence[str] | None = None, *, store: Store | None = None,
        env: dict[str, str] | None = None, network: str = "host", user: str | None = None,
        workdir: str | None = None, entrypoint: Sequence[str] | None = None,
        output: Callable[[bytes], None] | None = None, stdin: bytes | int | None = None,
        timeout: float | None = None, isolation: str | None = None) -> int:
    """``docker run --rm``: run an image's entrypoint/cmd (or ``command``) in the sandbox
    over its layers, pulling it first when the store lacks it; returns the exit code. The
    container's changes are thrown away."""
    from .sandbox import open_executor, run_container
    from .sandbox.fileops import FileOps
    from .store.snapshots import Snapshots

    st = get_store(store)
    try:
        stored = st.image(image)
    except ImageNotFound:
        pull(image, store=st)
        stored = st.image(image)
    if len(stored.config.diff_ids) != len(stored.manifest.layers):
        raise ImageFormatError(f"image {image}: its config has {len(stored.config.diff_ids)} "
                               f"diff_ids for {len(stored.manifest.layers)} layers")
    layers = [(d.digest, diff) for d, diff in
              zip(stored.manifest.layers, stored.config.diff_ids, strict=True)]
    from .store.snapshots import build_area

    sandbox = open_executor(isolation, scratch_parent=build_area(st))
    try:
        ops = FileOps(sandbox)
        idmap = sandbox.idmap.map_lines("uid") + sandbox.idmap.map_lines("gid")
        snapshots = Snapshots.open(st, ops, idmap if sandbox.rootless else None,
                                   vfs=sandbox.vfs, records=sandbox.records)
        lowers = snapshots.lowers_or_empty(layers)
        scratch = snapshots.scratch()
        try:
            result = run_container(
                lowers, stored.config.config.to_dict(), list(command) if command else None,
                entrypoint=entrypoint, env=env, user=user, workdir=workdir,
                network="none" if network == "none" else "host", output=output or _stdout,
                stdin=stdin, timeout=timeout, scratch=scratch, sandbox=sandbox)
        finally:
            ops.remove(scratch)
        return result.exit_code
    finally:
        sandbox.close()


def _stdout(chunk: bytes) -> None:
    sys.stdout.buffer.write(chunk)
    sys.stdout.buffer.flush()


__all__ = [
    "Image", "Index", "SystemInfo", "fsck", "get_store", "image", "images", "import_image",
    "info", "inspect", "load", "prune", "pull", "push", "reset", "rmi", "save", "tag",
]

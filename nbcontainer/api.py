"""The Python API: every CLI verb and notebook magic is a thin call into these functions."""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ImageFormatError, ImageNotFound, NbcontainerError, StoreError
from .image import Image, ImageIndex
from .oci import mediatypes as mt
from .oci.descriptor import Descriptor
from .oci.digest import Digest
from .oci.manifest import Index, Manifest
from .oci.platform import Platform
from .oci.reference import Reference
from .progress import ProgressFn, null_progress
from .store import Store
from .store.save import SAVE_FORMATS
from .timestamps import rfc3339, source_date_epoch

if TYPE_CHECKING:
    from .analysis import CheckReport, CiRules
    from .kernel.spec import InstalledKernel
    from .oci.config import ContainerConfig
    from .sandbox.hardening import Hardening
    from .sandbox.report import SandboxReport
    from .sandbox.spec import BindMount
    from .store.gc import FsckReport, PruneReport

_stores: dict[str, Store] = {}


# A test hook, documented in docs/architecture.md: with this variable set to 1, every call
# of the API fails with an unexpected exception (not an NbcontainerError), so the tests can
# show how each skin reports a bug in nbcontainer. Checked in get_store only: every verb and
# every magic starts there.
INTERNAL_ERROR_HOOK = "NBCONTAINER_TEST_INTERNAL_ERROR"


def get_store(store: Store | str | Path | None = None) -> Store:
    """The store to use: an explicit one, else the default location (one instance per path)."""
    if os.environ.get(INTERNAL_ERROR_HOOK) == "1":
        raise RuntimeError(f"a deliberate internal error ({INTERNAL_ERROR_HOOK}=1 is set)")
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


@dataclass(frozen=True)
class ImageRow:
    """One row of ``images``: an image under one of its names (``<none>`` when untagged)."""

    repository: str  # as docker prints it: ``app``, ``localhost:5000/app``
    tag: str
    name: str | None  # the full reference of this row, None for an untagged image
    digest: Digest  # the manifest (or index) digest
    id: Digest  # docker's image id: the config digest (an index's own digest)
    created: str | None
    size: int


def images(*, store: Store | None = None) -> list[ImageRow]:
    """``docker images``: one row per name of each image, newest first. An index's untagged
    platform manifests are listed under the index's row (as docker does), not as rows of
    their own."""
    st = get_store(store)
    records = st.list_images()
    children: set[str] = set()
    for r in records:
        if "index" in r.media_type or "manifest.list" in r.media_type:
            try:
                parsed = st.read_manifest(r.digest)
            except NbcontainerError:
                continue
            if isinstance(parsed, Index):
                children.update(str(m.digest) for m in parsed.manifests)
    rows = []
    for r in records:
        if not r.tags and str(r.digest) in children:
            continue
        for name in r.tags or (None,):
            ref = Reference.parse(name) if name else None
            rows.append(ImageRow(ref.familiar_repository if ref else "<none>",
                                 (ref.tag if ref else None) or "<none>", name, r.digest,
                                 r.config_digest or r.digest, r.created, r.size))
    return rows


def familiar_name(name: str) -> str:
    """A reference as docker prints it: ``docker.io/library/app:1`` → ``app:1``."""
    return Reference.parse(name).familiar


def canonical_name(name: str) -> str:
    """A reference in full: ``app`` → ``docker.io/library/app:latest``."""
    return str(Reference.parse(name))


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
        from .store.gc import prune as _prune

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
    from .sandbox.vfs import force_remove

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
    # What RUN steps are given of the host: its extra CAs and --host-ca's default
    # (builder/certs.py), the proxies they get (builder/proxies.py; passwords hidden).
    host: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "store": self.store, "sandbox": self.sandbox.to_dict(),
                "host": self.host}


def info(*, store: Store | None = None, isolation: str | None = None) -> SystemInfo:
    """Like ``docker info``/``podman info``: what this environment gives a build."""
    from .builder import proxies
    from .builder.certs import trust_report
    from .builder.proxies import redact
    from .sandbox.probe import fs_type
    from .sandbox.report import sandbox_report
    from .store.snapshots import build_area
    from .version import __version__

    st = get_store(store)
    area = build_area(st)
    report = sandbox_report(area, isolation)
    images = st.list_images()
    host = {"ca": trust_report(),
            "proxies": {k: redact(v) for k, v in sorted(proxies.ambient().items())}}
    return SystemInfo(__version__, {"path": str(st.home), "filesystem": fs_type(str(area)),
                                    "images": len(images)}, report, host)


def fsck(*, store: Store | None = None, quarantine: bool = True) -> FsckReport:
    from .store.gc import fsck as _fsck

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
    from .oci.config import ContainerConfig, History, ImageConfig

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


def login(server: str | None, username: str, password: str, *,
          tls_verify: bool | None = None) -> str:
    """``docker login``: check the credentials with the registry, then save them as docker
    does; returns where they were saved (the config file, or the credential helper)."""
    from . import registry

    return registry.login(server, username, password, tls_verify=tls_verify)


def logout(server: str | None) -> bool:
    """``docker logout``: forget the saved credentials; False when there were none."""
    from . import registry

    return registry.logout(server)


def registry_domain(server: str | None) -> str:
    """The registry a login is for: ``https://index.docker.io/v1/`` → ``docker.io``."""
    from . import registry

    return registry.registry_domain(server)


def list_tags(repository: str, *, tls_verify: bool | None = None) -> list[str]:
    """The tags of a repository in a registry (``ls``)."""
    from . import registry

    return registry.list_tags(repository, tls_verify=tls_verify)


# ---------------------------------------------------------------------------- inspect
def inspect_image(img: Image) -> dict[str, Any]:
    """``docker inspect``'s shape, plus the manifest (what registries see)."""
    return img.inspect()


def provenance(name: str | Image, *, store: Store | None = None,
               platform: str | None = None) -> list[dict[str, Any]]:
    """The full in-toto statements attached to an image (``inspect --provenance``)."""
    from .store.referrers import statements

    img = name if isinstance(name, Image) else image(name, store=store, platform=platform)
    return [doc for _, doc in statements(img.store, img.digest)]


def inspect_field(doc: dict[str, Any], template: str) -> str:
    """``inspect -f``: the common ``{{.A.B}}`` and ``{{json .A}}`` subset of docker's Go
    templates, over one :func:`inspect` document."""
    t = template.strip()
    if not (t.startswith("{{") and t.endswith("}}")):
        raise NbcontainerError(f"unsupported --format {template!r}",
                               hint="use json, {{.Field.Sub}} or {{json .Field}}")
    expr = t[2:-2].strip()
    as_json = expr.startswith("json ")
    path = expr.removeprefix("json ").strip()
    val: Any = doc
    for part in [p for p in path.split(".") if p]:
        if not isinstance(val, dict) or part not in val:
            raise NbcontainerError(f"--format: no field {part!r} in {path!r}")
        val = val[part]
    if as_json or isinstance(val, dict | list):
        return json.dumps(val)
    return "" if val is None else str(val)


def inspect(names: Sequence[str], *, store: Store | None = None) -> list[dict[str, Any]]:
    st = get_store(store)
    return [Image.load(st, n).inspect() for n in names]


# ---------------------------------------------------------------------------- save / load
def save(
    names: Sequence[str], output: str | Path, *, format: str = "docker-archive",
    store: Store | None = None,
) -> Path:
    """``docker save``: one or more images into a docker-archive, oci-archive or oci-dir."""
    from .store.save import save as _save

    return _save(get_store(store), names, output, format=format,
                 mtime=source_date_epoch() or 0)


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
          provenance: bool | str = False, output: str | OutputSpec | None = None,
          iidfile: str | Path | None = None, isolation: str | None = None,
          host_ca: bool | None = None, allow: Sequence[str] = (),
          security_opt: Sequence[str] = (), memory: str | int | None = None,
          pids_limit: int | None = None) -> Image | ImageIndex:
    """``docker build``: a Dockerfile (text or path) and a context directory → an Image.
    Several platforms (``linux/amd64,linux/arm64``) give an :class:`ImageIndex`.
    ``ssh``: ``--ssh`` specs (``default``, ``ID=SOCKET|KEY[,KEY]``) for RUN --mount=type=ssh.
    ``cache_from``/``cache_to``: buildx specs (``type=registry,ref=R[,mode=max]``,
    ``type=inline``; a bare ref for ``cache_from``): the build cache in a registry.
    ``provenance``: ``True``/``"mode=min"``/``"mode=max"`` attaches a SLSA provenance statement
    as an OCI referrer of the image (shown by ``inspect``, pushed and pulled with it).
    ``output``: also write the result (see :func:`export`); ``iidfile``: write its id there.
    ``isolation``: the rung for RUN steps (``auto``, ``full``, ``reduced``, ``ptrace``,
    ``none``); default ``$NBCONTAINER_ISOLATION``, else the strongest that works (``info``).
    ``host_ca``: RUN steps trust the CAs this host trusts (a TLS-inspecting proxy's), for the
    step only: nothing of them reaches the image (default ``$NBCONTAINER_HOST_CA``). Proxy
    variables of the environment and ``proxies`` of docker's config.json reach RUN steps as
    BuildKit's predefined proxy args (never recorded in the image or its provenance).
    ``allow``: entitlements, as buildx spells them (``network.host`` for ``RUN
    --network=host``, ``security.insecure`` for ``RUN --security=insecure``);
    ``security_opt``: ``seccomp=unconfined|PROFILE.json``; ``memory``, ``pids_limit``: the
    RUN steps' limits (default: 2048 processes). Nothing is granted unless asked for here."""
    from .builder import build as _build

    hardening = _hardening(allow, security_opt, memory, pids_limit)  # checked first
    st = get_store(store)
    spec = OutputSpec.parse(output) if isinstance(output, str) else output  # checked first
    out = _build(dockerfile, context, store=st, tags=tags, build_args=build_args, target=target,
                 no_cache=no_cache, progress=progress, secrets=secrets, platform=platform,
                 ssh=ssh, provenance_mode=provenance, cache_from=cache_from, cache_to=cache_to,
                 isolation=isolation, host_ca=host_ca, hardening=hardening)
    name = tags[0] if tags else str(out.digest)
    result = ImageIndex.load(st, name) if out.is_index else \
        Image.load(st, name, out.platforms[0])
    if spec is not None:
        export(result, spec)
    if iidfile:
        Path(iidfile).write_text(str(result.id))
    return result


@dataclass(frozen=True)
class OutputSpec:
    """``--output type=oci|docker|local,dest=PATH`` (buildx's exporters)."""

    type: str
    dest: Path

    TYPES = ("oci", "docker", "local")

    @classmethod
    def parse(cls, spec: str) -> OutputSpec:
        fields = dict(p.partition("=")[::2] for p in spec.split(","))
        kind, dest = fields.get("type", "local"), fields.get("dest")
        if kind not in cls.TYPES:
            raise NbcontainerError(f"unknown output type {kind!r}",
                                   hint="use oci, docker or local")
        if not dest:
            raise NbcontainerError(f"--output {spec!r} needs dest=PATH")
        return cls(kind, Path(dest))


def export(image: Image | ImageIndex, output: str | OutputSpec) -> None:
    """``build --output``: an image (or index) as an OCI archive, a docker archive, or its
    files in a directory (one directory per platform for an index, as buildx does:
    ``dest/linux_arm64``)."""
    from .layers import apply_layers

    spec = OutputSpec.parse(output) if isinstance(output, str) else output
    st = image.store
    if spec.type in ("oci", "docker"):
        name = str(image.ref) if image.ref else str(image.digest)
        save([name], spec.dest, format=f"{spec.type}-archive", store=st)
        return
    if isinstance(image, ImageIndex):
        for plat, one in zip(image.platforms, image.images, strict=True):
            apply_layers(spec.dest / plat.replace("/", "_"),
                         [st.blobs.path(layer.digest) for layer in one.manifest.layers])
        return
    apply_layers(spec.dest, [st.blobs.path(layer.digest) for layer in image.manifest.layers])


def bind_mounts(volumes: Sequence[str] = (), mounts: Sequence[str] = ()) -> list[BindMount]:
    """``-v HOST:CONTAINER[:ro]`` and ``--mount type=bind,…`` values as bind mounts; a
    malformed value or a missing host path is a :class:`MountSpecError`."""
    from .sandbox.volumes import parse_mount, parse_volume

    return [parse_volume(v) for v in volumes] + [parse_mount(m) for m in mounts]


def run(image: str | Image, command: Sequence[str] | None = None, *, store: Store | None = None,
        env: dict[str, str] | None = None, network: str = "default", user: str | None = None,
        workdir: str | None = None, entrypoint: Sequence[str] | None = None,
        output: Callable[[bytes], None] | None = None, stdin: bytes | int | None = None,
        timeout: float | None = None, isolation: str | None = None,
        volumes: Sequence[str] = (), mounts: Sequence[str] = (), tty: bool = False,
        init: bool = False, name: str | None = None, host_ca: bool | None = None,
        allow: Sequence[str] = (), security_opt: Sequence[str] = (),
        memory: str | int | None = None, pids_limit: int | None = None) -> int:
    """``docker run --rm``: run an image's entrypoint/cmd (or ``command``) in the sandbox
    over its layers, pulling it first when the store lacks it; returns the exit code. The
    container's changes are thrown away (:meth:`Image.run` does the work). ``volumes``/
    ``mounts``: ``-v``/``--mount`` values (checked before anything runs); ``tty``: ``stdin``
    is the follower side of a pty; ``name``: held while it runs (two running containers
    cannot share a name). ``network``: ``default`` (a private network with outbound access),
    ``none``, or ``host`` with ``allow=["network.host"]``; ``host_ca`` and the other
    keywords as for :func:`build`."""
    binds = bind_mounts(volumes, mounts)
    hardening = _hardening(allow, security_opt, memory, pids_limit)
    if isinstance(image, Image):
        st, img = image.store, image
    else:
        st = get_store(store)
        try:
            img = Image.load(st, image)
        except ImageNotFound:
            pull(image, store=st)
            img = Image.load(st, image)
    with _container_name(st, name):
        return img.run(command, env=env, network=network, user=user, workdir=workdir,
                       entrypoint=entrypoint, output=output, stdin=stdin, timeout=timeout,
                       isolation=isolation, mounts=binds, tty=tty, init=init,
                       host_ca=host_ca, hardening=hardening)


_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")


@contextlib.contextmanager
def _container_name(st: Store, name: str | None) -> Iterator[None]:
    """``--name``: a lock on ``<store>/containers/NAME.lock`` for as long as the container
    runs (released by the kernel if we die, so a stale name never blocks)."""
    if name is None:
        yield
        return
    if not _NAME.fullmatch(name):
        raise NbcontainerError(f"invalid container name {name!r}",
                               hint="only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    import fcntl

    folder = st.home / "containers"
    folder.mkdir(exist_ok=True)
    with open(folder / f"{name}.lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise NbcontainerError(f'the container name "{name}" is already in use by a '
                                   "running container", hint="choose another --name, or "
                                   "wait until that container exits") from None
        yield


def install_kernel(image: str | Image, *, name: str | None = None,
                   display_name: str | None = None, user: bool = False,
                   sys_prefix: bool = False, prefix: str | Path | None = None,
                   volumes: Sequence[str] = (), env: dict[str, str] | None = None,
                   workdir_mount: bool = True, allow: Sequence[str] = (),
                   isolation: str | None = None, store: Store | None = None) -> InstalledKernel:
    """``nbcontainer kernel install``: a Jupyter kernelspec whose kernel runs in ``image``
    (pinned to its digest: rebuilding the tag does not change the kernel; installing again
    updates it; an image the store lacks is pulled first). The image needs ``ipykernel``
    for its ``python3``."""
    from .kernel import spec

    if isinstance(image, Image):
        img = image
    else:
        st = get_store(store)
        try:
            img = Image.load(st, image)
        except ImageNotFound:  # as run does: a registry's image is pulled first
            pull(image, store=st)
            img = Image.load(st, image)
    return spec.install(img, name=name, display_name=display_name, user=user,
                        sys_prefix=sys_prefix, prefix=prefix, volumes=volumes, env=env,
                        workdir_mount=workdir_mount, allow=allow, isolation=isolation,
                        image_name=image if isinstance(image, str) else None)


def kernels() -> list[InstalledKernel]:
    """``nbcontainer kernel list``: the kernels from images Jupyter can find."""
    from .kernel import spec

    return spec.kernels()


def remove_kernel(name: str) -> InstalledKernel:
    """``nbcontainer kernel remove``: delete a kernel from an image (never the image)."""
    from .kernel import spec

    return spec.remove(name)


def _hardening(allow: Sequence[str], security_opt: Sequence[str], memory: str | int | None,
               pids_limit: int | None) -> Hardening | None:
    """The containment options, checked (None: the defaults, loading no sandbox code)."""
    if not (allow or security_opt or memory is not None or pids_limit is not None):
        return None
    from .sandbox.hardening import Hardening

    return Hardening.parse(allow, security_opt, memory, pids_limit)


__all__ = [
    "SAVE_FORMATS", "Image", "ImageIndex", "ImageRow", "Index",
    "NbcontainerError", "OutputSpec", "Store", "SystemInfo", "bind_mounts", "build",
    "canonical_name", "check", "ci_rules", "export", "familiar_name", "fsck", "get_store",
    "image", "images", "import_image", "info", "inspect", "inspect_field", "install_kernel",
    "junk_rule_ids", "kernels", "list_tags", "load", "login", "logout", "parse_bytes",
    "parse_ratio", "provenance", "prune", "prune_cache_mounts", "pull", "push",
    "registry_domain", "remove_kernel", "reset", "rmi", "run", "save", "tag",
]


# ---------------------------------------------------------------------------- layer insight
DIVE_CI = ".dive-ci"


def junk_rule_ids() -> tuple[str, ...]:
    """The junk rules' ids (what ``--ignore`` takes)."""
    from .analysis import ALL_RULES

    return tuple(r.id for r in ALL_RULES)


def parse_ratio(text: str) -> float:
    """A ratio as ``.dive-ci`` writes it: ``0.9`` or ``90%``."""
    from .analysis import parse_ratio as parse

    return parse(text)


def parse_bytes(text: str) -> int:
    """A size as ``.dive-ci`` writes it: ``20MB``, ``1GiB``, ``1000``."""
    from .analysis import parse_bytes as parse

    return parse(text)

def ci_rules(config: str | Path | None = None, *, ignore: Sequence[str] = (),
             **thresholds: float | int | None) -> CiRules:
    """The rules ``check`` applies: dive's defaults, then a ``.dive-ci`` file (``config``;
    by default ``./.dive-ci`` when there is one, as dive reads it), then the ``thresholds``
    given (``lowest_efficiency``, ``highest_wasted_bytes``, ``highest_user_wasted_percent``;
    None disables one) and the junk rules to ``ignore``."""
    from dataclasses import replace

    from .analysis import CiRules, parse_dive_ci

    path = Path(config) if config is not None else Path(DIVE_CI)
    if config is not None and not path.is_file():
        raise NbcontainerError(f"no such rules file: {path}",
                               hint="give dive's .dive-ci file, or leave --ci-config out")
    rules = parse_dive_ci(path.read_text(), str(path)) if path.is_file() else CiRules()
    unknown = sorted(set(thresholds) - {"lowest_efficiency", "highest_wasted_bytes",
                                        "highest_user_wasted_percent"})
    if unknown:
        raise TypeError(f"unknown thresholds: {', '.join(unknown)}")
    return replace(rules, ignore=frozenset(ignore), **thresholds)  # type: ignore[arg-type]


def check(image: Image, rules: CiRules | None = None) -> CheckReport:
    """dive's CI mode on ``image``: each rule's verdict (``report.passed``)."""
    from .analysis import check as check_tree

    return check_tree(image.tree(), rules or ci_rules(), image.name)

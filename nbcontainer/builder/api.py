"""``build()``: the builder's entry point for the Python API, CLI and notebook."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..dockerfile import parse
from ..errors import BuildError
from ..oci.platform import Platform
from ..oci.reference import Reference
from ..progress import ProgressFn
from ..store import Store
from .builder import Builder, export_image, timestamp
from .context import BuildContext
from .platforms import export_index, parse_platforms
from .remote_cache import CacheOptions

SecretSpec = str | tuple[str, bytes]


def parse_secret(spec: str) -> tuple[str, bytes]:
    """``id=ID[,src=FILE|,env=VAR]`` (docker build --secret) → (id, bytes). Without src/env
    the id names an environment variable, then a file of that name (buildx's rule)."""
    fields: dict[str, str] = {}
    for part in spec.split(","):
        k, sep, v = part.partition("=")
        if not sep:
            raise BuildError(f"invalid secret {spec!r}", hint="use id=ID,src=FILE or id=ID,env=VAR")
        fields[k.strip().lower()] = v.strip()
    sid = fields.get("id")
    src = fields.get("src") or fields.get("source")
    env = fields.get("env")
    if not sid:
        sid = env or (os.path.basename(src) if src else None)
    if not sid:
        raise BuildError(f"secret {spec!r} has no id")
    if src:
        try:
            return sid, Path(src).expanduser().read_bytes()
        except OSError as exc:
            raise BuildError(f"secret {sid}: cannot read {src}: {exc.strerror}") from None
    name = env or sid
    if name in os.environ:
        return sid, os.environ[name].encode()
    if not env and os.path.isfile(sid):
        return sid, Path(sid).read_bytes()
    raise BuildError(f"secret {sid}: environment variable {name} is not set")


def _secrets(secrets: Sequence[SecretSpec] | Mapping[str, bytes | str]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    if isinstance(secrets, Mapping):
        items = list(secrets.items())
    else:
        items = [parse_secret(s) if isinstance(s, str) else s for s in secrets]
    for k, v in items:
        out[k] = v.encode() if isinstance(v, str) else bytes(v)
    return out


def _dockerfile(source: str | os.PathLike[str], context: Path) -> tuple[str, str]:
    """(text, name relative to the context) from Dockerfile text or a path."""
    if isinstance(source, os.PathLike) or ("\n" not in str(source) and
                                           len(str(source)) < 4096 and
                                           (Path(source).is_file() or
                                            (context / str(source)).is_file())):
        path = Path(source)
        if not path.is_file():
            path = context / path
        try:
            text = path.read_text()
        except OSError as exc:
            raise BuildError(f"cannot read Dockerfile {path}: {exc.strerror}") from None
        try:
            name = str(path.resolve().relative_to(context.resolve()))
        except ValueError:
            name = str(path)
        return text, name
    return str(source), "Dockerfile"


def _epoch(build_args: Mapping[str, str], plan_meta: Mapping[str, str | None]) -> int | None:
    raw = build_args.get("SOURCE_DATE_EPOCH") or plan_meta.get("SOURCE_DATE_EPOCH") or \
        os.environ.get("SOURCE_DATE_EPOCH")
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise BuildError(f"SOURCE_DATE_EPOCH must be an integer, got {raw!r}") from None


def check_platform(platform: str | Platform | Sequence[str | Platform] | None) -> list[Platform]:
    """The target platforms (``linux/amd64,linux/arm64`` or a list); default the host's.
    A foreign one is built too: its RUN steps need an emulator (checked when one runs)."""
    return parse_platforms(platform)


def build(dockerfile: str | os.PathLike[str], context: str | os.PathLike[str] = ".",
          tags: Sequence[str] = (), build_args: Mapping[str, str] | None = None,
          target: str | None = None, no_cache: bool = False, store: Store | None = None,
          progress: ProgressFn | None = None,
          secrets: Sequence[SecretSpec] | Mapping[str, bytes | str] = (),
          platform: str | Platform | Sequence[str | Platform] | None = None, *,
          builder: Builder | None = None,
          ssh: Sequence[str] | Mapping[str, Sequence[str]] = (),
          provenance: bool | str = False, cache_from: Sequence[str] = (),
          cache_to: Sequence[str] = ()) -> Any:
    """Build ``dockerfile`` (text, or a path to one) with ``context``; returns the Image.
    With several platforms (``linux/amd64,linux/arm64``) each is built in turn and the tags
    point at an OCI index of them: the result is then an :class:`ImageIndex`.

    ``ssh``: ``--ssh`` specs (``default``, ``ID=SOCKET`` or ``ID=KEY[,KEY]``) or a mapping
    id → socket/key paths, for ``RUN --mount=type=ssh``.

    ``provenance``: ``True``/``"mode=min"`` or ``"mode=max"`` attaches a SLSA provenance
    statement to each image manifest as an OCI referrer (see ``build.provenance``).

    ``cache_from``/``cache_to``: buildx ``--cache-from``/``--cache-to`` specs
    (``type=registry,ref=R[,mode=max]``, ``type=inline``, a bare ref), see ``remote_cache``."""
    from ..image import Image, ImageIndex
    from .mounts import parse_ssh

    st = store if store is not None else Store()
    ctx_dir = Path(context)
    if not ctx_dir.is_dir():
        raise BuildError(f"build context {str(ctx_dir)!r} is not a directory")
    plats = check_platform(platform)
    text, name = _dockerfile(dockerfile, ctx_dir)
    args = dict(build_args or {})
    for t in tags:
        Reference.parse(t)  # fail before building, not after
    parse(text, build_args=args, target=target, filename=name)  # syntax errors before any work
    from . import provenance as prov

    prov_mode = prov.parse_mode(provenance)
    caches = CacheOptions.parse(cache_from, cache_to, args)  # bad specs fail before any work
    own = builder is None
    ssh_map = dict(ssh) if isinstance(ssh, Mapping) else dict(parse_ssh(s) for s in ssh)
    b = builder or Builder(st, progress=progress, no_cache=no_cache, secrets=_secrets(secrets),
                           platform=plats[0], ssh=ssh_map)
    own_platform = b.platform
    children: list[tuple[Platform, Any]] = []
    try:
        b.remote_cache = caches.load(b)  # --cache-from: an unusable one is only a warning
        ctx = BuildContext.open(ctx_dir, name, b.stat_cache)
        with st.operation():  # per-platform manifests stay safe from prune until indexed
            for plat in plats:
                b.platform = plat  # the default for bases; FROM --platform overrides it
                b.step_prefix = str(plat) if len(plats) > 1 else ""
                # Expansion sees each base image's environment (ENV PATH=/x:$PATH), as in
                # BuildKit, so bases are resolved (pulled if need be) while planning.
                plan = parse(text, build_args=args, target=target, filename=name,
                             platform=plat,
                             base_env=lambda image, p: b.image_state(
                                 image, Platform.parse(p))[0].config.env_dict())
                epoch = _epoch(args, plan.meta_args)
                started = timestamp(epoch)
                result = b.build_plan(plan, ctx, epoch)
                inline = caches.collect(b, plan)  # --cache-to entries (+ an inline cache)
                digest = export_image(st, result.state, tags if len(plats) == 1 else (),
                                      config_extra=inline)
                if prov_mode:
                    prov.record_build(st, b, digest, plan=plan, ctx=ctx, dockerfile_name=name,
                                      dockerfile_text=text, target=target, platform=plat,
                                      build_args=args, epoch=epoch, started=started,
                                      tags=tags, mode=prov_mode)
                children.append((plat, digest))
            if len(plats) > 1:
                digest = export_index(st, children, tags)
            caches.export(b)  # --cache-to type=registry, once every platform is built
    finally:
        if b.remote_cache is not None:
            b.remote_cache.close()
            b.remote_cache = None
        b.platform, b.step_prefix = own_platform, ""
        if own:
            b.close()
    if len(plats) > 1:
        return ImageIndex.load(st, tags[0] if tags else str(digest))
    return Image.load(st, tags[0] if tags else str(digest), plats[0])

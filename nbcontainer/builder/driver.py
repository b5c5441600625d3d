"""``build()``: a Dockerfile and a context become an image (or an index) in the store.

Inputs are checked before any work (Dockerfile syntax, tags, cache and provenance specs).
Then one build session solves the Dockerfile per target platform, exports each image (with
its provenance and inline cache), writes the index of a multi-platform build and pushes
``--cache-to`` caches. Nothing half-written becomes visible: blobs, snapshots and cache
entries are published by rename, and scratch dirs are removed on any exit, Ctrl-C included.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..dockerfile import BuildPlan, parse
from ..errors import BuildError
from ..oci.digest import Digest
from ..oci.platform import Platform
from ..oci.reference import Reference
from ..progress import ProgressFn
from ..store import Store
from ..timestamps import rfc3339, source_date_epoch
from .export import BuildInputs, attach_provenance, export_image, export_index
from .inputs import SecretSpec, read_dockerfile, read_secrets, read_ssh
from .platforms import parse_platforms
from .remote_cache import CacheOptions
from .reporter import StepReporter
from .session import BuildOptions, BuildSession, Target
from .solver import Solver
from .sources.context import BuildContext


@dataclass(frozen=True)
class BuildOutput:
    """Where the build's result is in the store."""

    digest: Digest  # the image manifest, or the index of a multi-platform build
    platforms: tuple[Platform, ...]

    @property
    def is_index(self) -> bool:
        return len(self.platforms) > 1


def build(dockerfile: str | os.PathLike[str], context: str | os.PathLike[str], *,
          store: Store, tags: Sequence[str] = (), build_args: Mapping[str, str] | None = None,
          target: str | None = None, no_cache: bool = False,
          progress: ProgressFn | None = None,
          secrets: Sequence[SecretSpec] | Mapping[str, bytes | str] = (),
          platform: str | Platform | Sequence[str | Platform] | None = None,
          ssh: Sequence[str] | Mapping[str, Sequence[str]] = (),
          provenance_mode: bool | str = False, cache_from: Sequence[str] = (),
          cache_to: Sequence[str] = ()) -> BuildOutput:
    """Build ``dockerfile`` (text, or a path to one) with ``context`` into ``store``.

    Several platforms (``linux/amd64,linux/arm64``) are built in turn and the tags point at
    an OCI index of them. ``ssh``: ``--ssh`` specs or a mapping id → socket/key paths.
    ``provenance_mode``: ``True``/``"mode=min"``/``"mode=max"`` attaches a SLSA provenance
    statement to each image manifest. ``cache_from``/``cache_to``: buildx specs."""
    ctx_dir = Path(context)
    if not ctx_dir.is_dir():
        raise BuildError(f"build context {str(ctx_dir)!r} is not a directory")
    plats = parse_platforms(platform)
    text, name = read_dockerfile(dockerfile, ctx_dir)
    args = dict(build_args or {})
    for t in tags:
        Reference.parse(t)  # fail before building, not after
    parse(text, build_args=args, target=target, filename=name)  # syntax errors before any work
    mode = _provenance_mode(provenance_mode)
    caches = CacheOptions.parse(cache_from, cache_to, args)  # bad specs fail before any work
    options = BuildOptions(no_cache=no_cache, secrets=read_secrets(secrets), ssh=read_ssh(ssh))
    reporter = StepReporter(progress)
    remote = caches.load(store, reporter, plats[0], no_cache=no_cache)  # warnings only
    session = BuildSession.open(store, options, reporter, remote=remote)
    try:
        ctx = BuildContext.open(ctx_dir, name, session.stat_cache)
        inputs = BuildInputs(name, text, ctx, args, target, tuple(tags))
        with store.operation():  # per-platform manifests stay safe from prune until indexed
            children = [(plat, _build_platform(session, inputs, caches, plat, len(plats) > 1,
                                               mode))
                        for plat in plats]
            digest = export_index(store, children, tags) if len(plats) > 1 else children[0][1]
            caches.export(session)  # --cache-to type=registry, once every platform is built
    finally:
        session.close()
    return BuildOutput(digest, tuple(plats))


def _provenance_mode(value: bool | str) -> str | None:
    if value is False or value is None:
        return None  # (the statement code loads only for a build that writes one)
    from .provenance import parse_mode

    return parse_mode(value)


def _build_platform(session: BuildSession, inputs: BuildInputs, caches: CacheOptions,
                    platform: Platform, multi: bool, mode: str | None) -> Digest:
    """Solve and export the image of one platform; its manifest digest."""
    plan = _plan(session, inputs, platform)
    epoch = source_date_epoch(inputs.build_args, plan.meta_args)
    target = Target(platform, str(platform) if multi else "", epoch, dict(plan.proxy_env))
    started = rfc3339(epoch)
    result = Solver(session, target).solve(plan, inputs.context)
    inline = caches.collect(result, plan)  # --cache-to entries (+ an inline cache)
    digest = export_image(session.store, result.state, () if multi else inputs.tags,
                          config_extra=inline)
    if mode:
        attach_provenance(session, inputs, plan, target, result, digest, started, mode)
    return digest


def _plan(session: BuildSession, inputs: BuildInputs, platform: Platform) -> BuildPlan:
    """The plan for ``platform``. Expansion sees each base image's environment (``ENV
    PATH=/x:$PATH``), as in BuildKit, so bases are resolved (pulled if need be) here."""
    def base_env(image: str, plat: str) -> dict[str, str]:
        return session.bases.state(image, Platform.parse(plat))[0].config.env_dict()

    return parse(inputs.dockerfile_text, build_args=inputs.build_args, target=inputs.target,
                 filename=inputs.dockerfile_name, platform=platform, base_env=base_env)

"""``build()``: a Dockerfile and a context become an image (or an index) in the store.

Inputs are checked before any work (Dockerfile syntax, tags, cache and provenance specs).
A build the memo (``memo.py``) has seen with the same inputs and unchanged sources is
answered from it. Otherwise one build session solves the Dockerfile per target platform,
exports each image (with its provenance and inline cache), writes the index of a
multi-platform build and pushes ``--cache-to`` caches. Nothing half-written becomes visible:
blobs, snapshots and cache entries are published by rename, and scratch dirs are removed on
any exit, Ctrl-C included.

The frontend and the solver are imported when a build is really solved, so a build the memo
answers loads neither (command-line start-up is most of a cached build's time).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import BuildError
from ..oci.digest import Digest
from ..oci.platform import Platform
from ..oci.reference import Reference
from ..progress import Kind, ProgressEvent, ProgressFn, null_progress
from ..store import Store
from . import memo, proxies
from .inputs import SecretSpec, read_dockerfile, read_secrets, read_ssh
from .platforms import parse_platforms

if TYPE_CHECKING:
    from ..dockerfile import BuildPlan
    from ..sandbox.hardening import Hardening
    from .export import BuildInputs
    from .remote_cache import CacheOptions
    from .session import BuildOptions, BuildSession
    from .solver import BuildResult


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
          cache_to: Sequence[str] = (), isolation: str | None = None,
          host_ca: bool | None = None, hardening: Hardening | None = None) -> BuildOutput:
    """Build ``dockerfile`` (text, or a path to one) with ``context`` into ``store``.

    Several platforms (``linux/amd64,linux/arm64``) are built in turn and the tags point at
    an OCI index of them. ``ssh``: ``--ssh`` specs or a mapping id → socket/key paths.
    ``provenance_mode``: ``True``/``"mode=min"``/``"mode=max"`` attaches a SLSA provenance
    statement to each image manifest. ``cache_from``/``cache_to``: buildx specs.
    ``isolation``: the rung for RUN steps (``auto``, ``full``, ``reduced``, ``ptrace``,
    ``none``; default ``$NBCONTAINER_ISOLATION``, else the strongest that works here).
    ``host_ca``: RUN steps trust the CAs this host trusts, for the step only (``hostca.py``;
    default ``$NBCONTAINER_HOST_CA``). Proxies of the environment and of docker's
    config.json reach RUN steps as BuildKit's predefined proxy args (``proxies.py``)."""
    ctx_dir = Path(context)
    if not ctx_dir.is_dir():
        raise BuildError(f"build context {str(ctx_dir)!r} is not a directory")
    plats = parse_platforms(platform)
    text, name = read_dockerfile(dockerfile, ctx_dir)
    args = dict(build_args or {})
    for t in tags:
        Reference.parse(t)  # fail before building, not after
    secret_values = read_secrets(secrets)
    ssh_map = read_ssh(ssh)
    found = proxies.ambient()
    request = memo.Request(text, name, ctx_dir, args, target, [str(p) for p in plats],
                           tuple(secret_values), tuple(ssh_map), found,
                           tuple(hardening.allow) if hardening else ())
    # (a --no-cache build is remembered too: its result is what the cache holds now)
    remembered = not (provenance_mode or cache_from or cache_to)
    # the context as the build finds it; recorded only if it is the same after the build
    before = memo.fingerprint(ctx_dir) if remembered else None
    hit = memo.lookup(store, request, before) if before and not no_cache else None
    if hit is not None:
        memo.replay(hit, progress or null_progress)
        for t in tags:
            store.tag(str(hit.digest), t)
        return BuildOutput(hit.digest, tuple(plats))
    from .certs import host_ca_default
    from .session import BuildOptions

    options = BuildOptions(no_cache=no_cache, secrets=secret_values, ssh=ssh_map,
                           isolation=isolation, proxy_env=found,
                           host_ca=host_ca_default() if host_ca is None else host_ca,
                           hardening=hardening)
    return _solve(store, request, options, plats, tags, progress, provenance_mode, cache_from,
                  cache_to, remember=before)


def _solve(store: Store, request: memo.Request, options: BuildOptions, plats: list[Platform],
           tags: Sequence[str], progress: ProgressFn | None, provenance_mode: bool | str,
           cache_from: Sequence[str], cache_to: Sequence[str], *, remember: str | None
           ) -> BuildOutput:
    from ..dockerfile import parse
    from .export import BuildInputs, export_index
    from .remote_cache import CacheOptions
    from .reporter import StepReporter
    from .session import BuildSession
    from .sources.context import BuildContext

    args, target = dict(request.build_args), request.target
    first = parse(request.dockerfile_text, build_args=args, target=target,
                  filename=request.dockerfile_name)  # syntax errors before any work
    mode = _provenance_mode(provenance_mode)
    caches = CacheOptions.parse(cache_from, cache_to, args)  # bad specs fail before any work
    steps = _StepLog(progress)
    reporter = StepReporter(steps)
    reporter.emit(ProgressEvent(Kind.PLAN, "", total=step_count(first) * len(plats)))
    remote = caches.load(store, reporter, plats[0], no_cache=options.no_cache)  # warnings only
    session = BuildSession.open(store, options, reporter, remote=remote)
    try:
        ctx = BuildContext.open(request.context, request.dockerfile_name, session.stat_cache)
        inputs = BuildInputs(request.dockerfile_name, request.dockerfile_text, ctx, args,
                             target, tuple(tags))
        with store.operation():  # per-platform manifests stay safe from prune until indexed
            built = [_build_platform(session, inputs, caches, plat, len(plats) > 1, mode)
                     for plat in plats]
            children = [(plat, digest) for plat, (digest, _, _) in zip(plats, built, strict=True)]
            digest = export_index(store, children, tags) if len(plats) > 1 else children[0][1]
            caches.export(session)  # --cache-to type=registry, once every platform is built
    finally:
        session.close()
    if remember and all(_memorable(plan) for _, plan, _ in built):
        _remember(store, request, digest, plats, [r for _, _, r in built], steps.started,
                  remember)
    return BuildOutput(digest, tuple(plats))


def _provenance_mode(value: bool | str) -> str | None:
    if value is False or value is None:
        return None  # (the statement code loads only for a build that writes one)
    from .provenance import parse_mode

    return parse_mode(value)


def _build_platform(session: BuildSession, inputs: BuildInputs, caches: CacheOptions,
                    platform: Platform, multi: bool, mode: str | None
                    ) -> tuple[Digest, BuildPlan, BuildResult]:
    """Solve and export the image of one platform: its manifest digest, plan and result."""
    from ..timestamps import rfc3339, source_date_epoch
    from .export import attach_provenance, export_image
    from .history import with_sources
    from .session import Target
    from .solver import Solver

    plan = _plan(session, inputs, platform)
    epoch = source_date_epoch(inputs.build_args, plan.meta_args)
    # --build-arg proxies over those found around the build (proxies.py)
    proxy_env = proxies.overlay(session.options.proxy_env, plan.proxy_env)
    target = Target(platform, str(platform) if multi else "", epoch, proxy_env)
    started = rfc3339(epoch)
    result = Solver(session, target).solve(plan, inputs.context)
    inline = caches.collect(result, plan)  # --cache-to entries (+ an inline cache)
    name = inputs.dockerfile_name
    located = replace(result.state, history=with_sources(
        result.state.history, result.lines, os.path.basename(name) if os.path.isabs(name)
        else name))
    digest = export_image(session.store, located, () if multi else inputs.tags,
                          config_extra=inline)
    if mode:
        attach_provenance(session, inputs, plan, target, result, digest, started, mode)
    return digest, plan, result


def step_count(plan: BuildPlan) -> int:
    """The numbered steps a build of ``plan`` shows (``[2/4] RUN make``): each stage's
    FROM and its RUN/COPY/ADD/WORKDIR instructions (ONBUILD triggers of a base add theirs
    when the base is read)."""
    from .steps import numbered

    return sum(1 + sum(1 for i in plan.stages[s].instructions if numbered(i))
               for s in plan.order)


def _plan(session: BuildSession, inputs: BuildInputs, platform: Platform) -> BuildPlan:
    """The plan for ``platform``. Expansion sees each base image's environment (``ENV
    PATH=/x:$PATH``), as in BuildKit, so bases are resolved (pulled if need be) here."""
    from ..dockerfile import parse

    def base_env(image: str, plat: str) -> dict[str, str]:
        return session.bases.state(image, Platform.parse(plat))[0].config.env_dict()

    return parse(inputs.dockerfile_text, build_args=inputs.build_args, target=inputs.target,
                 filename=inputs.dockerfile_name, platform=platform, base_env=base_env)


# ---------------------------------------------------------------------- the memo


class _StepLog:
    """Passes progress on and keeps the steps' START events (what a memo hit replays)."""

    def __init__(self, progress: ProgressFn | None) -> None:
        self.progress = progress or null_progress
        self.started: list[ProgressEvent] = []

    def __call__(self, event: ProgressEvent) -> None:
        if event.kind == Kind.START:
            self.started.append(event)
        self.progress(event)


def _memorable(plan: BuildPlan) -> bool:
    """Whether a build of ``plan`` read nothing but the context and the store: ``ADD`` of a
    URL or a git repository reads the network, whose answer may change."""
    from ..dockerfile import Add

    return not any(isinstance(instr, Add) and any(k != "local" for k in instr.source_kinds())
                   for stage in plan.stages_to_build() for instr in stage.instructions)


def _remember(store: Store, request: memo.Request, digest: Digest, plats: Sequence[Platform],
              results: Sequence[BuildResult], started: Sequence[ProgressEvent],
              before: str) -> None:
    bases = sorted({(name, plat, str(stored.digest))
                    for r in results for (name, plat), stored in r.bases.items()})
    # the last step of every stage: a pruned cache index makes the memo a miss
    keys = sorted({list(entries)[-1] for r in results
                   for entries in r.stage_entries.values() if entries})
    memo.record(store, request, digest, [str(p) for p in plats], bases, keys, started, before)

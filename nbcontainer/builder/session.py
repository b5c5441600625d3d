"""The values one build shares: a frozen session of collaborators and per-platform targets.

A ``build()`` call opens one :class:`BuildSession` (the store, the executor that runs RUN
steps, the snapshots and cache index, the progress reporter, secrets and ssh sockets, the
base images read so far) and solves the Dockerfile once per target platform
(:class:`Target`). Nothing in the builder reaches into another module's private state:
steps get the session and their stage's :class:`~.stage.StageRun` explicitly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from ..oci.digest import Digest
from ..oci.platform import Platform
from ..store import Store
from ..store.snapshots import Snapshots, build_area
from .cache import BuildCache
from .janitor import Janitor
from .reporter import StepReporter
from .scratch import ScratchPool
from .sources.context import StatCache
from .sources.image import BaseImages
from .state import ImageState

if TYPE_CHECKING:
    from ..sandbox import Executor
    from ..sandbox.fileops import FileOps
    from ..sandbox.hardening import Hardening
    from ..sandbox.ladder import Choice
    from .certs import HostTrust
    from .remote_cache import RemoteCache
    from .ssh import SshAgents


@dataclass(frozen=True)
class BuildOptions:
    """What the user asked for that holds for the whole build."""

    no_cache: bool = False
    secrets: Mapping[str, bytes] = field(default_factory=dict, repr=False)
    ssh: Mapping[str, Sequence[str]] = field(default_factory=dict)  # id → socket | keys
    isolation: str | None = None  # --isolation (None: $NBCONTAINER_ISOLATION, else auto)
    host_ca: bool = False  # --host-ca: RUN steps trust the host's CAs (hostca.py)
    # Proxies found around the build (environment, docker's config.json: proxies.py), given
    # to RUN steps as BuildKit's predefined proxy args.
    proxy_env: Mapping[str, str] = field(default_factory=dict, repr=False)
    hardening: Hardening | None = None  # --allow, --security-opt, limits (None: defaults)


def announce(reporter: StepReporter, choice: Choice) -> None:
    """The build's one line naming its rung (a warning when it is not the full one), and
    the single-id map's admin fix once."""
    from ..progress import Kind, ProgressEvent

    kind = Kind.INFO if choice.rung == "full" else Kind.WARNING
    reporter.emit(ProgressEvent(kind, "", text=choice.line()))
    for finding in choice.replaced:
        if finding.what == "single-id map" and finding.admin_fix:
            reporter.emit(ProgressEvent(
                Kind.WARNING, "", text="no subordinate id range is usable, so only root "
                "exists in RUN steps: ownership set by RUN (chown, useradd -m) is not kept "
                f"and files belong to root; fix: {finding.admin_fix}"))
    if choice.rung == "ptrace":
        reporter.emit(ProgressEvent(
            Kind.WARNING, "", text="ptrace rung: RUN steps share the host's processes; "
            "without a network namespace they get no network unless the build allows the "
            "host's (--allow network.host); ownership set by RUN (chown, useradd -m) is not "
            "recorded and files they create belong to root"))
    elif choice.rung in ("full", "reduced"):
        from ..sandbox.network import detect

        stack = detect()
        if not stack.usable:  # said once per build: RUNs on the default network get none
            reporter.emit(ProgressEvent(
                Kind.WARNING, "", text=f"no private network for RUN steps: {stack.problem}; "
                "RUN steps on the default network get no network (the host's only if the "
                f"build allows it: --allow network.host); fix: {stack.remedy}"))


@dataclass(frozen=True)
class Target:
    """One platform of a build: what its stages are built for and how its steps are named."""

    platform: Platform
    label: str = ""  # "linux/arm64" in step names of a multi-platform build
    epoch: int | None = None  # SOURCE_DATE_EPOCH: created times and clamped file times
    proxy_env: Mapping[str, str] = field(default_factory=dict)

    def stage_label(self, stage_name: str | None) -> str:
        return " ".join(p for p in (self.label, stage_name) if p)


@dataclass(frozen=True)
class BuildSession:
    """What one build shares. The executor and everything that depends on its id map (the
    snapshot set, file operations, scratch dirs, ssh agent sockets) are made when a step
    first needs them: a fully cached build starts no sandbox and loads none of its code."""

    store: Store
    options: BuildOptions
    reporter: StepReporter
    cache: BuildCache
    janitor: Janitor
    stat_cache: StatCache
    bases: BaseImages
    remote: RemoteCache | None = None  # --cache-from, consulted after the local index
    given_executor: Executor | None = None  # one the caller keeps (and closes) itself

    @classmethod
    def open(cls, store: Store, options: BuildOptions, reporter: StepReporter, *,
             remote: RemoteCache | None = None, executor: Executor | None = None
             ) -> BuildSession:
        janitor = Janitor()
        return cls(store=store, options=options, reporter=reporter,
                   cache=BuildCache(store, janitor.submit), janitor=janitor,
                   stat_cache=StatCache(build_area(store) / f"statcache-{os.getuid()}.json"),
                   bases=BaseImages(store, reporter), remote=remote, given_executor=executor)

    # (functools.cached_property writes the instance's __dict__ directly, which a frozen
    # dataclass allows: each of these is made once, on first use.)
    @cached_property
    def executor(self) -> Executor:
        if self.given_executor is not None:
            return self.given_executor
        from ..sandbox import open_executor

        # The isolation ladder: the rung is chosen (and the probe run) on first real use.
        reporter = self.reporter
        return open_executor(self.options.isolation, scratch_parent=build_area(self.store),
                             notify=lambda choice: announce(reporter, choice),
                             hardening=self.hardening)

    @cached_property
    def hardening(self) -> Hardening:
        """The build's entitlements and limits (RUN --network/--security are checked
        against them before the cache is asked)."""
        from ..sandbox.hardening import Hardening

        return self.options.hardening or Hardening()

    @cached_property
    def host_trust(self) -> HostTrust:
        """The CAs this host trusts (read when a RUN needs them: --host-ca, a failure)."""
        from .certs import host_trust

        return host_trust()

    @cached_property
    def fileops(self) -> FileOps:
        from ..sandbox.fileops import FileOps

        return FileOps(self.executor)  # it asks the executor how files are owned when needed

    @cached_property
    def snapshots(self) -> Snapshots:
        box = self.executor
        idmap = box.idmap.map_lines("uid") + box.idmap.map_lines("gid")
        snapshots = Snapshots.open(self.store, self.fileops, idmap if box.rootless else None,
                                   vfs=box.vfs, records=box.records)
        remote = self.remote
        if remote is not None:  # blobs of --cache-from hits arrive when first read
            snapshots.before_extract = lambda layers: remote.ensure([b for b, _ in layers])
        return snapshots

    @cached_property
    def scratch(self) -> ScratchPool:
        return ScratchPool(self.snapshots, self.janitor, self.fileops)

    @cached_property
    def agents(self) -> SshAgents:
        from .ssh import SshAgents

        return SshAgents(self.executor.idmap)

    def close(self) -> None:
        made = self.__dict__
        if "agents" in made:
            self.agents.close()
        if "scratch" in made:
            self.scratch.close()
        if "snapshots" in made:
            self.snapshots.drop_spares()
        self.janitor.close()
        if self.remote is not None:
            self.remote.close()
        if "executor" in made and self.given_executor is None:
            self.executor.close()

    # ------------------------------------------------------------------ ids

    @property
    def rootless(self) -> bool:
        return self.executor.rootless

    def to_uid(self, host: int) -> int:
        """A host uid (as files in a rootless upper dir show it) as the container's."""
        try:
            return self.executor.idmap.to_container_uid(host)
        except KeyError:
            return 65534

    def to_gid(self, host: int) -> int:
        try:
            return self.executor.idmap.to_container_gid(host)
        except KeyError:
            return 65534

    # ------------------------------------------------------------------ cache and trees

    def cached(self, key: str) -> ImageState | None:
        """The state recorded for a step key: the local index, then ``--cache-from``."""
        if self.options.no_cache:
            return None
        hit = self.cache.get(key)
        if hit is None and self.remote is not None:
            hit = self.remote.get(key)  # its blobs are fetched when needed
            if hit is not None:
                self.cache.put(key, hit)
        return hit

    def lowers(self, state: ImageState) -> list[Path]:
        """The state's layers as overlay lower dirs (top first)."""
        return self.snapshots.lowers_or_empty(state.layer_pairs)

    def fetch_layers(self, blobs: Sequence[Digest]) -> None:
        """Make sure the store holds these blobs (``--cache-from`` hits fetch lazily)."""
        if self.remote is not None:
            self.remote.ensure(list(blobs))

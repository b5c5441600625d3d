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
from pathlib import Path
from typing import TYPE_CHECKING

from ..oci.digest import Digest
from ..oci.platform import Platform
from ..sandbox import Sandbox
from ..sandbox.fileops import FileOps
from ..store import Store
from ..store.snapshots import Snapshots, build_area
from .cache import BuildCache
from .janitor import Janitor
from .reporter import StepReporter
from .scratch import ScratchPool
from .sources.context import StatCache
from .sources.image import BaseImages
from .ssh import SshAgents
from .state import ImageState

if TYPE_CHECKING:
    from .remote_cache import RemoteCache


@dataclass(frozen=True)
class BuildOptions:
    """What the user asked for that holds for the whole build."""

    no_cache: bool = False
    secrets: Mapping[str, bytes] = field(default_factory=dict, repr=False)
    ssh: Mapping[str, Sequence[str]] = field(default_factory=dict)  # id → socket | keys


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
    store: Store
    options: BuildOptions
    reporter: StepReporter
    executor: Sandbox
    fileops: FileOps
    snapshots: Snapshots
    cache: BuildCache
    janitor: Janitor
    scratch: ScratchPool
    stat_cache: StatCache
    agents: SshAgents
    bases: BaseImages
    remote: RemoteCache | None = None  # --cache-from, consulted after the local index
    own_executor: bool = True

    @classmethod
    def open(cls, store: Store, options: BuildOptions, reporter: StepReporter, *,
             remote: RemoteCache | None = None, executor: Sandbox | None = None
             ) -> BuildSession:
        own = executor is None
        box = executor if executor is not None else Sandbox()
        fileops = FileOps(box if box.rootless else None)
        idmap = box.idmap.map_lines("uid") + box.idmap.map_lines("gid")
        snapshots = Snapshots.open(store, fileops, idmap if box.rootless else None)
        if remote is not None:  # blobs of --cache-from hits arrive when first read
            snapshots.before_extract = lambda layers: remote.ensure([b for b, _ in layers])
        janitor = Janitor()
        return cls(
            store=store, options=options, reporter=reporter, executor=box, fileops=fileops,
            snapshots=snapshots, cache=BuildCache(store, janitor.submit), janitor=janitor,
            scratch=ScratchPool(snapshots, janitor, fileops),
            stat_cache=StatCache(build_area(store) / f"statcache-{os.getuid()}.json"),
            agents=SshAgents(box.idmap), bases=BaseImages(store, reporter), remote=remote,
            own_executor=own)

    def close(self) -> None:
        self.agents.close()
        self.scratch.close()
        self.janitor.close()
        if self.remote is not None:
            self.remote.close()
        if self.own_executor:
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

"""The per-stage run context every step gets: where it is, what it may read, how it records.

A :class:`StageRun` is made by the solver for one stage of one target platform. Steps read
their stage's plan and build context through it, resolve ``--from`` values, look up and record
cache entries, number their progress step, and append history entries.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..dockerfile import BuildPlan, Stage
from ..oci.config import History
from ..oci.platform import Platform
from ..timestamps import mtime_ns, rfc3339
from . import history as hist
from .reporter import Step
from .session import BuildSession, Target
from .sources.context import BuildContext
from .sources.image import scratch_state
from .state import ImageState

Args = list[tuple[str, str | None]]  # the build args a stage declared so far (ARG)


@dataclass(frozen=True)
class StageResult:
    state: ImageState
    key: str
    # history index → (first, last) Dockerfile line of the instruction that made the entry
    lines: Mapping[int, tuple[int, int]] = field(default_factory=dict)


@dataclass
class StageRun:
    session: BuildSession
    target: Target
    plan: BuildPlan
    stage: Stage
    ctx: BuildContext
    results: Mapping[int, StageResult]  # the finished stages this one may read
    args: Args = field(default_factory=list)
    numbers: Iterator[int] = field(default_factory=lambda: iter(()))
    steps: int = 1

    # ------------------------------------------------------------------ progress

    @property
    def label(self) -> str:
        return self.target.stage_label(self.stage.name)

    def step(self, text: str) -> Step:
        """The next numbered step of this stage (``[build 2/4] RUN make``)."""
        return self.session.reporter.step(text, stage=self.label,
                                          number=next(self.numbers, self.steps), of=self.steps)

    # ------------------------------------------------------------------ reading

    def resolve_from(self, ref: str) -> tuple[ImageState, str]:
        """A ``--from``/``FROM`` value: a stage (name or index), ``scratch`` or an image."""
        try:
            index = self.plan.stage(ref).index
        except KeyError:
            index = None
        if index is not None:
            res = self.results[index]
            return res.state, res.key
        if ref == "scratch":
            return scratch_state(self.target.platform)
        return self.session.bases.state(ref, self.target.platform)

    def base(self, platform: Platform | None) -> tuple[ImageState, str]:
        """The state this stage starts from (``FROM``), for ``platform`` when it names one."""
        stage = self.stage
        if stage.base_stage is not None:
            res = self.results[stage.base_stage]
            return res.state, res.key
        if stage.base_name == "scratch":
            return scratch_state(platform or self.target.platform)
        return self.session.bases.state(stage.base_name, platform or self.target.platform)

    def lowers(self, state: ImageState) -> list[Path]:
        return self.session.lowers(state)

    # ------------------------------------------------------------------ recording

    def cached(self, key: str) -> ImageState | None:
        return self.session.cached(key)

    def record(self, key: str, state: ImageState) -> None:
        self.session.cache.put(key, state)

    def history(self, state: ImageState, created_by: str, empty: bool) -> ImageState:
        """``state`` with one more history entry (and ``created`` moved to now/the epoch)."""
        created = rfc3339(self.target.epoch)
        entry = History(created=created, created_by=created_by, comment=hist.COMMENT,
                        empty_layer=empty)
        return replace(state, history=(*state.history, entry), created=created)

    def now_ns(self) -> int:
        """The mtime of entries a step creates (clamped to SOURCE_DATE_EPOCH when set)."""
        return mtime_ns(self.target.epoch)

"""The solver: a plan's stages in dependency order (independent ones concurrently), each
stage's instructions as steps, every step looked up in the cache by its key first.

One :class:`Solver` builds a plan for one target platform within a build session. It gives
each stage a :class:`~.stage.StageRun` (its numbered progress steps, the finished stages it
may read) and returns a :class:`BuildResult`: the target stage's state and key, every step
key with its state per stage (what ``--cache-to`` exports) and the base images read (what
provenance records).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import partial

from ..dockerfile import (
    BuildPlan,
    DockerfileError,
    Instruction,
    Lexer,
    Stage,
    parse_instruction,
    parse_syntax,
)
from ..errors import BuildError, NbcontainerError, SourceExcerpt
from ..oci.platform import Platform
from ..store import StoredImage
from .session import BuildSession, Target
from .sources.context import BuildContext
from .stage import StageResult, StageRun
from .state import ImageState
from .steps import execute, numbered

StageEntries = dict[int, dict[str, ImageState]]  # stage index → {step key: state}


@dataclass(frozen=True)
class BuildResult:
    state: ImageState
    key: str
    stage_entries: Mapping[int, Mapping[str, ImageState]]
    bases: Mapping[tuple[str, str], StoredImage]  # (name, platform) → the image read
    # history index → the Dockerfile lines of the instruction that made the entry
    lines: Mapping[int, tuple[int, int]] = field(default_factory=dict)


class Solver:
    def __init__(self, session: BuildSession, target: Target) -> None:
        self.session = session
        self.target = target

    def solve(self, plan: BuildPlan, ctx: BuildContext) -> BuildResult:
        entries: StageEntries = {}
        results: dict[int, StageResult] = {}
        try:
            if all(len(group) == 1 for group in plan.parallel_groups):
                for i in plan.order:
                    results[i] = self._stage(plan, plan.stages[i], ctx, results, entries)
            else:
                self._parallel_stages(plan, ctx, results, entries)
        finally:
            self.session.janitor.drain()
            self.session.stat_cache.save()
        result = results[plan.target]
        self.session.fetch_layers([lr.blob for lr in result.state.layers])  # for the export
        return BuildResult(result.state, result.key, entries, dict(self.session.bases.used),
                           result.lines)

    def _parallel_stages(self, plan: BuildPlan, ctx: BuildContext,
                         results: dict[int, StageResult], entries: StageEntries) -> None:
        """Each stage starts as soon as the stages it needs are built (not level by level,
        so a slow stage holds back only its dependants), at most ``os.cpu_count()`` at once.
        After a failure nothing new starts; running stages finish, then the error is raised.
        ``results`` is written only here, and a stage reads only its finished dependencies."""
        from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

        deps = {i: {j for j in plan.stages[i].stage_deps if j in plan.reachable}
                for i in plan.order}
        waiting = list(plan.order)
        running: dict[Future[StageResult], int] = {}
        error: BaseException | None = None
        workers = max(1, min(os.cpu_count() or 1, len(waiting)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="stage") as pool:
            try:
                while waiting or running:
                    if error is None:
                        for i in [i for i in waiting if deps[i] <= results.keys()]:
                            waiting.remove(i)
                            running[pool.submit(self._stage, plan, plan.stages[i], ctx,
                                                results, entries)] = i
                    if not running:
                        break
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        i = running.pop(fut)
                        try:
                            results[i] = fut.result()
                        except BaseException as exc:
                            error = error or exc
            except BaseException:
                for fut in running:  # Ctrl-C: drop queued stages, let running ones unwind
                    fut.cancel()
                raise
        if error is not None:
            raise error

    # ------------------------------------------------------------------ one stage

    def _stage(self, plan: BuildPlan, stage: Stage, ctx: BuildContext,
               results: Mapping[int, StageResult], entries: StageEntries) -> StageResult:
        steps = sum(1 for i in stage.instructions if numbered(i)) + 1
        run = StageRun(self.session, self.target, plan, stage, ctx, results,
                       numbers=iter(range(1, steps + 2)), steps=steps)
        state, key = self._from(run)
        recorded = entries.setdefault(stage.index, {})
        # The history entries of this Dockerfile: a base stage's, then each instruction's.
        lines = dict(results[stage.base_stage].lines) if stage.base_stage is not None else {}
        # ONBUILD triggers of the base run first, then are cleared (Docker's rule).
        triggers = _triggers(state, plan)
        if state.config.on_build:
            state = replace(state, config=replace(state.config, on_build=None))
        todo: list[tuple[int, Instruction, bool]] = [(0, t, True) for t in triggers]
        todo += [(i, ins, False) for i, ins in enumerate(stage.instructions)]
        for pos, instr, is_trigger in todo:
            before = len(state.history)
            try:
                state, key = execute(run, state, key, pos, instr, is_trigger)
            except DockerfileError:
                raise
            except NbcontainerError as exc:
                _locate(exc, plan, instr)
                raise
            recorded[key] = state
            if not is_trigger and instr.line:  # (a trigger's lines are the base's ONBUILD)
                for index in range(before, len(state.history)):
                    lines[index] = (instr.line, max(instr.line, instr.end_line))
        return StageResult(state, key, lines)

    def _from(self, run: StageRun) -> tuple[ImageState, str]:
        """The ``FROM`` step: the base stage, scratch or an image (pulled when missing)."""
        stage = run.stage
        with run.step(f"FROM {stage.base_name}") as step:
            # FROM --platform (e.g. $BUILDPLATFORM) picks the base for that platform.
            plat = Platform.parse(stage.platform) if stage.platform else None
            state, key = run.base(plat)
            wanted = plat or self.target.platform
            if stage.base_stage is None and stage.base_name != "scratch" and \
                    (state.os, state.architecture) != (wanted.os, wanted.architecture):
                # a single-platform base: used as it is, like BuildKit, which warns too
                step.warn(f"InvalidBaseImagePlatform: base image {stage.base_name} has "
                          f"platform {state.os}/{state.architecture}, expected {wanted} for "
                          "this build")
        return replace(state, cmd_set=False), key


def _triggers(state: ImageState, plan: BuildPlan) -> list[Instruction]:
    """The base image's ONBUILD instructions, parsed and expanded in its environment."""
    out: list[Instruction] = []
    env = state.config.env_dict()
    lexer = Lexer(plan.escape_token)
    for expr in state.config.on_build or ():
        tree = parse_syntax(expr, filename="ONBUILD")
        for node in tree.nodes:
            instr = parse_instruction(node, lines=tree.lines, filename="ONBUILD")
            if instr.keyword in ("ONBUILD", "FROM", "MAINTAINER"):
                raise BuildError(f"{instr.keyword} isn't allowed as an ONBUILD trigger")
            out.append(instr.expand(partial(_expand, lexer, env)))
    return out


def _expand(lexer: Lexer, env: dict[str, str], word: str) -> str:
    return lexer.process(word, env).result


def _locate(exc: NbcontainerError, plan: BuildPlan, instr: Instruction) -> None:
    """Say where a step's error happened: its message starts ``Dockerfile:3: RUN: …`` and it
    carries the Dockerfile excerpt BuildKit prints (the instruction's lines marked)."""
    if not instr.line:
        return
    if exc.excerpt is None and plan.syntax.lines:
        exc.excerpt = SourceExcerpt(plan.syntax.filename, tuple(plan.syntax.lines), instr.line,
                                    max(instr.line, instr.end_line))
    if "line" not in exc.message[:80]:
        exc.message = f"{plan.syntax.filename}:{instr.line}: {instr.keyword}: {exc.message}"
        exc.args = (exc.message,)

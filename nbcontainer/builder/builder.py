"""The embedded builder: a Dockerfile and a context become an image in the store.

Stages run in plan order (independent ones concurrently), each step is looked up in the cache
by its key first, RUN goes through the namespace sandbox over the stacked snapshots, COPY/ADD
write a diff dir; every new layer is written once, from its diff, straight into the store.
Nothing half-written becomes visible: blobs, snapshots and cache entries are published by
rename, and scratch dirs are removed on any exit, including Ctrl-C.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from ..dockerfile import (
    Add,
    Arg,
    BuildPlan,
    Cmd,
    Copy,
    DockerfileError,
    Entrypoint,
    Instruction,
    Lexer,
    Onbuild,
    Run,
    Stage,
    Workdir,
    parse_instruction,
    parse_syntax,
)
from ..dockerfile.instructions import add_source_kind, instruction_fields
from ..errors import BuildError, ImageNotFound, NbcontainerError
from ..oci import mediatypes as mt
from ..oci.config import ContainerConfig, History
from ..oci.descriptor import Descriptor
from ..oci.digest import Digest
from ..oci.manifest import Manifest
from ..oci.platform import Platform
from ..progress import ProgressEvent, ProgressFn, null_progress
from ..sandbox.fileops import FileOps
from ..store import Store
from ..store.buildcache import step_key
from ..store.snapshots import Snapshots, chain_ids, temp_name
from . import copy as copymod
from . import history as hist
from . import metadata
from .cache import BuildCache
from .context import BuildContext, StatCache
from .fsview import StackView
from .janitor import Janitor
from .mounts import MountManager
from .state import ImageState, LayerRef

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_PURE_HEREDOC = re.compile(r"^\s*<<(-?)([\"']?)([A-Za-z_][\w.-]*)\2\s*$")


def timestamp(epoch: int | None) -> str:
    import datetime as dt

    if epoch is not None:
        return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class StageResult:
    state: ImageState
    key: str


class _Step:
    """One numbered progress step (``#3 [build 2/4] RUN make``)."""

    def __init__(self, builder: Builder, name: str) -> None:
        self.builder = builder
        with builder._lock:
            builder._counter += 1
            self.id = f"#{builder._counter}"
        self.start = time.monotonic()
        self._partial = b""
        builder.emit("start", self.id, name)

    def output(self, chunk: bytes) -> None:
        data = self._partial + chunk
        *lines, self._partial = data.split(b"\n")
        for line in lines:
            self.builder.emit("log", self.id, line.decode("utf-8", "replace"),
                              current=int((time.monotonic() - self.start) * 1000))

    def cached(self) -> None:
        self.builder.emit("cached", self.id, "CACHED")

    def done(self) -> None:
        if self._partial:
            self.output(b"\n")
        self.builder.emit("done", self.id, f"DONE {time.monotonic() - self.start:.1f}s",
                          current=int((time.monotonic() - self.start) * 1000))

    def error(self, exc: BaseException) -> None:
        if self._partial:
            self.output(b"\n")
        self.builder.emit("error", self.id, f"ERROR: {getattr(exc, 'message', exc)}")


class Builder:
    """Builds plans into one store. Reusable across builds (the sandbox stays warm)."""

    def __init__(self, store: Store, *, progress: ProgressFn | None = None,
                 no_cache: bool = False, secrets: Mapping[str, bytes] | None = None,
                 sandbox: Any | None = None, platform: Platform | None = None,
                 ssh: Mapping[str, Sequence[str]] | None = None) -> None:
        self.store = store
        self.progress = progress or null_progress
        self.no_cache = no_cache
        self.secrets = dict(secrets or {})
        self.platform = platform or Platform.host()
        self._own_sandbox = sandbox is None
        self._sandbox = sandbox
        self._lock = threading.Lock()
        self._counter = 0
        self._idmap = self.sandbox.idmap
        rootless = self.sandbox.rootless
        self.privileged = FileOps(self.sandbox if rootless else None)
        self.snapshots = Snapshots.open(
            store, self.privileged,
            self._idmap.map_lines("uid") + self._idmap.map_lines("gid") if rootless else None)
        self.snapshots.before_extract = self._fetch_layers
        self.janitor = Janitor()
        self._scratch_pool: list[Path] = []
        self.cache = BuildCache(store, self.janitor.submit)
        self.stat_cache = StatCache(store.home / "build" / f"statcache-{os.getuid()}.json")
        self._image_states: dict[tuple[str, str], tuple[ImageState, str]] = {}
        # (name, platform) → StoredImage: the bases provenance records
        self.base_images: dict[tuple[str, str], Any] = {}
        self.epoch: int | None = None
        self.proxy_env: dict[str, str] = {}
        self.ssh = {k: list(v) for k, v in (ssh or {}).items()}  # id -> socket | keys
        self.step_prefix = ""  # "linux/arm64" in step names of a multi-platform build
        self.mounts = MountManager(self)
        # --cache-from entries (remote_cache.RemoteCache), consulted after the local index
        self.remote_cache: Any = None
        # stage index → {step key: state} of the last build_plan, for --cache-to (min/max)
        self.stage_entries: dict[int, dict[str, ImageState]] = {}

    @property
    def sandbox(self) -> Any:
        if self._sandbox is None:
            from ..sandbox import open_executor

            self._sandbox = open_executor()
        return self._sandbox

    def close(self) -> None:
        self.mounts.close()
        with self._lock:
            pool, self._scratch_pool = self._scratch_pool, []
        for work in pool:
            self._discard(work)
        self.janitor.close()
        if self._own_sandbox and self._sandbox is not None:
            self._sandbox.close()
            self._sandbox = None

    def emit(self, kind: str, ident: str, message: str = "", current: int = 0) -> None:
        self.progress(ProgressEvent(kind, ident, message, current=current))

    def to_uid(self, host: int) -> int:
        try:
            return self._idmap.to_container_uid(host)
        except KeyError:
            return 65534

    def to_gid(self, host: int) -> int:
        try:
            return self._idmap.to_container_gid(host)
        except KeyError:
            return 65534

    # ------------------------------------------------------------------ plan

    def build_plan(self, plan: BuildPlan, ctx: BuildContext, epoch: int | None) -> StageResult:
        self.epoch = epoch
        self.proxy_env = dict(plan.proxy_env)
        self.stage_entries = {}
        results: dict[int, StageResult] = {}
        try:
            if all(len(group) == 1 for group in plan.parallel_groups):
                for i in plan.order:
                    results[i] = self._stage(plan, plan.stages[i], ctx, results)
            else:
                self._parallel_stages(plan, ctx, results)
        finally:
            self.janitor.drain()
            self.stat_cache.save()
        result = results[plan.target]
        self._fetch_layers(result.state.layer_pairs)  # the image's own, for the export
        return result

    def _parallel_stages(self, plan: BuildPlan, ctx: BuildContext,
                         results: dict[int, StageResult]) -> None:
        """Each stage starts as soon as the stages it needs are built (not level by level,
        so a slow stage holds back only its dependants), at most ``os.cpu_count()`` at once.
        After a failure nothing new starts; running stages finish, then the error is raised.
        ``results`` is written only here, and a stage reads only its finished dependencies."""
        deps = {i: {j for j in plan.stages[i].stage_deps if j in plan.reachable}
                for i in plan.order}
        waiting = list(plan.order)
        running: dict[Future[StageResult], int] = {}
        error: BaseException | None = None
        workers = max(1, min(os.cpu_count() or 1, len(waiting)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="stage") as pool:
            try:
                while waiting or running:
                    ready = [i for i in waiting if deps[i] <= results.keys()]
                    if error is None:
                        for i in ready:
                            waiting.remove(i)
                            running[pool.submit(self._stage, plan, plan.stages[i], ctx,
                                                results)] = i
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

    def _discard(self, path: Path) -> None:
        """Remove a step's scratch dir in the background (see janitor.py)."""
        self.janitor.submit(lambda: self.privileged.remove(path))

    # Directory creation and removal are the dearest metadata operations a RUN does (each
    # allocates or frees a block; ~1 ms apiece on a busy disk, and they serialize). So a RUN's
    # scratch dir (``upper/`` + ``work/``) is recycled: the overlay's leftovers in ``work/``
    # are renamed away (cheap) and deleted by the janitor, an empty upper is kept, and a
    # published one is replaced by a new empty dir.
    _POOL_MAX = 4

    def _take_scratch(self) -> Path:
        with self._lock:
            work = self._scratch_pool.pop() if self._scratch_pool else None
        if work is None or not work.is_dir():  # (prune may sweep an idle builder's pool)
            work = self.snapshots.scratch()
            (work / "work").mkdir()
        if not (work / "upper").is_dir():
            (work / "upper").mkdir()
        return work

    def _recycle_scratch(self, work: Path, ok: bool) -> None:
        used = work / "work" / "work"
        upper = work / "upper"
        try:
            if not ok or (upper.is_dir() and os.listdir(upper)) or \
                    os.listdir(work / "work") not in ([], ["work"]):
                raise OSError("not reusable")  # a failed RUN's upper, a remount's workdirs
            if os.path.lexists(used):
                trash = self.snapshots.tmp / temp_name("trash")
                os.rename(used, trash)
                self._discard(trash)
        except OSError:
            self._discard(work)
            return
        with self._lock:
            if len(self._scratch_pool) < self._POOL_MAX:
                self._scratch_pool.append(work)
                return
        self._discard(work)

    def _mountpoint(self) -> Path:
        """Where RUNs mount their root: one empty dir shared by all of them, since each
        mounts only inside its own private mount namespace."""
        mnt = self.snapshots.root / "mnt"
        if not mnt.is_dir():
            mnt.mkdir(exist_ok=True)
        return mnt

    # ------------------------------------------------------------------ bases

    def image_state(self, name: str, platform: Platform | None = None
                    ) -> tuple[ImageState, str]:
        """A store image (pulled from its registry when missing) as a base state + key;
        an index resolves to ``platform`` (default: the builder's target platform)."""
        platform = platform or self.platform
        if (name, str(platform)) in self._image_states:
            return self._image_states[(name, str(platform))]
        try:
            stored = self.store.image(name, platform)
        except ImageNotFound:
            from ..registry import pull

            step = _Step(self, f"[internal] pull {name}")
            try:
                pull(self.store, name, platform)
            except NbcontainerError as exc:
                step.error(exc)
                raise BuildError(f"failed to resolve source metadata for {name}: {exc.message}",
                                 hint=exc.hint) from None
            step.done()
            stored = self.store.image(name, platform)
        self.base_images[(name, str(platform))] = stored
        cfg = stored.config
        if len(cfg.diff_ids) != len(stored.manifest.layers):
            raise BuildError(f"image {name}: config has {len(cfg.diff_ids)} diff_ids for "
                             f"{len(stored.manifest.layers)} layers")
        layers = tuple(LayerRef(d.digest, diff, d.size, d.media_type)
                       for d, diff in zip(stored.manifest.layers, cfg.diff_ids, strict=True))
        config = cfg.config
        if "PATH" not in config.env_dict():  # BuildKit and buildah give a base a default PATH
            config = config.with_env("PATH", DEFAULT_PATH)
        state = ImageState(architecture=cfg.architecture, os=cfg.os, variant=cfg.variant,
                           config=config, layers=layers, history=cfg.history,
                           created=cfg.created, author=cfg.author)
        result = (state, step_key("", "image", str(stored.digest)))
        self._image_states[(name, str(platform))] = result
        return result

    def _scratch_state(self, platform: Platform | None = None) -> tuple[ImageState, str]:
        p = platform or self.platform
        state = ImageState(architecture=p.architecture, os=p.os, variant=p.variant or None,
                           config=ContainerConfig(env=(f"PATH={DEFAULT_PATH}",)))
        return state, step_key("", "scratch", str(p))

    def _resolve_from(self, plan: BuildPlan, ref: str,
                      results: Mapping[int, StageResult]) -> tuple[ImageState, str]:
        """``--from``/``FROM`` value: a stage (name or index) or an image."""
        try:
            idx = plan.stage(ref).index
        except KeyError:
            idx = None
        if idx is not None:
            res = results[idx]
            return res.state, res.key
        if ref == "scratch":
            return self._scratch_state()
        return self.image_state(ref)

    def lowers(self, state: ImageState) -> list[Path]:
        return self.snapshots.lowers_or_empty(state.layer_pairs)

    # ------------------------------------------------------------------ stages

    def _stage(self, plan: BuildPlan, stage: Stage, ctx: BuildContext,
               results: Mapping[int, StageResult]) -> StageResult:
        label = " ".join(p for p in (self.step_prefix, stage.name) if p)
        steps = [i for i in stage.instructions if isinstance(i, (Run, Copy, Add, Workdir))]
        total = len(steps) + 1
        counter = iter(range(2, total + 2))

        def title(text: str) -> str:
            n = next(counter, total)
            return f"[{label + ' ' if label else ''}{n}/{total}] {text}"

        base = stage.base_name
        step = _Step(self, f"[{label + ' ' if label else ''}1/{total}] FROM {base}")
        try:
            # FROM --platform (e.g. $BUILDPLATFORM) picks the base for that platform.
            plat = Platform.parse(stage.platform) if stage.platform else None
            if stage.base_stage is not None:
                res = results[stage.base_stage]
                state, key = res.state, res.key
            elif base == "scratch":
                state, key = self._scratch_state(plat)
            else:
                state, key = self.image_state(base, plat)
                wanted = plat or self.platform
                if (state.os, state.architecture) != (wanted.os, wanted.architecture):
                    # a single-platform base: used as it is, like BuildKit, which warns too
                    step.output(f"WARNING: InvalidBaseImagePlatform: base image {base} has "
                                f"platform {state.os}/{state.architecture}, expected {wanted} "
                                "for this build\n".encode())
        except BaseException as exc:
            step.error(exc)
            raise
        step.done()
        state = replace(state, cmd_set=False)
        entries = self.stage_entries.setdefault(stage.index, {})

        # ONBUILD triggers of the base run first, then are cleared (Docker's rule).
        triggers = self._triggers(state, stage, plan)
        if state.config.on_build:
            state = replace(state, config=replace(state.config, on_build=None))
        args: list[tuple[str, str | None]] = []
        todo: list[tuple[int, Instruction, bool]] = [(0, t, True) for t in triggers]
        todo += [(i, ins, False) for i, ins in enumerate(stage.instructions)]
        for pos, instr, is_trigger in todo:
            try:
                state, key = self._instruction(plan, stage, ctx, results, state, key, pos,
                                               instr, args, title, is_trigger)
                entries[key] = state
            except DockerfileError:
                raise
            except NbcontainerError as exc:
                if instr.line and "line" not in exc.message[:80]:
                    exc.message = f"{plan.syntax.filename}:{instr.line}: {instr.keyword}: " \
                                  f"{exc.message}"
                    exc.args = (exc.message,)
                raise
        return StageResult(state, key)

    def _triggers(self, state: ImageState, stage: Stage, plan: BuildPlan) -> list[Instruction]:
        out: list[Instruction] = []
        env = state.config.env_dict()
        lexer = Lexer(plan.escape_token)
        for expr in state.config.on_build or ():
            tree = parse_syntax(expr, filename="ONBUILD")
            for node in tree.nodes:
                instr = parse_instruction(node, lines=tree.lines, filename="ONBUILD")
                if instr.keyword in ("ONBUILD", "FROM", "MAINTAINER"):
                    raise BuildError(f"{instr.keyword} isn't allowed as an ONBUILD trigger")
                out.append(instr.expand(lambda w, e=env: lexer.process(w, e).result))
        return out

    # ------------------------------------------------------------------ instructions

    def _fetch_layers(self, layers: Sequence[tuple[Digest, Digest]]) -> None:
        """Blobs of ``--cache-from`` hits come from the registry only when something reads
        them (a step that runs on them, the exported image), not at every hit."""
        if self.remote_cache is not None:
            self.remote_cache.ensure([blob for blob, _ in layers])

    def _cached(self, key: str) -> ImageState | None:
        if self.no_cache:
            return None
        hit = self.cache.get(key)
        if hit is None and self.remote_cache is not None:
            hit = self.remote_cache.get(key)  # its blobs are fetched when needed
            if hit is not None:
                self.cache.put(key, hit)
        return hit

    def _history(self, state: ImageState, created_by: str, empty: bool) -> ImageState:
        created = timestamp(self.epoch)
        entry = History(created=created, created_by=created_by, comment=hist.COMMENT,
                        empty_layer=empty)
        return replace(state, history=(*state.history, entry), created=created)

    def _instruction(self, plan: BuildPlan, stage: Stage, ctx: BuildContext,
                     results: Mapping[int, StageResult], state: ImageState, key: str,
                     pos: int, instr: Instruction, args: list[tuple[str, str | None]],
                     title: Callable[[str], str], is_trigger: bool) -> tuple[ImageState, str]:
        fields = {k: v for k, v in instruction_fields(instr).items() if k != "trigger"}
        if isinstance(instr, Arg):
            after = (stage.args_before[pos + 1] if pos + 1 < len(stage.args_before)
                     else stage.args)
            words = []
            for spec in instr.args:
                value = after.get(spec.key) if not is_trigger else spec.value
                args.append((spec.key, value))
                words.append(spec.key if value is None else f"{spec.key}={value}")
            new_key = step_key(key, "ARG", words)
            cached = self._cached(new_key)
            if cached is None:
                cached = self._history(state, "ARG " + " ".join(words), True)
                self.cache.put(new_key, cached)
            return cached, new_key
        if isinstance(instr, Run):
            return self._run(plan, stage, ctx, results, state, key, pos, instr, args, title,
                             fields)
        if isinstance(instr, (Copy, Add)):
            return self._copy(plan, ctx, results, state, key, instr, title, fields)
        if isinstance(instr, Workdir):
            return self._workdir(state, key, instr, title)
        # config-only instructions
        new_key = step_key(key, instr.keyword, fields)
        cached = self._cached(new_key)
        if cached is not None:
            return cached, new_key
        sc = metadata.apply(metadata.StageConfig(state.config, state.author, state.cmd_set),
                            instr)
        config = sc.config
        if isinstance(instr, Cmd):
            config = replace(config, args_escaped=True)
        new = replace(state, config=config, author=sc.author, cmd_set=sc.cmd_set)
        argv = config.cmd if isinstance(instr, Cmd) else (
            config.entrypoint if isinstance(instr, Entrypoint) else None)
        created_by = hist.metadata_created_by(instr, argv)
        if created_by is not None and not isinstance(instr, Onbuild):
            new = self._history(new, created_by, True)
        self.cache.put(new_key, new)
        return new, new_key

    # ------------------------------------------------------------------ WORKDIR

    def _workdir(self, state: ImageState, key: str, instr: Workdir,
                 title: Callable[[str], str]) -> tuple[ImageState, str]:
        sc = metadata.apply(metadata.StageConfig(state.config, state.author, state.cmd_set),
                            instr)
        wd = sc.config.working_dir or "/"
        step = _Step(self, title(f"WORKDIR {wd}"))
        user = state.config.user or ""
        new_key = step_key(key, "WORKDIR", [wd, user])
        cached = self._cached(new_key)
        if cached is not None:
            step.cached()
            return cached, new_key
        try:
            new = replace(state, config=sc.config)
            ops: list = []
            if wd != "/":
                view = StackView(self.lowers(state))
                if view.lookup(wd) is None:
                    owner = copymod.resolve_chown(user.split(":")[0], view) if user else None
                    plan = copymod.plan_copy([], wd + "/", view, chown=owner, chmod=None,
                                             to_uid=self.to_uid, to_gid=self.to_gid,
                                             unpack=False, created_mtime=self._now_ns(),
                                             multiple=False)
                    ops = plan.ops
            if ops:
                new = self._commit_ops(new, ops, f"WORKDIR {wd}", with_buildkit=False)
            else:
                new = self._history(new, f"WORKDIR {wd}", True)
        except BaseException as exc:
            step.error(exc)
            raise
        self.cache.put(new_key, new)
        step.done()
        return new, new_key

    def _now_ns(self) -> int:
        if self.epoch is not None:
            return self.epoch * 1_000_000_000
        return time.time_ns()

    # ------------------------------------------------------------------ COPY / ADD

    def _copy(self, plan: BuildPlan, ctx: BuildContext, results: Mapping[int, StageResult],
              state: ImageState, key: str, instr: Copy | Add, title: Callable[[str], str],
              fields: dict) -> tuple[ImageState, str]:
        created_by = hist.copy_created_by(instr)
        step = _Step(self, title(created_by.removesuffix(" # buildkit")))
        work: Path | None = None
        try:
            parents = isinstance(instr, Copy) and instr.parents
            workdir = state.config.working_dir or "/"
            dest = copymod.dest_path(instr.dest, workdir)
            sources: list[copymod.Source] = []
            src_key: Any
            missed = ""  # a key already looked up (and missed): not looked up twice
            from_ = instr.from_ if isinstance(instr, Copy) else ""
            if from_:
                src_state, src_stage_key = self._resolve_from(plan, from_, results)
                src_key = ["from", src_stage_key, list(instr.sources)]
                if not instr.link:  # a hit needs no view of the source stage, whose blobs
                    # may still be in the registry (--cache-from fetches them lazily)
                    new_key = step_key(key, instr.keyword, [fields, dest, src_key])
                    cached = self._cached(new_key)
                    if cached is not None:
                        step.cached()
                        return cached, new_key
                    missed = new_key
                view = StackView(self.lowers(src_state))
                sources = copymod.view_sources(view, instr.sources, self.to_uid, self.to_gid,
                                               instr.excludes, parents)
            else:
                kinds = {s: add_source_kind(s) for s in instr.sources}
                local = [s for s in instr.sources if kinds[s] == "local"]
                urls = [s for s in instr.sources if kinds[s] == "url"]
                gits = [s for s in instr.sources if kinds[s] == "git"]
                if (urls or gits) and not isinstance(instr, Add):
                    raise BuildError("source can't be a URL for COPY",
                                     hint="use ADD for URLs and git repositories")
                if isinstance(instr, Add) and instr.checksum:
                    _check_checksum(instr.checksum, local, len(instr.sources))
                sources = copymod.context_sources(ctx, local, instr.excludes, parents)
                if isinstance(instr, Add) and instr.unpack is not False:
                    for s in sources:
                        if len(s.items) == 1 and s.items[0].kind == "file" and \
                                copymod.is_archive(s.items[0].host):
                            s.archive = True
                if urls or gits:
                    work = self.snapshots.scratch()
                for url in urls:
                    assert isinstance(instr, Add) and work is not None
                    sources.append(self._download(url, instr, dest, work))
                for src in gits:
                    assert isinstance(instr, Add) and work is not None
                    sources.append(self._git_source(src, instr, work))
                for c in instr.contents:
                    sources.append(copymod.Source(posixpath.basename(c.path), [copymod.Item(
                        "", "data", c.data, 0o644, 0, 0, 0, len(c.data.encode()),
                        hashlib.sha256(c.data.encode()).hexdigest())]))
                src_key = ["context", copymod.source_manifest(sources)]
            multiple = len(instr.sources) + len(instr.contents) > 1
            if multiple and not dest.endswith("/"):
                raise BuildError("When using COPY with more than one source file, the "
                                 "destination must be a directory and end with a /")
            if instr.link:
                new, new_key, hit = self._copy_link(state, key, instr, fields, dest, src_key,
                                                    sources, multiple, created_by)
                if hit:
                    step.cached()
                    return new, new_key
            else:
                new_key = step_key(key, instr.keyword, [fields, dest, src_key])
                cached = self._cached(new_key) if new_key != missed else None
                if cached is not None:
                    step.cached()
                    return cached, new_key
                view = StackView(self.lowers(state))
                chown = copymod.resolve_chown(instr.chown, view)
                chmod = copymod.parse_chmod(instr.chmod)
                cplan = copymod.plan_copy(sources, dest, view, chown=chown, chmod=chmod,
                                          to_uid=self.to_uid, to_gid=self.to_gid,
                                          unpack=isinstance(instr, Add),
                                          created_mtime=self._now_ns(), multiple=multiple)
                new = self._commit_ops(state, cplan.ops, created_by.removesuffix(" # buildkit"),
                                       with_buildkit=True)
        except BaseException as exc:
            step.error(exc)
            raise
        finally:
            if work is not None:
                self.privileged.remove(work)
        self.cache.put(new_key, new)
        step.done()
        return new, new_key

    def _copy_link(self, state: ImageState, key: str, instr: Copy | Add, fields: dict,
                   dest: str, src_key: Any, sources: Sequence[copymod.Source], multiple: bool,
                   created_by: str) -> tuple[ImageState, str, bool]:
        """``--link``: the layer is planned over an empty tree (BuildKit copies onto scratch
        and rebases it with a MergeOp), so it depends only on the instruction and its
        sources; its own cache entry (a one-layer state) leaves the parent chain out, and a
        changed base reuses it. Returns (state, key, cache hit)."""
        chown = None
        if instr.chown:  # names are still resolved in the target image (BuildKit does too)
            chown = copymod.resolve_chown(instr.chown, StackView(self.lowers(state)))
        link_key = step_key("", f"{instr.keyword} --link", [fields, dest, src_key, chown])
        new_key = step_key(key, "link", link_key)
        text = created_by.removesuffix(" # buildkit")
        cached = self._cached(new_key)
        if cached is not None:
            return cached, new_key, True
        linked = self._cached(link_key)
        if linked is not None:
            new = replace(state, layers=(*state.layers, *linked.layers))
            return self._history(new, created_by, not linked.layers), new_key, True
        empty = StackView([self.snapshots.empty_dir()])
        cplan = copymod.plan_copy(sources, dest, empty, chown=chown,
                                  chmod=copymod.parse_chmod(instr.chmod), to_uid=self.to_uid,
                                  to_gid=self.to_gid, unpack=isinstance(instr, Add),
                                  created_mtime=self._now_ns(), multiple=multiple)
        new = self._commit_ops(state, cplan.ops, text, with_buildkit=True)
        added = new.layers[len(state.layers):]
        self.cache.put(link_key, replace(state, layers=added, history=()))
        return new, new_key, False

    def _git_source(self, src: str, instr: Add, work: Path) -> copymod.Source:
        """ADD of a git repository: its tree at the ref (``.git`` kept with
        ``--keep-git-dir``), keyed by the commit, not by the checkout's bytes."""
        from . import git

        source = git.parse_git_url(src)
        # the URL's query (?keep-git-dir=, ?checksum=) says the same as ADD's flags
        keep = instr.keep_git_dir if source.keep_git_dir is None else source.keep_git_dir
        tree, commit, when = git.fetch(source, work / f"git-{len(os.listdir(work))}", keep)
        for expected in (instr.checksum, source.checksum):
            if expected and not commit.startswith(expected):
                raise BuildError(f"checksum mismatch for {src}: expected commit {expected}, "
                                 f"got {commit}")
        key = ["git", source.remote, commit, source.subdir, keep]
        return copymod.tree_source(tree, key, when * 1_000_000_000)

    def _download(self, url: str, instr: Add, dest: str, work: Path) -> copymod.Source:
        name = posixpath.basename(urllib.parse.urlparse(url).path) or "__unnamed__"
        if name in (".", "/"):
            name = "__unnamed__"
        path = work / f"dl-{len(os.listdir(work))}"
        h = hashlib.sha256()
        req = urllib.request.Request(url, headers={"User-Agent": "nbcontainer"})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp, open(path, "wb") as out:
                while chunk := resp.read(1 << 20):
                    h.update(chunk)
                    out.write(chunk)
                modified = resp.headers.get("Last-Modified")
        except OSError as exc:
            raise BuildError(f"failed to fetch {url}: {exc}") from None
        digest = f"sha256:{h.hexdigest()}"
        if instr.checksum and instr.checksum != digest:
            raise BuildError(f"checksum mismatch for {url}: expected {instr.checksum}, "
                             f"got {digest}", hint="the file at the URL changed, or the "
                             "--checksum value is wrong")
        mtime = 0
        if modified:
            try:
                mtime = int(parsedate_to_datetime(modified).timestamp()) * 1_000_000_000
            except (TypeError, ValueError):
                mtime = 0
        size = path.stat().st_size
        if not dest.endswith("/"):
            name = posixpath.basename(dest)
        # URLs unpack only with --unpack=true (BuildKit 1.17); local archives by default
        archive = instr.unpack is True and copymod.is_archive(str(path))
        return copymod.Source(name, [copymod.Item("", "file", str(path), 0o600, 0, 0, mtime,
                                                  size, h.hexdigest())], archive=archive)

    def _commit_ops(self, state: ImageState, ops: Sequence[list], created_by: str, *,
                    with_buildkit: bool) -> ImageState:
        work = self.snapshots.scratch()
        try:
            diff = work / "fs"
            diff.mkdir()
            os.chmod(diff, self._root_mode(state))
            self.privileged.apply(diff, ops)
            text = created_by + (" # buildkit" if with_buildkit else "")
            return self._commit_dir(state, diff, text)
        finally:
            self._discard(work)

    def _root_mode(self, state: ImageState) -> int:
        lowers = self.snapshots.lowers(state.layer_pairs)
        if lowers:
            return os.stat(lowers[-1]).st_mode & 0o7777
        return 0o755

    def _commit_dir(self, state: ImageState, tree: Path, created_by: str) -> ImageState:
        """Write ``tree`` (an upper or diff dir) as the next layer and keep it as a snapshot;
        an empty tree adds only a history entry, as BuildKit drops empty layers."""
        if not os.listdir(tree):
            return self._history(state, created_by, True)
        tmp = self.store.blobs.tmp_dir / f"layer-{os.getpid()}-{threading.get_ident()}-" \
                                         f"{time.monotonic_ns()}"
        try:
            info = self.privileged.write_layer(tree, tmp, self.epoch)
            self.store.blobs.publish(tmp, info.digest)
        finally:
            tmp.unlink(missing_ok=True)
        layer = LayerRef(info.digest, info.diff_id, info.size, info.media_type)
        new = replace(state, layers=(*state.layers, layer))
        chain = chain_ids([lr.diff_id for lr in new.layers])[-1]
        self.snapshots.publish_diff(chain, tree)
        return self._history(new, created_by, False)

    # ------------------------------------------------------------------ RUN

    def _run(self, plan: BuildPlan, stage: Stage, ctx: BuildContext,
             results: Mapping[int, StageResult], state: ImageState, key: str, pos: int,
             instr: Run, args: list[tuple[str, str | None]], title: Callable[[str], str],
             fields: dict) -> tuple[ImageState, str]:
        from ..sandbox import RunSpec, failure_error

        config = state.config
        shell = metadata.shell_of(config)
        mounts: list = []
        extra_env: dict[str, str] = {}
        argv = self._run_argv(instr, shell, mounts)
        arg_values = {k: v for k, v in args if v is not None}
        env = dict(self.proxy_env)
        env.update(arg_values)
        env.update(config.env_dict())
        key_env = {k: v for k, v in env.items() if k not in self.proxy_env or k in arg_values}
        mount_keys, prep = self.mounts.prepare(plan, ctx, results, instr, mounts)
        extra_env.update(prep.env)
        build_args = [(k, v if v is not None else "") for k, v in args]
        created_by = hist.run_created_by(argv, build_args)
        shown = created_by.removesuffix(" # buildkit").removeprefix("RUN ")
        step = _Step(self, title(f"RUN {shown}"))
        network = "none" if instr.network == "none" else "host"
        new_key = step_key(key, "RUN", [fields, list(argv), key_env, config.user or "",
                                        config.working_dir or "/", network, mount_keys])
        cached = self._cached(new_key)
        if cached is not None:
            step.cached()
            return cached, new_key
        # A RUN that really executes needs the stage's CPU, natively or through binfmt_misc.
        from .platforms import check_can_run, state_platform

        try:
            check_can_run(state_platform(state.os, state.architecture, state.variant))
        except BaseException as exc:
            step.error(exc)
            raise
        work = self._take_scratch()
        ok = False
        try:
            upper, wdir = work / "upper", work / "work"
            os.chmod(upper, self._root_mode(state))
            spec = RunSpec(lowerdirs=self.lowers(state), upperdir=upper, workdir=wdir,
                           mountpoint=self._mountpoint(), argv=list(argv),
                           env={**env, **extra_env},
                           user=config.user or "", cwd=config.working_dir or "/",
                           network=network, mounts=mounts, output=step.output)
            result = self.mounts.run(spec, prep)  # takes cache locks, rw copies
            if not result.ok:
                raise failure_error(argv, result)
            new = self._commit_dir(state, upper, created_by)
            ok = True
        except BaseException as exc:
            step.error(exc)
            raise
        finally:
            self._recycle_scratch(work, ok)
        self.cache.put(new_key, new)
        step.done()
        return new, new_key

    def _run_argv(self, instr: Run, shell: Sequence[str], mounts: list) -> list[str]:
        from ..sandbox import SecretMount

        if not instr.files:
            return list(metadata.command_argv_for(shell, instr.command, instr.prepend_shell))
        cmd = instr.command[0] if instr.command else ""
        m = _PURE_HEREDOC.match(cmd)
        if m and len(instr.files) == 1:
            body = instr.files[0].content
            if body.startswith("#!"):
                path = f"/dev/pipes/{instr.files[0].name}"
                mounts.append(SecretMount(path, body.encode(), 0o755))
                return [path]
            return [*shell, body]
        full = cmd + "".join("\n" + f.content + f.name for f in instr.files)
        return [*shell, full]


def _check_checksum(checksum: str, local: Sequence[str], count: int) -> None:
    """``ADD --checksum``: one http(s) or git source; ``sha256:<hex>`` for URLs."""
    if count != 1:
        raise BuildError("checksum can't be specified for multiple sources")
    if local:
        raise BuildError(f"checksum can't be specified for non-HTTP(S)/git source "
                         f"{local[0]!r}")
    if not re.fullmatch(r"sha256:[0-9a-f]{64}|[0-9a-f]{7,64}", checksum):
        raise BuildError(f"invalid checksum {checksum!r}",
                         hint="use sha256:<64 hex digits> for URLs, a commit id for git")


# ---------------------------------------------------------------------- export


def export_image(store: Store, state: ImageState, tags: Sequence[str], *,
                 config_extra: Mapping[str, Any] | None = None) -> Digest:
    cfg = state.image_config()
    if config_extra:  # top-level config keys (the inline build cache)
        cfg = cfg.evolve(extra={**cfg.extra, **config_extra})
    cfg_bytes = cfg.to_bytes()
    cfg_digest = store.blobs.put(cfg_bytes)
    manifest = Manifest(Descriptor(mt.OCI_CONFIG, cfg_digest, len(cfg_bytes)),
                        tuple(lr.descriptor for lr in state.layers))
    return store.add_image(manifest.to_bytes(), tags=list(tags))

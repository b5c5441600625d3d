"""Build plan: stages, ARG scoping, expansion snapshots and the stage graph.

This is the part of BuildKit's ``dockerfile2llb`` that needs no daemon: it decides what
each instruction means (expanded), which stages the target needs, and in which order and
groups they can be built.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from nbcontainer.dockerfile.errors import DockerfileError, InstructionError, LintWarning
from nbcontainer.dockerfile.instructions import (
    Arg,
    Copy,
    Env,
    From,
    Instruction,
    Run,
    locate,
    parse_instruction,
)
from nbcontainer.dockerfile.lexer import Lexer, saturating_int
from nbcontainer.dockerfile.lint import LintSource, StageSource, lint
from nbcontainer.dockerfile.syntax import Node, SyntaxTree, parse_syntax
from nbcontainer.errors import ReferenceFormatError
from nbcontainer.oci.platform import Platform
from nbcontainer.oci.reference import Reference

__all__ = [
    "BuildPlan",
    "Platform",
    "Stage",
    "StageRef",
    "build_plan",
    "default_platform",
    "platform_args",
    "PROXY_ARGS",
]

PROXY_ARGS = tuple(
    n for base in ("HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY")
    for n in (base, base.lower())
)  # fmt: skip
BUILTIN_ARGS = (
    "BUILDKIT_CACHE_MOUNT_NS", "BUILDKIT_CONTEXT_KEEP_GIT_DIR", "BUILDKIT_INLINE_CACHE",
    "BUILDKIT_MULTI_PLATFORM", "BUILDKIT_SANDBOX_HOSTNAME", "BUILDKIT_SYNTAX", "SOURCE_DATE_EPOCH",
)  # fmt: skip


BaseEnv = Callable[[str, str], Mapping[str, str]]
_MAX_INDEX_DIGITS = 4000  # a longer --from=<digits> is no stage index (and int() refuses it)


def parse_platform(text: str) -> Platform:
    """``linux/arm64``, ``linux/arm/v7``, ``amd64`` … (DockerfileError when malformed)."""
    try:
        return Platform.parse(text.strip())
    except ReferenceFormatError as exc:  # BuildKit's wording; the cause says which part
        raise DockerfileError(
            f'"{text}": unknown operating system or architecture: invalid argument', file=None
        ) from exc


def default_platform() -> Platform:
    """The build host as BuildKit reports it: Linux with the host CPU architecture."""
    return Platform.host()


def platform_args(build: Platform, target: Platform) -> dict[str, str]:
    """The automatic platform ARGs BuildKit defines in the global scope."""
    return {
        "BUILDPLATFORM": str(build),
        "BUILDOS": build.os,
        "BUILDARCH": build.architecture,
        "BUILDVARIANT": build.variant,
        "TARGETPLATFORM": str(target),
        "TARGETOS": target.os,
        "TARGETARCH": target.architecture,
        "TARGETVARIANT": target.variant,
    }


@dataclass(frozen=True)
class StageRef:
    """Where a stage takes files or its base from: another stage (index) or an image."""

    stage: int | None = None
    image: str | None = None
    line: int = 0
    kind: str = "from"  # "from" | "copy" | "mount"


@dataclass(frozen=True)
class Stage:
    """One ``FROM`` and its instructions, expanded with one env snapshot each."""

    index: int
    name: str
    base_name: str
    platform: str
    from_: From
    instructions: tuple[Instruction, ...]
    raw_instructions: tuple[Instruction, ...]
    dependencies: tuple[StageRef, ...]
    base_stage: int | None = None
    args: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    used_args: frozenset[str] = frozenset()
    env_before: tuple[Mapping[str, str], ...] = ()
    args_before: tuple[Mapping[str, str], ...] = ()

    def run_env(self, position: int, proxy_env: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment a RUN at ``position`` sees: ARGs in scope, then ENV (ENV wins),
        plus undeclared proxy build args (which stay out of history and cache keys)."""
        env = dict(proxy_env or {})
        env.update(self.args_before[position])
        env.update(self.env_before[position])
        return env

    @property
    def display_name(self) -> str:
        """BuildKit's name for messages: the stage name or ``stage-N``."""
        return self.name or f"stage-{self.index}"

    @property
    def stage_deps(self) -> frozenset[int]:
        """Indexes of the stages this one needs."""
        return frozenset(d.stage for d in self.dependencies if d.stage is not None)

    @property
    def line(self) -> int:
        return self.from_.line


@dataclass(frozen=True)
class BuildPlan:
    """Everything ``docker build`` knows before it runs anything."""

    stages: tuple[Stage, ...]
    target: int
    reachable: frozenset[int]
    order: tuple[int, ...]
    parallel_groups: tuple[tuple[int, ...], ...]
    meta_args: Mapping[str, str | None]
    build_args: Mapping[str, str]
    proxy_env: Mapping[str, str]
    unused_build_args: tuple[str, ...]
    warnings: tuple[LintWarning, ...]
    syntax: SyntaxTree
    build_platform: Platform
    target_platform: Platform

    @property
    def target_stage(self) -> Stage:
        return self.stages[self.target]

    @property
    def escape_token(self) -> str:
        return self.syntax.escape_token

    def stage(self, ref: str | int) -> Stage:
        """A stage by index or (case-insensitive) name; KeyError if none."""
        if isinstance(ref, int):
            return self.stages[ref]
        for st in self.stages:
            if st.name and st.name == ref.lower():
                return st
        # isdecimal, not isdigit: int() refuses digits such as "²"
        if ref.isdecimal() and saturating_int(ref) < len(self.stages):
            return self.stages[saturating_int(ref)]
        raise KeyError(ref)

    def stages_to_build(self) -> tuple[Stage, ...]:
        """The reachable stages in a valid build order."""
        return tuple(self.stages[i] for i in self.order)


# --------------------------------------------------------------------------- building


class _Ctx:
    def __init__(self, tree: SyntaxTree) -> None:
        self.tree = tree
        self.lines = tree.lines
        self.filename = tree.filename
        self.lex = Lexer(tree.escape_token)
        self.raw_lex = Lexer("\\", skip_process_quotes=True)

    def error(self, node: Node | None, message: str, token: str | None = None) -> DockerfileError:
        return locate(node, message, token, self.lines, self.filename)


def _stage_env(args: dict[str, str], env: dict[str, str]) -> dict[str, str]:
    merged = dict(args)
    merged.update(env)
    return merged


def _reference_problem(text: str) -> str | None:
    """Why ``text`` is not an image reference (None when it is one)."""
    try:
        Reference.parse(text)
    except ReferenceFormatError as exc:
        return exc.message
    return None


def _valid_reference(text: str) -> bool:
    return _reference_problem(text) is None


RawStage = tuple[Node, From, list[tuple[Node, Instruction]]]


def build_plan(
    tree: SyntaxTree,
    *,
    build_args: Mapping[str, str] | None = None,
    target: str | None = None,
    platform: str | Platform | None = None,
    build_platform: str | Platform | None = None,
    base_env: BaseEnv | None = None,
) -> BuildPlan:
    """Turn a syntax tree into a BuildPlan (DockerfileError on the first problem).

    ``base_env(image, platform)`` returns the environment of a base image's config, so that
    ``ENV PATH=/x:$PATH`` sees the base's PATH, as BuildKit resolves image configs before
    expanding; without it, a stage on an image starts with an empty environment."""
    reachable_early: frozenset[int] = frozenset()
    if base_env is not None:  # look up base images only for the stages the target needs
        reachable_early = build_plan(
            tree, build_args=build_args, target=target, platform=platform,
            build_platform=build_platform,
        ).reachable
    ctx = _Ctx(tree)
    build_args = dict(build_args or {})
    bplat, tplat = _platforms(build_platform, platform, tree.filename)
    meta_nodes, raw_stages = _split_stages(ctx)
    # Stage names are literal (never expanded), so --target resolves before any ARG.
    names: dict[str, int] = {}
    for i, (_node, frm, _) in enumerate(raw_stages):
        if frm.stage_name:
            names.setdefault(frm.stage_name, i)
    target_index = _target_index(ctx, target, names, len(raw_stages))
    auto = platform_args(bplat, tplat)
    auto["TARGETSTAGE"] = raw_stages[target_index][1].stage_name
    meta, declared_meta = _global_args(ctx, meta_nodes, auto, build_args)
    planner = _Planner(ctx, raw_stages, names, meta, build_args)
    if base_env is not None:
        planner.image_env = _ImageEnv(base_env, reachable_early, tplat)
    stages = planner.plan_stages()
    _check_cycles(ctx, stages, raw_stages)
    reachable = _reachable(stages, target_index)
    order, groups = _toposort(stages, reachable)
    plan = BuildPlan(
        stages=tuple(stages),
        target=target_index,
        reachable=reachable,
        order=order,
        parallel_groups=groups,
        meta_args=dict(declared_meta),
        build_args=build_args,
        proxy_env={k: v for k, v in build_args.items() if k in PROXY_ARGS},
        unused_build_args=_unused_build_args(build_args, declared_meta, stages, auto),
        warnings=(),
        syntax=tree,
        build_platform=bplat,
        target_platform=tplat,
    )
    source = _lint_source(tree, meta_nodes, raw_stages, stages, platform_args(bplat, tplat))
    return replace(plan, warnings=tuple(lint(source)))


def _platforms(
    build_platform: str | Platform | None, platform: str | Platform | None, filename: str
) -> tuple[Platform, Platform]:
    """The build platform (default: this host) and the target platform (default: the build's)."""
    if isinstance(build_platform, Platform):
        bplat = build_platform
    else:
        bplat = parse_platform(build_platform) if build_platform else default_platform()
    if isinstance(platform, Platform):
        return bplat, platform
    try:
        return bplat, parse_platform(platform) if platform else bplat
    except DockerfileError as exc:
        raise DockerfileError(
            f"failed to parse target platform: {exc.message}", file=filename
        ) from exc  # keeps what the platform parser said


def _split_stages(ctx: _Ctx) -> tuple[list[tuple[Node, Arg]], list[RawStage]]:
    """Typed instructions, split into the global ARGs and the stages (each FROM and its body)."""
    meta_nodes: list[tuple[Node, Arg]] = []
    raw_stages: list[RawStage] = []
    for node in ctx.tree.nodes:
        instr = parse_instruction(node, lines=ctx.lines, filename=ctx.filename)
        if isinstance(instr, From):
            raw_stages.append((node, instr, []))
        elif raw_stages:
            raw_stages[-1][2].append((node, instr))
        elif isinstance(instr, Arg):
            meta_nodes.append((node, instr))
        else:
            raise ctx.error(node, "no build stage in current context")
    if not raw_stages:
        raise DockerfileError("dockerfile contains no stages to build", file=ctx.filename)
    return meta_nodes, raw_stages


def _target_index(ctx: _Ctx, target: str | None, names: Mapping[str, int], count: int) -> int:
    if not target:
        return count - 1
    if target.lower() in names:
        return names[target.lower()]
    raise DockerfileError(f'target stage "{target}" could not be found', file=ctx.filename)


def _global_args(
    ctx: _Ctx, meta_nodes: list[tuple[Node, Arg]], auto: Mapping[str, str], build_args: Mapping[str, str]
) -> tuple[dict[str, str | None], dict[str, str | None]]:
    """The global scope — automatic platform ARGs, then the ARGs before the first FROM, build
    args overriding both — and the global ARGs as declared."""
    meta: dict[str, str | None] = {k: build_args.get(k, v) for k, v in auto.items()}
    declared: dict[str, str | None] = {}
    for node, arg in meta_nodes:
        for spec in arg.args:
            value = spec.value
            if value is not None:
                value = _expand(ctx, node, value, _present(meta))
            if spec.key in build_args:
                value = build_args[spec.key]
            meta[spec.key] = value
            declared[spec.key] = value
    return meta, declared


def _unused_build_args(
    build_args: Mapping[str, str],
    declared_meta: Mapping[str, str | None],
    stages: list[Stage],
    auto: Mapping[str, str],
) -> tuple[str, ...]:
    """Build args no ARG declares (BuildKit warns about them), predefined ones excepted."""
    declared = set(declared_meta)
    for st in stages:
        declared.update(a.key for ins in st.raw_instructions if isinstance(ins, Arg) for a in ins.args)
    return tuple(
        sorted(
            k
            for k in build_args
            if k not in declared and k not in PROXY_ARGS and k not in BUILTIN_ARGS and k not in auto
        )
    )


def _lint_source(
    tree: SyntaxTree,
    meta_nodes: list[tuple[Node, Arg]],
    raw_stages: list[RawStage],
    stages: list[Stage],
    predefined: Mapping[str, str],
) -> LintSource:
    """What the lint rules read: the stages as written, plus the names each inherits."""
    return LintSource(
        tree=tree,
        global_args=tuple(meta_nodes),
        stages=tuple(
            StageSource(
                node=node,
                from_=frm,
                body=tuple(body),
                inherited_env=frozenset(stages[base].env)
                if (base := stages[i].base_stage) is not None
                else frozenset(),
            )
            for i, (node, frm, body) in enumerate(raw_stages)
        ),
        predefined_args=frozenset(predefined),
    )


@dataclass(frozen=True)
class _ImageEnv:
    """How to read a base image's environment, and for which stages (those the target needs)."""

    env: BaseEnv
    stages: frozenset[int]
    platform: Platform


class _Planner:
    """Expands the stages in order: FROM lines in the global scope, then each stage's body."""

    def __init__(
        self,
        ctx: _Ctx,
        raw_stages: list[RawStage],
        names: Mapping[str, int],
        meta: Mapping[str, str | None],
        build_args: Mapping[str, str],
    ) -> None:
        self.ctx = ctx
        self.raw_stages = raw_stages
        self.names = names
        self.meta = meta
        self.meta_env = _present(meta)
        self.build_args = build_args
        self.image_env: _ImageEnv | None = None  # without it, images have no environment
        self.stages: list[Stage] = []

    def plan_stages(self) -> list[Stage]:
        # Every FROM is expanded before any stage body (only earlier stages can be a base).
        froms = [self.expand_from(node, frm) for node, frm, _ in self.raw_stages]
        for i, (node, _frm, body) in enumerate(self.raw_stages):
            stage = _StagePlanner(self, i, node, froms[i])
            for cnode, instr in body:
                stage.add(cnode, instr)
            self.stages.append(stage.result(body))
        return self.stages

    def expand_from(self, node: Node, frm: From) -> From:
        ctx = self.ctx
        base = _expand(ctx, node, frm.base_name, self.meta_env)
        if base == "":
            raise ctx.error(node, f"base name ({frm.base_name}) should not be blank", frm.base_name)
        plat = frm.platform
        if plat:
            plat = _expand(
                ctx, node, plat, self.meta_env, prefix=f"failed to process arguments for platform {plat}: "
            )
            try:
                parse_platform(plat)
            except DockerfileError as exc:
                raise ctx.error(
                    node, f"failed to parse platform {plat}: {exc.message}", frm.platform
                ) from exc  # keeps what the platform parser said
        if base != "scratch" and base.lower() not in self.names:
            problem = _reference_problem(base)
            if problem is not None:
                raise ctx.error(node, f'failed to parse stage name "{base}": {problem}', frm.base_name)
        return replace(frm, base_name=base, platform=plat)

    def resolve(self, value: str, node: Node, kind: str, token: str) -> StageRef:
        """A ``--from`` value (expanded in the global scope): a stage index, a stage name or
        an image reference."""
        if re.fullmatch(r"-?\d+", value) and len(value) <= _MAX_INDEX_DIGITS:
            idx = int(value)
            if idx < 0 or idx >= len(self.raw_stages):
                raise self.ctx.error(node, f"invalid stage index {idx}", token)
            return StageRef(stage=idx, line=node.start_line, kind=kind)
        if value.lower() in self.names:
            return StageRef(stage=self.names[value.lower()], line=node.start_line, kind=kind)
        if not _valid_reference(value):
            raise self.ctx.error(
                node,
                f"invalid from flag value {value}: undefined stage or invalid image reference",
                token,
            )
        return StageRef(image=value, line=node.start_line, kind=kind)


class _StagePlanner:
    """One stage: its base, then each instruction expanded with the env snapshot before it."""

    def __init__(self, planner: _Planner, index: int, node: Node, frm: From) -> None:
        self.planner = planner
        self.ctx = planner.ctx
        self.index = index
        self.node = node
        self.frm = frm
        self.deps: list[StageRef] = []
        self.base_stage: int | None = None
        bl = frm.base_name.lower()
        if bl in planner.names and planner.names[bl] < index:
            self.base_stage = planner.names[bl]
            self.deps.append(StageRef(stage=self.base_stage, line=node.start_line, kind="from"))
        self.args: dict[str, str] = {}
        self.env: dict[str, str] = self._base_env()
        self.used: set[str] = set()
        self.expanded: list[Instruction] = []
        self.env_before: list[dict[str, str]] = []
        self.args_before: list[dict[str, str]] = []

    def _base_env(self) -> dict[str, str]:
        if self.base_stage is not None:
            return dict(self.planner.stages[self.base_stage].env)
        lookup = self.planner.image_env
        if lookup is not None and self.frm.base_name != "scratch" and self.index in lookup.stages:
            return dict(lookup.env(self.frm.base_name, self.frm.platform or str(lookup.platform)))
        return {}

    def add(self, cnode: Node, instr: Instruction) -> None:
        snapshot = _stage_env(self.args, self.env)
        self.env_before.append(dict(self.env))
        self.args_before.append(dict(self.args))
        new = self._expand(cnode, instr, snapshot)
        self.expanded.append(new)
        self._declare(new)
        if isinstance(instr, Copy) and instr.from_:
            self._copy_from(cnode, instr)
        if isinstance(instr, Run):
            for m in instr.mounts:
                if m.from_:
                    value = _expand(self.ctx, cnode, m.from_, self.planner.meta_env)
                    self.deps.append(self.planner.resolve(value, cnode, "mount", m.from_))

    def _expand(self, cnode: Node, instr: Instruction, snapshot: dict[str, str]) -> Instruction:
        ctx = self.ctx

        def expand_word(word: str) -> str:
            res = _process(ctx, cnode, word, snapshot)
            self.used.update(k for k in res.matched if k in self.args and k not in self.env)
            return res.result

        def expand_raw(word: str) -> str:
            return _process(ctx, cnode, word, snapshot, lex=ctx.raw_lex).result

        try:
            return instr.expand(expand_word, expand_raw)
        except InstructionError as exc:
            raise ctx.error(cnode, str(exc), exc.token) from None  # located; the cause is ours

    def _declare(self, new: Instruction) -> None:
        """What an expanded ARG/ENV/RUN changes for the instructions after it."""
        if isinstance(new, Arg):
            for spec in new.args:
                value = self._arg_value(spec.key, spec.value)
                if value is not None:
                    self.args[spec.key] = value
        elif isinstance(new, Env) and new.keyword == "ENV":
            for kv in new.pairs:
                self.env[kv.key] = kv.value
        elif isinstance(new, Run):
            self.used.update(self.args)  # every RUN after an ARG counts as a use (cache key)

    def _arg_value(self, key: str, default: str | None) -> str | None:
        """A stage ARG's value: the build arg, else its default, else the global ARG's."""
        if key in self.planner.build_args:
            return self.planner.build_args[key]
        if default is not None:
            return default
        return self.planner.meta.get(key)

    def _copy_from(self, cnode: Node, instr: Copy) -> None:
        value = _expand(self.ctx, cnode, instr.from_, self.planner.meta_env)
        token = next((f for f in cnode.flags if f.startswith("--from=")), instr.from_)
        if token not in cnode.original:
            token = instr.from_
        self.deps.append(self.planner.resolve(value, cnode, "copy", token))
        # --from is resolved in the global scope (the graph exists before any stage runs),
        # so the expanded instruction carries that same value.
        expanded = self.expanded[-1]
        if isinstance(expanded, Copy):  # always: a COPY expands to a COPY
            self.expanded[-1] = replace(expanded, from_=value)

    def result(self, body: list[tuple[Node, Instruction]]) -> Stage:
        frm = self.frm
        return Stage(
            index=self.index,
            name=frm.stage_name,
            base_name=frm.base_name,
            platform=frm.platform,
            from_=frm,
            instructions=tuple(self.expanded),
            raw_instructions=tuple(ins for _, ins in body),
            dependencies=tuple(self.deps),
            base_stage=self.base_stage,
            args=self.args,
            env=self.env,
            used_args=frozenset(self.used),
            env_before=tuple(self.env_before),
            args_before=tuple(self.args_before),
        )


def _present(values: Mapping[str, str | None]) -> dict[str, str]:
    return {k: v for k, v in values.items() if v is not None}


def _process(
    ctx: _Ctx,
    node: Node,
    word: str,
    env: Mapping[str, str],
    prefix: str = "",
    lex: Lexer | None = None,
):
    try:
        return (lex or ctx.lex).process(word, env)
    except DockerfileError as exc:
        raise ctx.error(node, prefix + exc.message, word) from None


def _expand(ctx: _Ctx, node: Node, word: str, env: Mapping[str, str], prefix: str = "") -> str:
    return _process(ctx, node, word, env, prefix).result


def _check_cycles(ctx: _Ctx, stages: list[Stage], raw_stages: list) -> None:
    """BuildKit's ``hasCircularDependency``: DFS over the stage edges (iterative)."""
    state = [0] * len(stages)  # 0 new, 1 on the current path, 2 done
    for root in range(len(stages)):
        if state[root]:
            continue
        stack: list[tuple[int, int]] = [(root, 0)]
        state[root] = 1
        while stack:
            i, k = stack[-1]
            deps = [d.stage for d in stages[i].dependencies if d.stage is not None]
            if k >= len(deps):
                state[i] = 2
                stack.pop()
                continue
            stack[-1] = (i, k + 1)
            j = deps[k]
            if state[j] == 1:
                _raise_cycle(ctx, stages, raw_stages, i, j, root)
            if state[j] == 0:
                state[j] = 1
                stack.append((j, 0))


def _raise_cycle(
    ctx: _Ctx, stages: list[Stage], raw_stages: list, i: int, j: int, root: int
) -> None:
    # BuildKit names the stage its search started from, not necessarily one on the cycle.
    bad = next((d for d in stages[i].dependencies if d.stage == j), None)
    node = raw_stages[i][0]
    token = None
    if bad is not None and bad.kind != "from":
        for cnode, _ins in raw_stages[i][2]:
            if cnode.start_line == bad.line:
                node, token = cnode, "from"
                break
    name = stages[root].display_name
    raise ctx.error(node, f"circular dependency detected on stage: {name}", token)


def _reachable(stages: list[Stage], target: int) -> frozenset[int]:
    seen = {target}
    todo = [target]
    while todo:
        i = todo.pop()
        for j in stages[i].stage_deps:
            if j not in seen:
                seen.add(j)
                todo.append(j)
    return frozenset(seen)


def _toposort(
    stages: list[Stage], reachable: frozenset[int]
) -> tuple[tuple[int, ...], tuple[tuple[int, ...], ...]]:
    """Kahn's algorithm by levels: each group depends only on earlier groups, so the
    stages inside one group can be built in parallel."""
    deps = {i: {j for j in stages[i].stage_deps if j in reachable} for i in reachable}
    done: set[int] = set()
    groups: list[tuple[int, ...]] = []
    while len(done) < len(deps):
        ready = tuple(sorted(i for i in deps if i not in done and deps[i] <= done))
        if not ready:  # pragma: no cover - cycles are rejected before
            break
        groups.append(ready)
        done.update(ready)
    order = tuple(i for g in groups for i in g)
    return order, tuple(groups)


def parse(
    text: str | bytes,
    *,
    build_args: Mapping[str, str] | None = None,
    target: str | None = None,
    filename: str = "Dockerfile",
    platform: str | Platform | None = None,
    build_platform: str | Platform | None = None,
    base_env: BaseEnv | None = None,
) -> BuildPlan:
    """Dockerfile text to a typed, expanded BuildPlan (the frontend's one-call API)."""
    tree = parse_syntax(text, filename=filename)
    return build_plan(
        tree,
        build_args=build_args,
        target=target,
        platform=platform,
        build_platform=build_platform,
        base_env=base_env,
    )

"""Build plan: stages, ARG scoping, expansion snapshots and the stage graph.

This is the part of BuildKit's ``dockerfile2llb`` that needs no daemon: it decides what
each instruction means (expanded), which stages the target needs, and in which order and
groups they can be built.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from nbcontainer.dockerfile.errors import DockerfileError, LintWarning
from nbcontainer.dockerfile.instructions import (
    Arg,
    Copy,
    Env,
    From,
    Instruction,
    Run,
    _ParseError,
    locate,
    parse_instruction,
)
from nbcontainer.dockerfile.lexer import Lexer
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


def parse_platform(text: str) -> Platform:
    """``linux/arm64``, ``linux/arm/v7``, ``amd64`` … (DockerfileError when malformed)."""
    try:
        return Platform.parse(text.strip())
    except ReferenceFormatError:
        raise DockerfileError(
            f'"{text}": unknown operating system or architecture: invalid argument', file=None
        ) from None


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
        if ref.isdigit() and int(ref) < len(self.stages):
            return self.stages[int(ref)]
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
    from nbcontainer.dockerfile.lint import lint

    reachable_early: frozenset[int] = frozenset()
    if base_env is not None:  # look up base images only for the stages the target needs
        reachable_early = build_plan(
            tree, build_args=build_args, target=target, platform=platform,
            build_platform=build_platform,
        ).reachable
    ctx = _Ctx(tree)
    build_args = dict(build_args or {})
    bplat = (
        build_platform
        if isinstance(build_platform, Platform)
        else parse_platform(build_platform)
        if build_platform
        else default_platform()
    )
    try:
        tplat = (
            platform if isinstance(platform, Platform) else parse_platform(platform) if platform else bplat
        )
    except DockerfileError as exc:
        raise DockerfileError(f"failed to parse target platform: {exc.message}", file=tree.filename) from None

    # Typed instructions, split into global ARGs and stages.
    meta_nodes: list[tuple[Node, Arg]] = []
    raw_stages: list[tuple[Node, From, list[tuple[Node, Instruction]]]] = []
    for node in tree.nodes:
        instr = parse_instruction(node, lines=ctx.lines, filename=ctx.filename)
        if isinstance(instr, From):
            raw_stages.append((node, instr, []))
        elif not raw_stages:
            if isinstance(instr, Arg):
                meta_nodes.append((node, instr))
            else:
                raise ctx.error(node, "no build stage in current context")
        else:
            raw_stages[-1][2].append((node, instr))
    if not raw_stages:
        raise DockerfileError("dockerfile contains no stages to build", file=ctx.filename)

    # Stage names are literal (never expanded), so --target resolves before any ARG.
    names: dict[str, int] = {}
    for i, (_node, frm, _) in enumerate(raw_stages):
        if frm.stage_name:
            names.setdefault(frm.stage_name, i)
    if target:
        if target.lower() in names:
            target_index = names[target.lower()]
        else:
            raise DockerfileError(f'target stage "{target}" could not be found', file=ctx.filename)
    else:
        target_index = len(raw_stages) - 1

    # Global scope: automatic platform args, then global ARGs (build args override).
    auto = platform_args(bplat, tplat)
    auto["TARGETSTAGE"] = raw_stages[target_index][1].stage_name
    meta: dict[str, str | None] = {k: build_args.get(k, v) for k, v in auto.items()}
    used_build_args: set[str] = set()
    declared_meta: dict[str, str | None] = {}
    for node, arg in meta_nodes:
        for spec in arg.args:
            value = spec.value
            if value is not None:
                value = _expand(ctx, node, value, _present(meta))
            if spec.key in build_args:
                value = build_args[spec.key]
                used_build_args.add(spec.key)
            meta[spec.key] = value
            declared_meta[spec.key] = value
    meta_env = _present(meta)

    # FROM expansion (only earlier stages can be a base).
    froms: list[From] = []
    for node, frm, _ in raw_stages:
        base = _expand(ctx, node, frm.base_name, meta_env)
        if base == "":
            raise ctx.error(node, f"base name ({frm.base_name}) should not be blank", frm.base_name)
        plat = frm.platform
        if plat:
            plat = _expand(ctx, node, plat, meta_env, prefix=f"failed to process arguments for platform {plat}: ")
            try:
                parse_platform(plat)
            except DockerfileError as exc:
                raise ctx.error(node, f"failed to parse platform {plat}: {exc.message}", frm.platform) from None
        if base != "scratch" and base.lower() not in names:
            problem = _reference_problem(base)
            if problem is not None:
                raise ctx.error(node, f'failed to parse stage name "{base}": {problem}', frm.base_name)
        froms.append(replace(frm, base_name=base, platform=plat))

    def resolve(value: str, node: Node, current: int, kind: str, token: str) -> StageRef:
        if re.fullmatch(r"-?\d+", value):
            idx = int(value)
            if idx < 0 or idx >= len(raw_stages):
                raise ctx.error(node, f"invalid stage index {idx}", token)
            return StageRef(stage=idx, line=node.start_line, kind=kind)
        if value.lower() in names:
            return StageRef(stage=names[value.lower()], line=node.start_line, kind=kind)
        if not _valid_reference(value):
            raise ctx.error(
                node,
                f"invalid from flag value {value}: undefined stage or invalid image reference",
                token,
            )
        return StageRef(image=value, line=node.start_line, kind=kind)

    # Per-stage expansion, one snapshot per instruction.
    stages: list[Stage] = []
    for i, (node, _frm, body) in enumerate(raw_stages):
        frm = froms[i]
        deps: list[StageRef] = []
        base_stage = None
        bl = frm.base_name.lower()
        if bl in names and names[bl] < i:
            base_stage = names[bl]
            deps.append(StageRef(stage=base_stage, line=node.start_line, kind="from"))
        args: dict[str, str] = {}
        env: dict[str, str] = {}
        if base_stage is not None:
            env = dict(stages[base_stage].env)
        elif base_env is not None and frm.base_name != "scratch" and i in reachable_early:
            env = dict(base_env(frm.base_name, frm.platform or str(tplat)))
        used: set[str] = set()
        expanded: list[Instruction] = []
        env_before: list[dict[str, str]] = []
        args_before: list[dict[str, str]] = []
        for cnode, instr in body:
            snapshot = _stage_env(args, env)
            env_before.append(dict(env))
            args_before.append(dict(args))

            def expand_word(
                word: str,
                _snap: dict = snapshot,
                _n: Node = cnode,
                _used: set[str] = used,
                _args: dict[str, str] = args,
                _env: dict[str, str] = env,
            ) -> str:
                res = _process(ctx, _n, word, _snap)
                _used.update(k for k in res.matched if k in _args and k not in _env)
                return res.result

            def expand_raw(word: str, _snap: dict = snapshot, _n: Node = cnode) -> str:
                return _process(ctx, _n, word, _snap, lex=ctx.raw_lex).result

            try:
                new = instr.expand(expand_word, expand_raw)
            except _ParseError as exc:
                raise ctx.error(cnode, str(exc), exc.token) from None
            expanded.append(new)
            if isinstance(new, Arg):
                for spec in new.args:
                    if spec.key in build_args:
                        value: str | None = build_args[spec.key]
                        used_build_args.add(spec.key)
                    elif spec.value is not None:
                        value = spec.value
                    else:
                        value = meta.get(spec.key)
                    if value is not None:
                        args[spec.key] = value
            elif isinstance(new, Env) and new.keyword == "ENV":
                for kv in new.pairs:
                    env[kv.key] = kv.value
            elif isinstance(new, Run):
                used.update(args)  # every RUN after an ARG counts as a use (cache key)
            if isinstance(instr, Copy) and instr.from_:
                value = _expand(ctx, cnode, instr.from_, meta_env)
                token = next((f for f in cnode.flags if f.startswith("--from=")), instr.from_)
                if token not in cnode.original:
                    token = instr.from_
                deps.append(resolve(value, cnode, i, "copy", token))
                # --from is resolved in the global scope (the graph exists before any stage
                # runs), so the expanded instruction carries that same value.
                expanded[-1] = replace(expanded[-1], from_=value)
            if isinstance(instr, Run):
                for m in instr.mounts:
                    if m.from_:
                        value = _expand(ctx, cnode, m.from_, meta_env)
                        deps.append(resolve(value, cnode, i, "mount", m.from_))
        stages.append(
            Stage(
                index=i,
                name=frm.stage_name,
                base_name=frm.base_name,
                platform=frm.platform,
                from_=frm,
                instructions=tuple(expanded),
                raw_instructions=tuple(ins for _, ins in body),
                dependencies=tuple(deps),
                base_stage=base_stage,
                args=args,
                env=env,
                used_args=frozenset(used),
                env_before=tuple(env_before),
                args_before=tuple(args_before),
            )
        )

    _check_cycles(ctx, stages, raw_stages)
    reachable = _reachable(stages, target_index)
    order, groups = _toposort(stages, reachable)

    proxy_env = {k: v for k, v in build_args.items() if k in PROXY_ARGS}
    declared = set(declared_meta)
    for st in stages:
        declared.update(a.key for ins in st.raw_instructions if isinstance(ins, Arg) for a in ins.args)
    unused = tuple(
        sorted(
            k
            for k in build_args
            if k not in declared and k not in PROXY_ARGS and k not in BUILTIN_ARGS and k not in auto
        )
    )
    plan = BuildPlan(
        stages=tuple(stages),
        target=target_index,
        reachable=reachable,
        order=order,
        parallel_groups=groups,
        meta_args=dict(declared_meta),
        build_args=build_args,
        proxy_env=proxy_env,
        unused_build_args=unused,
        warnings=(),
        syntax=tree,
        build_platform=bplat,
        target_platform=tplat,
    )
    warnings = lint(plan, raw_stages=raw_stages, meta_nodes=meta_nodes)
    return replace(plan, warnings=tuple(warnings))


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

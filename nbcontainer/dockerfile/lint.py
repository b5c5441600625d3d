"""BuildKit's single-file lint rules (``frontend/dockerfile/linter``), reported as warnings.

As in BuildKit's ``linter/ruleset.go`` each rule is one record — its name (as BuildKit spells
it, which is what ``# check=skip=`` takes), description and documentation URL — plus here the
check itself, a function over typed data: the syntax tree, the global ARGs, the stages as
written (:class:`LintSource`). One driver, :func:`lint`, runs the table. ``# check=skip=<rules|all>``
silences rules and ``# check=error=true`` turns findings into a DockerfileError, as BuildKit does.

The plan builds the :class:`LintSource` and calls :func:`lint`; this module does not know the
plan, so the two do not import each other.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import Enum
from functools import cached_property
from typing import Any, Generic, TypeVar

from nbcontainer.dockerfile.errors import DockerfileError, InstructionError, LintWarning
from nbcontainer.dockerfile.flags import suggest
from nbcontainer.dockerfile.instructions import (
    INSTRUCTIONS,
    Arg,
    Cmd,
    Entrypoint,
    Env,
    Expose,
    From,
    Healthcheck,
    Instruction,
    Maintainer,
    Workdir,
)
from nbcontainer.dockerfile.lexer import Lexer
from nbcontainer.dockerfile.syntax import Node, SyntaxTree

__all__ = [
    "RULES",
    "Finding",
    "InstructionView",
    "LintSource",
    "Rule",
    "Scope",
    "StageSource",
    "StageView",
    "lint",
    "parse_check_directive",
]

_SECRET_RE = re.compile(r"(?i)(?:_|^)(?:apikey|auth|credential|credentials|key|password|pword|passwd|secret|token)(?:_|$)")
_SECRET_ALLOW = re.compile(r"(?i)public")
# Variables a base image usually defines; we cannot see base image configs here.
_IMAGE_ENV = frozenset({"PATH", "HOME", "HOSTNAME", "TERM", "LANG", "PWD", "SHELL", "USER"})
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_KEYWORDS = frozenset(INSTRUCTIONS)


# --------------------------------------------------------------------------- typed input


@dataclass(frozen=True)
class StageSource:
    """One stage as written (unexpanded), with the names its base stage's ENV defines."""

    node: Node
    from_: From
    body: tuple[tuple[Node, Instruction], ...]
    inherited_env: frozenset[str] = frozenset()

    @cached_property
    def declared_before(self) -> tuple[frozenset[str], ...]:
        """For each body position, the ARG and ENV names declared earlier in the stage."""
        out: list[frozenset[str]] = []
        declared: set[str] = set()
        for _node, ins in self.body:
            out.append(frozenset(declared))
            if isinstance(ins, Arg):
                declared.update(a.key for a in ins.args)
            elif isinstance(ins, Env) and ins.keyword == "ENV":
                declared.update(p.key for p in ins.pairs)
        return tuple(out)

    @cached_property
    def occurrence(self) -> tuple[int, ...]:
        """For each body position, how many instructions of its keyword the stage has so far
        (1 for the first CMD, 2 for the second …)."""
        seen: Counter[str] = Counter()
        out = []
        for _node, ins in self.body:
            seen[ins.keyword] += 1
            out.append(seen[ins.keyword])
        return tuple(out)


@dataclass(frozen=True)
class LintSource:
    """Everything the rules read; built by the plan from the parsed file."""

    tree: SyntaxTree
    global_args: tuple[tuple[Node, Arg], ...]
    stages: tuple[StageSource, ...]
    predefined_args: frozenset[str] = frozenset()  # ARGs usable in FROM undeclared (platform)

    @cached_property
    def lexer(self) -> Lexer:
        return Lexer(self.tree.escape_token)

    @cached_property
    def global_arg_names(self) -> frozenset[str]:
        return frozenset(a.key for _, arg in self.global_args for a in arg.args)


@dataclass(frozen=True)
class StageView:
    """What a stage rule sees: one stage and the file around it."""

    source: LintSource
    index: int

    @property
    def stage(self) -> StageSource:
        return self.source.stages[self.index]

    @property
    def line(self) -> int:
        return self.stage.node.start_line


@dataclass(frozen=True)
class InstructionView:
    """What an instruction rule sees: the instruction and its stage (None for a global ARG)."""

    source: LintSource
    stage: StageSource | None
    position: int
    node: Node
    instruction: Instruction

    @property
    def line(self) -> int:
        return self.node.start_line


class Scope(Enum):
    """What a rule's check is called with, and so where its findings fall in the report."""

    FILE = "file"  # the LintSource, once
    STAGE = "stage"  # a StageView per FROM
    INSTRUCTION = "instruction"  # an InstructionView per global ARG, then per stage body entry


@dataclass(frozen=True)
class Finding:
    """One violation of a rule: the message (BuildKit's wording) and the line."""

    message: str
    line: int | None


V = TypeVar("V")


@dataclass(frozen=True)
class Rule(Generic[V]):
    """One lint rule, as a record of BuildKit's ``ruleset.go`` plus its check."""

    name: str
    description: str
    url: str
    scope: Scope
    check: Callable[[V], Iterable[Finding]]


# --------------------------------------------------------------------------- file rules


def _check_no_empty_continuation(src: LintSource) -> Iterator[Finding]:
    # The syntax layer finds these (it sees the raw lines); the rule reports them.
    for w in src.tree.warnings:
        if w.rule == "NoEmptyContinuation":
            yield Finding(w.message, w.line)


def _check_instruction_casing(src: LintSource) -> Iterator[Finding]:
    nodes = src.tree.nodes
    upper = sum(1 for n in nodes if n.written_keyword.isupper())
    lower = sum(1 for n in nodes if n.written_keyword.islower())
    majority_upper = upper >= lower
    case = "uppercase" if majority_upper else "lowercase"
    for node in nodes:
        w = node.written_keyword
        if not w or node.keyword not in _KEYWORDS:
            continue
        if (majority_upper and not w.isupper()) or (not majority_upper and not w.islower()):
            yield Finding(
                f"Command '{w}' should match the case of the command majority ({case})",
                node.start_line,
            )


# --------------------------------------------------------------------------- stage rules


def _check_from_as_casing(view: StageView) -> Iterator[Finding]:
    as_kw = view.stage.from_.as_keyword
    from_kw = view.stage.node.written_keyword
    if as_kw and (
        (from_kw.isupper() and not as_kw.isupper()) or (from_kw.islower() and not as_kw.islower())
    ):
        yield Finding(f"'{as_kw}' and '{from_kw}' keywords' casing do not match", view.line)


def _check_stage_name_casing(view: StageView) -> Iterator[Finding]:
    if view.stage.from_.as_keyword:
        written = view.stage.node.args[2]
        if written != written.lower():
            yield Finding(f"Stage name '{written}' should be lowercase", view.line)


def _check_reserved_stage_name(view: StageView) -> Iterator[Finding]:
    frm = view.stage.from_
    if frm.as_keyword and frm.stage_name in ("scratch", "context"):
        yield Finding(
            f"Stage name should not use the same name as reserved stage '{frm.stage_name}'",
            view.line,
        )


def _check_duplicate_stage_name(view: StageView) -> Iterator[Finding]:
    frm = view.stage.from_
    earlier = {s.from_.stage_name for s in view.source.stages[: view.index] if s.from_.as_keyword}
    if frm.as_keyword and frm.stage_name in earlier:
        yield Finding(
            f"Duplicate stage name '{frm.stage_name}', stage names should be unique", view.line
        )


def _check_undefined_arg_in_from(view: StageView) -> Iterator[Finding]:
    src = view.source
    known = src.global_arg_names | src.predefined_args
    # Known names get a non-empty stand-in value, so ${X:?msg} on a declared X is no error
    # here (the plan has expanded the word with the real values already).
    env = dict.fromkeys(known, "set")
    for word in (view.stage.from_.base_name, view.stage.from_.platform):
        if not word:
            continue
        for var in sorted(src.lexer.process(word, env).unmatched):
            if var in known:
                continue
            message = f"FROM argument '{var}' is not declared"
            alt = suggest(var, sorted(known), case_sensitive=True)
            if alt:
                message += f" (did you mean {alt}?)"
            yield Finding(message, view.line)


def _check_platform_const(view: StageView) -> Iterator[Finding]:
    platform = view.stage.from_.platform
    if platform and "$" not in platform:
        yield Finding(f'FROM --platform flag should not use constant value "{platform}"', view.line)


def _check_redundant_target_platform(view: StageView) -> Iterator[Finding]:
    platform = view.stage.from_.platform
    if "$" in platform and platform.strip() in ("$TARGETPLATFORM", "${TARGETPLATFORM}"):
        yield Finding(
            "Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is "
            "the default behavior",
            view.line,
        )


# --------------------------------------------------------------------------- instruction rules


def _check_json_args(view: InstructionView) -> Iterator[Finding]:
    ins = view.instruction
    if isinstance(ins, Cmd | Entrypoint) and ins.prepend_shell and ins.command:
        yield Finding(
            f"JSON arguments recommended for {ins.keyword} to prevent unintended "
            "behavior related to OS signals",
            view.line,
        )


def _check_multiple_instructions(view: InstructionView) -> Iterator[Finding]:
    ins = view.instruction
    if (
        view.stage is not None
        and isinstance(ins, Cmd | Entrypoint | Healthcheck)
        and view.stage.occurrence[view.position] == 2
    ):
        yield Finding(
            f"Multiple {ins.keyword} instructions should not be used in the same stage "
            "because only the last one will be used",
            view.line,
        )


def _check_maintainer(view: InstructionView) -> Iterator[Finding]:
    if isinstance(view.instruction, Maintainer):
        yield Finding("Maintainer instruction is deprecated in favor of using label", view.line)


def _check_legacy_key_value(view: InstructionView) -> Iterator[Finding]:
    ins = view.instruction
    if isinstance(ins, Env) and any(p.legacy for p in ins.pairs):
        kw = ins.keyword
        yield Finding(
            f'"{kw} key=value" should be used instead of legacy "{kw} key value" format', view.line
        )


def _check_workdir_relative(view: InstructionView) -> Iterator[Finding]:
    ins = view.instruction
    if isinstance(ins, Workdir):
        p = ins.path
        if not (p.startswith("/") or p.startswith("$") or re.match(r"^[A-Za-z]:[\\/]", p)):
            yield Finding(
                f'Relative workdir "{p}" can have unexpected results if the base image changes',
                view.line,
            )


def _check_expose_proto_casing(view: InstructionView) -> Iterator[Finding]:
    ins = view.instruction
    if isinstance(ins, Expose):
        for port in ins.ports:
            proto = port.partition("/")[2]
            if proto and proto != proto.lower():
                yield Finding(
                    f"Defined protocol '{port}' in EXPOSE instruction should be lowercase",
                    view.line,
                )


def _check_secrets(view: InstructionView) -> Iterator[Finding]:
    ins = view.instruction
    if isinstance(ins, Arg):
        keys = [a.key for a in ins.args]
    elif isinstance(ins, Env):
        keys = [p.key for p in ins.pairs]
    else:
        return
    for key in keys:
        if _SECRET_RE.search(key) and not _SECRET_ALLOW.search(key):
            yield Finding(
                f'Do not use ARG or ENV instructions for sensitive data ({ins.keyword} "{key}")',
                ins.line,
            )


def _check_undefined_var(view: InstructionView) -> Iterator[Finding]:
    stage = view.stage
    if stage is None:  # global ARGs are checked by UndefinedArgInFrom where they are used
        return
    used = _variables_used(view.instruction, view.source.lexer)
    declared = stage.declared_before[view.position]
    defined = declared | stage.inherited_env
    for var in sorted(used):
        if var in defined or var in _IMAGE_ENV or not _IDENTIFIER.match(var):
            continue
        message = f"Usage of undefined variable '${var}'"
        alt = suggest(var, sorted(defined), case_sensitive=True)
        if alt:
            message += f" (did you mean ${alt}?)"
        yield Finding(message, view.line)


def _variables_used(ins: Instruction, lex: Lexer) -> set[str]:
    """The variables the words BuildKit expands would read, found by expanding with an
    empty environment (the instruction tells which of its words expand)."""
    seen: set[str] = set()

    def probe(word: str) -> str:
        try:
            seen.update(lex.process(word, {}).unmatched)
        except DockerfileError:
            pass  # a malformed word is the plan's error to report, not a lint finding
        return word

    try:
        ins.expand(probe)
    except InstructionError:
        pass  # a value only valid once expanded: the words probed so far still count
    return seen


# --------------------------------------------------------------------------- the table

_DOCS = "https://docs.docker.com/go/dockerfile/rule/"

# Table order is report order within a scope; the driver reports the file rules, then each
# global ARG, then per stage its stage rules followed by each instruction in turn.
RULES: tuple[Rule[Any], ...] = (
    Rule(
        "NoEmptyContinuation",
        "Empty continuation lines will become errors in a future release",
        _DOCS + "no-empty-continuation/",
        Scope.FILE,
        _check_no_empty_continuation,
    ),
    Rule(
        "ConsistentInstructionCasing",
        "All commands within the Dockerfile should use the same casing (either upper or lower)",
        _DOCS + "consistent-instruction-casing/",
        Scope.FILE,
        _check_instruction_casing,
    ),
    Rule(
        "FromAsCasing",
        "The 'as' keyword should match the case of the 'from' keyword",
        _DOCS + "from-as-casing/",
        Scope.STAGE,
        _check_from_as_casing,
    ),
    Rule(
        "StageNameCasing",
        "Stage names should be lowercase",
        _DOCS + "stage-name-casing/",
        Scope.STAGE,
        _check_stage_name_casing,
    ),
    Rule(
        "ReservedStageName",
        "Reserved words should not be used as stage names",
        _DOCS + "reserved-stage-name/",
        Scope.STAGE,
        _check_reserved_stage_name,
    ),
    Rule(
        "DuplicateStageName",
        "Stage names should be unique",
        _DOCS + "duplicate-stage-name/",
        Scope.STAGE,
        _check_duplicate_stage_name,
    ),
    Rule(
        "UndefinedArgInFrom",
        "FROM command must use declared ARGs",
        _DOCS + "undefined-arg-in-from/",
        Scope.STAGE,
        _check_undefined_arg_in_from,
    ),
    Rule(
        "FromPlatformFlagConstDisallowed",
        "FROM --platform flag should not use a constant value",
        _DOCS + "from-platform-flag-const-disallowed/",
        Scope.STAGE,
        _check_platform_const,
    ),
    Rule(
        "RedundantTargetPlatform",
        "Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the "
        "default behavior",
        _DOCS + "redundant-target-platform/",
        Scope.STAGE,
        _check_redundant_target_platform,
    ),
    Rule(
        "JSONArgsRecommended",
        "JSON arguments recommended for ENTRYPOINT/CMD to prevent unintended behavior related "
        "to OS signals",
        _DOCS + "json-args-recommended/",
        Scope.INSTRUCTION,
        _check_json_args,
    ),
    Rule(
        "MultipleInstructionsDisallowed",
        "Multiple instructions of the same type should not be used in the same stage",
        _DOCS + "multiple-instructions-disallowed/",
        Scope.INSTRUCTION,
        _check_multiple_instructions,
    ),
    Rule(
        "MaintainerDeprecated",
        "The MAINTAINER instruction is deprecated, use a label instead to define an image author",
        _DOCS + "maintainer-deprecated/",
        Scope.INSTRUCTION,
        _check_maintainer,
    ),
    Rule(
        "LegacyKeyValueFormat",
        "Legacy key/value format with whitespace separator should not be used",
        _DOCS + "legacy-key-value-format/",
        Scope.INSTRUCTION,
        _check_legacy_key_value,
    ),
    Rule(
        "WorkdirRelativePath",
        "Relative workdir without an absolute workdir declared within the build can have "
        "unexpected results if the base image changes",
        _DOCS + "workdir-relative-path/",
        Scope.INSTRUCTION,
        _check_workdir_relative,
    ),
    Rule(
        "ExposeProtoCasing",
        "Protocol in EXPOSE instruction should be lowercase",
        _DOCS + "expose-proto-casing/",
        Scope.INSTRUCTION,
        _check_expose_proto_casing,
    ),
    Rule(
        "SecretsUsedInArgOrEnv",
        "Sensitive data should not be used in the ARG or ENV commands",
        _DOCS + "secrets-used-in-arg-or-env/",
        Scope.INSTRUCTION,
        _check_secrets,
    ),
    Rule(
        "UndefinedVar",
        "Variables should be defined before their use",
        _DOCS + "undefined-var/",
        Scope.INSTRUCTION,
        _check_undefined_var,
    ),
)


# --------------------------------------------------------------------------- the driver


def parse_check_directive(value: str | None) -> tuple[frozenset[str], bool]:
    """``skip=A,B;error=true`` to (skipped rules, error flag); DockerfileError if malformed."""
    if not value:
        return frozenset(), False
    value = value.split(" ", 1)[0]  # BuildKit keeps only the first word ("skip=all // x")
    skip: set[str] = set()
    error = False
    for part in value.split(";"):
        part = part.strip()
        if not part:
            continue
        key, sep, val = part.partition("=")
        key = key.strip().lower()
        if not sep:
            raise DockerfileError(f"invalid check directive: {value}", file=None)
        if key == "skip":
            skip.update(v.strip() for v in val.split(",") if v.strip())
        elif key == "error":
            if val.strip().lower() not in ("true", "false"):
                raise DockerfileError(f"invalid check directive: {value}", file=None)
            error = val.strip().lower() == "true"
        else:
            raise DockerfileError(f"invalid check directive: {value}", file=None)
    return frozenset(skip), error


def lint(source: LintSource, rules: tuple[Rule[Any], ...] = RULES) -> list[LintWarning]:
    """Run the rules the ``check`` directive leaves on; raise if it asks for errors."""
    tree = source.tree
    skip, as_error = parse_check_directive(tree.directive("check"))
    active = [r for r in rules if r.name not in skip and "all" not in skip]
    found = [
        LintWarning(rule.name, f.message, line=f.line, file=tree.filename, url=rule.url)
        for rule, f in _run(source, active)
    ]
    if as_error and found:
        raise _violations_error(tree, found)
    return found


def _run(source: LintSource, rules: list[Rule[Any]]) -> Iterator[tuple[Rule[Any], Finding]]:
    """Each rule on what its scope names, in report order."""
    by_scope = {scope: [r for r in rules if r.scope is scope] for scope in Scope}
    for rule in by_scope[Scope.FILE]:
        yield from ((rule, f) for f in rule.check(source))
    views: list[InstructionView] = [
        InstructionView(source, None, pos, node, arg)
        for pos, (node, arg) in enumerate(source.global_args)
    ]
    yield from _run_instructions(by_scope[Scope.INSTRUCTION], views)
    for index, stage in enumerate(source.stages):
        view = StageView(source, index)
        for rule in by_scope[Scope.STAGE]:
            yield from ((rule, f) for f in rule.check(view))
        views = [
            InstructionView(source, stage, pos, node, ins)
            for pos, (node, ins) in enumerate(stage.body)
        ]
        yield from _run_instructions(by_scope[Scope.INSTRUCTION], views)


def _run_instructions(
    rules: list[Rule[Any]], views: list[InstructionView]
) -> Iterator[tuple[Rule[Any], Finding]]:
    for view in views:
        for rule in rules:
            yield from ((rule, f) for f in rule.check(view))


def _violations_error(tree: SyntaxTree, found: list[LintWarning]) -> DockerfileError:
    first = found[0]
    src = tree.lines[first.line - 1] if first.line and first.line <= len(tree.lines) else None
    return DockerfileError(
        f"lint violation found for rules: {', '.join(sorted({w.rule for w in found}))}",
        file=tree.filename,
        line=first.line,
        column=1 if src is not None else None,
        source=src,
        hint="; ".join(str(w) for w in found),
    )

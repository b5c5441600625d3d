"""BuildKit's single-file lint rules (``frontend/dockerfile/linter``), reported as warnings.

``# check=skip=<rules|all>`` silences rules and ``# check=error=true`` turns findings into a
DockerfileError, as BuildKit does.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import TYPE_CHECKING

from nbcontainer.dockerfile.errors import DockerfileError, LintWarning
from nbcontainer.dockerfile.flags import suggest
from nbcontainer.dockerfile.instructions import (
    Arg,
    Cmd,
    Entrypoint,
    Env,
    Expose,
    Healthcheck,
    Workdir,
)
from nbcontainer.dockerfile.lexer import Lexer

if TYPE_CHECKING:
    from nbcontainer.dockerfile.plan import BuildPlan

__all__ = ["RULES", "lint", "parse_check_directive"]

RULES = (
    "ConsistentInstructionCasing", "DuplicateStageName", "ExposeProtoCasing",
    "FromAsCasing", "FromPlatformFlagConstDisallowed", "JSONArgsRecommended",
    "LegacyKeyValueFormat", "MaintainerDeprecated", "MultipleInstructionsDisallowed",
    "NoEmptyContinuation", "RedundantTargetPlatform", "ReservedStageName",
    "SecretsUsedInArgOrEnv", "StageNameCasing", "UndefinedArgInFrom", "UndefinedVar",
    "WorkdirRelativePath",
)  # fmt: skip
_URL = "https://docs.docker.com/go/dockerfile/rule/{}/"
_SECRET_RE = re.compile(r"(?i)(?:_|^)(?:apikey|auth|credential|credentials|key|password|pword|passwd|secret|token)(?:_|$)")
_SECRET_ALLOW = re.compile(r"(?i)public")
# Variables a base image usually defines; we cannot see base image configs here.
_IMAGE_ENV = frozenset({"PATH", "HOME", "HOSTNAME", "TERM", "LANG", "PWD", "SHELL", "USER"})


def _kebab(rule: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z][a-z])", "-", rule).lower().replace("j-s-o-n", "json")


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


def lint(plan: BuildPlan, *, raw_stages: list, meta_nodes: list) -> list[LintWarning]:
    """Run every rule; respect the ``check`` directive."""
    tree = plan.syntax
    fname = tree.filename
    skip, as_error = parse_check_directive(tree.directive("check"))
    out: list[LintWarning] = list(tree.warnings)

    def warn(rule: str, message: str, line: int | None) -> None:
        url = _URL.format(_kebab(rule))
        out.append(LintWarning(rule, message, line=line, file=fname, url=url))

    # ConsistentInstructionCasing: compare with the majority casing.
    casings = Counter()
    for node in tree.nodes:
        w = node.written_keyword
        if w.isupper():
            casings["upper"] += 1
        elif w.islower():
            casings["lower"] += 1
    majority = "upper" if casings["upper"] >= casings["lower"] else "lower"
    for node in tree.nodes:
        w = node.written_keyword
        if not w or node.keyword not in _KEYWORDS:
            continue
        bad = (majority == "upper" and not w.isupper()) or (majority == "lower" and not w.islower())
        if bad:
            case = "uppercase" if majority == "upper" else "lowercase"
            warn(
                "ConsistentInstructionCasing",
                f"Command '{w}' should match the case of the command majority ({case})",
                node.start_line,
            )

    names_seen: dict[str, int] = {}
    meta_declared = {a.key for _, arg in meta_nodes for a in arg.args}
    platform_args = {
        "BUILDPLATFORM", "BUILDOS", "BUILDARCH", "BUILDVARIANT",
        "TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT",
    }  # fmt: skip
    lex = Lexer(tree.escape_token)
    for _node, arg in meta_nodes:
        _secret_check(arg, warn)
    for i, (node, frm, body) in enumerate(raw_stages):
        # FromAsCasing / StageNameCasing / names
        if frm.as_keyword:
            kw = node.written_keyword
            if (kw.isupper() and not frm.as_keyword.isupper()) or (
                kw.islower() and not frm.as_keyword.islower()
            ):
                warn("FromAsCasing", f"'{frm.as_keyword}' and '{kw}' keywords' casing do not match", node.start_line)
            written_name = node.args[2]
            if written_name != written_name.lower():
                warn("StageNameCasing", f"Stage name '{written_name}' should be lowercase", node.start_line)
            if frm.stage_name in ("scratch", "context"):
                warn(
                    "ReservedStageName",
                    f"Stage name should not use the same name as reserved stage '{frm.stage_name}'",
                    node.start_line,
                )
            if frm.stage_name in names_seen:
                warn(
                    "DuplicateStageName",
                    f"Duplicate stage name '{frm.stage_name}', stage names should be unique",
                    node.start_line,
                )
            names_seen.setdefault(frm.stage_name, i)
        # FROM argument checks
        for word in (frm.base_name, frm.platform):
            if not word:
                continue
            res = lex.process(word, {})
            for var in sorted(res.unmatched):
                if var not in meta_declared and var not in platform_args:
                    suggestion = suggest(var, sorted(meta_declared | platform_args), case_sensitive=True)
                    msg = f"FROM argument '{var}' is not declared"
                    if suggestion:
                        msg += f" (did you mean {suggestion}?)"
                    warn("UndefinedArgInFrom", msg, node.start_line)
        if frm.platform:
            if "$" not in frm.platform:
                warn(
                    "FromPlatformFlagConstDisallowed",
                    f"FROM --platform flag should not use constant value \"{frm.platform}\"",
                    node.start_line,
                )
            elif frm.platform.strip() in ("$TARGETPLATFORM", "${TARGETPLATFORM}"):
                warn(
                    "RedundantTargetPlatform",
                    'Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior',
                    node.start_line,
                )
        # Body rules
        counts: Counter[str] = Counter()
        declared: set[str] = set()
        base = plan.stages[i].base_stage
        inherited: set[str] = set(plan.stages[base].env) if base is not None else set()
        for cnode, ins in body:
            if isinstance(ins, Cmd | Entrypoint) and ins.prepend_shell and ins.command:
                warn(
                    "JSONArgsRecommended",
                    f"JSON arguments recommended for {ins.keyword} to prevent unintended "
                    "behavior related to OS signals",
                    cnode.start_line,
                )
            if isinstance(ins, Cmd | Entrypoint | Healthcheck):
                counts[ins.keyword] += 1
                if counts[ins.keyword] == 2:
                    warn(
                        "MultipleInstructionsDisallowed",
                        f"Multiple {ins.keyword} instructions should not be used in the same stage "
                        "because only the last one will be used",
                        cnode.start_line,
                    )
            if ins.keyword == "MAINTAINER":
                warn(
                    "MaintainerDeprecated",
                    "Maintainer instruction is deprecated in favor of using label",
                    cnode.start_line,
                )
            if isinstance(ins, Env) and any(p.legacy for p in ins.pairs):
                kw = ins.keyword
                warn(
                    "LegacyKeyValueFormat",
                    f'"{kw} key=value" should be used instead of legacy "{kw} key value" format',
                    cnode.start_line,
                )
            if isinstance(ins, Workdir):
                p = ins.path
                if not (p.startswith("/") or p.startswith("$") or re.match(r"^[A-Za-z]:[\\/]", p)):
                    warn(
                        "WorkdirRelativePath",
                        f"Relative workdir \"{p}\" can have unexpected results if the base image changes",
                        cnode.start_line,
                    )
            if isinstance(ins, Expose):
                for port in ins.ports:
                    proto = port.partition("/")[2]
                    if proto and proto != proto.lower():
                        warn(
                            "ExposeProtoCasing",
                            f"Defined protocol '{port}' in EXPOSE instruction should be lowercase",
                            cnode.start_line,
                        )
            if isinstance(ins, Arg | Env):
                _secret_check(ins, warn)
            # UndefinedVar: variables used in expanded words that nothing defines.
            if ins.expand is not type(ins).__mro__[-2].expand:
                seen_vars: set[str] = set()

                def probe(word: str, _seen: set[str] = seen_vars) -> str:
                    try:
                        _seen.update(lex.process(word, {}).unmatched)
                    except DockerfileError:
                        pass
                    return word

                try:
                    ins.expand(probe)
                except Exception:
                    pass
                known = declared | inherited | _IMAGE_ENV
                for var in sorted(seen_vars):
                    if var in known or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", var):
                        continue
                    msg = f"Usage of undefined variable '${var}'"
                    alt = suggest(var, sorted(declared | inherited), case_sensitive=True)
                    if alt:
                        msg += f" (did you mean ${alt}?)"
                    warn("UndefinedVar", msg, cnode.start_line)
            if isinstance(ins, Arg):
                declared.update(a.key for a in ins.args)
            elif isinstance(ins, Env) and ins.keyword == "ENV":
                declared.update(p.key for p in ins.pairs)

    kept = [w for w in out if w.rule not in skip and "all" not in skip]
    if as_error and kept:
        first = kept[0]
        src = tree.lines[first.line - 1] if first.line and first.line <= len(tree.lines) else None
        raise DockerfileError(
            f"lint violation found for rules: {', '.join(sorted({w.rule for w in kept}))}",
            file=fname,
            line=first.line,
            column=1 if src is not None else None,
            source=src,
            hint="; ".join(str(w) for w in kept),
        )
    return kept


_KEYWORDS = frozenset(
    ["add", "arg", "cmd", "copy", "entrypoint", "env", "expose", "from", "healthcheck", "label", "maintainer", "onbuild", "run", "shell", "stopsignal", "user", "volume", "workdir"]
)


def _secret_check(ins: Arg | Env, warn) -> None:
    keys = [a.key for a in ins.args] if isinstance(ins, Arg) else [p.key for p in ins.pairs]
    for key in keys:
        if _SECRET_RE.search(key) and not _SECRET_ALLOW.search(key):
            warn(
                "SecretsUsedInArgOrEnv",
                f'Do not use ARG or ENV instructions for sensitive data ({ins.keyword} "{key}")',
                ins.line,
            )

"""Dockerfile frontend: BuildKit-exact parsing, expansion, .dockerignore and the build plan.

Layers, each usable alone (as BuildKit's ``parser`` → ``instructions`` → ``dockerfile2llb``):

* :func:`parse_syntax` – text to AST nodes (directives, heredocs, flags, line ranges);
* :func:`parse_instruction` – one node to a typed, validated instruction;
* :class:`Lexer` – BuildKit's word expansion (``ProcessWord``/``ProcessWords``);
* :func:`parse` / :func:`build_plan` – stages, ARG scoping, expansion, stage graph, lint;
* :class:`IgnoreMatcher` – ``.dockerignore`` with moby/patternmatcher semantics.
"""

from __future__ import annotations

from nbcontainer.dockerfile.errors import DockerfileError, LintWarning
from nbcontainer.dockerfile.ignore import IgnoreMatcher, find_ignore_file, read_ignore_patterns
from nbcontainer.dockerfile.instructions import (
    Add,
    Arg,
    ArgSpec,
    Cmd,
    Copy,
    Entrypoint,
    Env,
    Expose,
    From,
    Healthcheck,
    HealthConfig,
    Instruction,
    KeyValue,
    Label,
    Maintainer,
    Onbuild,
    PortSpec,
    Run,
    Shell,
    SourceContent,
    StopSignal,
    User,
    Volume,
    Workdir,
    expand_instruction,
    parse_instruction,
)
from nbcontainer.dockerfile.lexer import Lexer
from nbcontainer.dockerfile.mounts import Mount
from nbcontainer.dockerfile.plan import (
    BuildPlan,
    Platform,
    Stage,
    StageRef,
    build_plan,
    default_platform,
    parse,
)
from nbcontainer.dockerfile.syntax import Directive, Heredoc, Node, SyntaxTree, dump, parse_syntax

__all__ = [
    "Add", "Arg", "ArgSpec", "BuildPlan", "Cmd", "Copy", "Directive", "DockerfileError",
    "Entrypoint", "Env", "Expose", "From", "HealthConfig", "Healthcheck", "Heredoc",
    "IgnoreMatcher", "Instruction", "KeyValue", "Label", "Lexer", "LintWarning", "Maintainer",
    "Mount", "Node", "Onbuild", "Platform", "PortSpec", "Run", "Shell", "SourceContent", "Stage",
    "StageRef", "StopSignal", "SyntaxTree", "User", "Volume", "Workdir", "build_plan",
    "default_platform", "dump", "expand_instruction", "find_ignore_file", "parse", "parse_instruction", "parse_syntax",
    "read_ignore_patterns",
]  # fmt: skip

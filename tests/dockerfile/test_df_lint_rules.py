"""The lint rule table (BuildKit's ``linter/ruleset.go``) and its driver, over typed data."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import nbcontainer.dockerfile.lint as lint_module
from nbcontainer.dockerfile import DockerfileError, parse, parse_instruction, parse_syntax
from nbcontainer.dockerfile.instructions import Arg, From
from nbcontainer.dockerfile.lint import (
    RULES,
    Finding,
    InstructionView,
    LintSource,
    Rule,
    Scope,
    StageSource,
    lint,
)


def source(text: str, predefined: frozenset[str] = frozenset()) -> LintSource:
    """A LintSource built straight from the syntax tree (no plan involved)."""
    tree = parse_syntax(text)
    global_args: list = []
    stages: list = []
    for node in tree.nodes:
        ins = parse_instruction(node, lines=tree.lines)
        if isinstance(ins, From):
            stages.append((node, ins, []))
        elif stages:
            stages[-1][2].append((node, ins))
        else:
            assert isinstance(ins, Arg)
            global_args.append((node, ins))
    return LintSource(
        tree=tree,
        global_args=tuple(global_args),
        stages=tuple(StageSource(n, f, tuple(b)) for n, f, b in stages),
        predefined_args=predefined,
    )


def test_every_rule_is_one_record_with_buildkits_name_and_docs_url() -> None:
    names = [r.name for r in RULES]
    assert len(names) == len(set(names)) == 17
    for rule in RULES:
        assert rule.description and rule.check is not None
        assert rule.url.startswith("https://docs.docker.com/go/dockerfile/rule/")
        assert rule.url.endswith("/")
    url = {r.name: r.url for r in RULES}
    assert url["JSONArgsRecommended"].endswith("/json-args-recommended/")
    assert url["FromPlatformFlagConstDisallowed"].endswith("/from-platform-flag-const-disallowed/")


def test_no_empty_continuation_url_matches_the_syntax_layer() -> None:
    tree = parse_syntax("FROM a\nRUN a \\\n\n b\n")
    (warning,) = tree.warnings
    rule = next(r for r in RULES if r.name == warning.rule)
    assert rule.url == warning.url


def test_lint_runs_on_typed_data_without_a_plan() -> None:
    found = lint(source("FROM alpine AS Build\nCMD echo hi\nMAINTAINER me\n"))
    assert [(w.rule, w.line) for w in found] == [
        ("StageNameCasing", 1),
        ("JSONArgsRecommended", 2),
        ("MaintainerDeprecated", 3),
    ]


def test_report_order_file_then_global_args_then_each_stage() -> None:
    text = (
        "ARG API_TOKEN\n"
        "FROM alpine AS Build\n"
        "run echo\n"
        "CMD a\n"
        "CMD b\n"
        "FROM alpine AS build\n"
        "ENV a b\n"
    )
    got = [(w.rule, w.line) for w in parse(text, build_platform="linux/amd64").warnings]
    assert got == [
        ("ConsistentInstructionCasing", 3),  # file rules first
        ("SecretsUsedInArgOrEnv", 1),  # then the global ARGs
        ("StageNameCasing", 2),  # then stage 0: its stage rules …
        ("JSONArgsRecommended", 4),  # … and its instructions in turn
        ("JSONArgsRecommended", 5),
        ("MultipleInstructionsDisallowed", 5),
        ("DuplicateStageName", 6),  # then stage 1
        ("LegacyKeyValueFormat", 7),
    ]


def test_driver_runs_a_custom_table() -> None:
    def every_instruction(view: InstructionView):
        yield Finding(f"saw {view.instruction.keyword}", view.line)

    rule = Rule("Probe", "every instruction", "https://example.invalid/", Scope.INSTRUCTION, every_instruction)
    found = lint(source("ARG A=1\nFROM a\nRUN x\n"), rules=(rule,))
    assert [(w.rule, w.message, w.line, w.url) for w in found] == [
        ("Probe", "saw ARG", 1, "https://example.invalid/"),
        ("Probe", "saw RUN", 3, "https://example.invalid/"),
    ]


def test_skipped_rules_do_not_run_and_error_mode_raises() -> None:
    found = lint(source("# check=skip=JSONArgsRecommended\nFROM a\nCMD x\nMAINTAINER m\n"))
    assert [w.rule for w in found] == ["MaintainerDeprecated"]
    with pytest.raises(DockerfileError) as info:
        lint(source("# check=error=true\nFROM a\nCMD x\n"))
    assert info.value.message == "lint violation found for rules: JSONArgsRecommended"
    assert info.value.line == 3


def test_undefined_arg_in_from_uses_the_predefined_names_it_is_given() -> None:
    text = "FROM --platform=$BUILDPLATFORM alpine\n"
    assert [w.rule for w in lint(source(text))] == ["UndefinedArgInFrom"]
    assert lint(source(text, predefined=frozenset({"BUILDPLATFORM"}))) == []


def test_undefined_arg_in_from_accepts_required_declared_args() -> None:
    # ${X?msg} on a declared global ARG expands; linting it must not fail the parse.
    plan = parse("ARG X=1\nFROM alpine:${X?missing}${Y:-a}\n", build_platform="linux/amd64")
    assert plan.stages[0].base_name == "alpine:1a"
    assert [(w.rule, w.message) for w in plan.warnings] == [
        ("UndefinedArgInFrom", "FROM argument 'Y' is not declared (did you mean X?)")
    ]


def test_inherited_env_comes_from_the_plan() -> None:
    text = "FROM alpine AS a\nENV FOO=1\nFROM a\nWORKDIR /$FOO/$BAR\n"
    assert [w.message for w in parse(text, build_platform="linux/amd64").warnings] == [
        "Usage of undefined variable '$BAR'"
    ]


def test_lint_does_not_import_the_plan() -> None:
    tree = ast.parse(Path(lint_module.__file__).read_text())
    imported = {
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
    } | {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert "nbcontainer.dockerfile.plan" not in imported
    assert not any(name.endswith(".plan") or name == "plan" for name in imported)

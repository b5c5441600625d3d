"""Lint warnings for BuildKit's single-file rules (``frontend/dockerfile/linter/ruleset.go``):
returned with the plan, never raised (unless ``# check=error=true``)."""

from __future__ import annotations

import pytest

from nbcontainer.dockerfile import parse


def warnings(text: str, **kw) -> list[tuple[str, int | None, str]]:
    plan = parse(text, build_platform="linux/amd64", **kw)
    return [(w.rule, w.line, w.message) for w in plan.warnings]


@pytest.mark.parametrize(
    ("text", "rule", "line", "message"),
    [
        ("FROM alpine\nCMD echo hi\n", "JSONArgsRecommended", 2,
         "JSON arguments recommended for CMD to prevent unintended behavior related to OS signals"),
        ("FROM alpine AS Build\n", "StageNameCasing", 1, "Stage name 'Build' should be lowercase"),
        ("FROM alpine as build\n", "FromAsCasing", 1, "'as' and 'FROM' keywords' casing do not match"),
        ("FROM alpine\nENV a=$NOPE\n", "UndefinedVar", 2, "Usage of undefined variable '$NOPE'"),
        ("FROM alpine\nARG VERSION\nENV v=$VERSON\n", "UndefinedVar", 3,
         "Usage of undefined variable '$VERSON' (did you mean $VERSION?)"),
        ("FROM alpine\nMAINTAINER me\n", "MaintainerDeprecated", 2,
         "Maintainer instruction is deprecated in favor of using label"),
        ("FROM alpine\nENV a b\n", "LegacyKeyValueFormat", 2,
         '"ENV key=value" should be used instead of legacy "ENV key value" format'),
        ("FROM alpine AS a\nFROM alpine AS a\n", "DuplicateStageName", 2,
         "Duplicate stage name 'a', stage names should be unique"),
        ("FROM alpine AS scratch\n", "ReservedStageName", 1,
         "Stage name should not use the same name as reserved stage 'scratch'"),
        ("FROM alpine${TAG}\n", "UndefinedArgInFrom", 1, "FROM argument 'TAG' is not declared"),
        ("FROM --platform=linux/amd64 alpine\n", "FromPlatformFlagConstDisallowed", 1,
         'FROM --platform flag should not use constant value "linux/amd64"'),
        ("FROM --platform=$TARGETPLATFORM alpine\n", "RedundantTargetPlatform", 1,
         "Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior"),
        ("FROM alpine\nWORKDIR app\n", "WorkdirRelativePath", 2,
         'Relative workdir "app" can have unexpected results if the base image changes'),
        ("FROM alpine\nCMD [\"a\"]\nCMD [\"b\"]\n", "MultipleInstructionsDisallowed", 3,
         "Multiple CMD instructions should not be used in the same stage because only the last one will be used"),
        ("FROM alpine\nARG API_TOKEN\n", "SecretsUsedInArgOrEnv", 2,
         'Do not use ARG or ENV instructions for sensitive data (ARG "API_TOKEN")'),
        ("FROM alpine\nEXPOSE 80/TCP\n", "ExposeProtoCasing", 2,
         "Defined protocol '80/TCP' in EXPOSE instruction should be lowercase"),
        ("FROM alpine\nrun a\nRUN b\nRUN c\n", "ConsistentInstructionCasing", 2,
         "Command 'run' should match the case of the command majority (uppercase)"),
        ("FROM alpine\nRUN a \\\n\n b\n", "NoEmptyContinuation", 3, "Empty continuation line"),
    ],
)  # fmt: skip
def test_rule(text: str, rule: str, line: int, message: str) -> None:
    assert (rule, line, message) in warnings(text)


def test_clean_file_has_no_warnings() -> None:
    text = (
        "ARG BASE=alpine:3.19\nFROM $BASE AS build\nARG TARGETARCH\nENV A=1\n"
        "WORKDIR /src\nCOPY . .\nRUN make ARCH=$TARGETARCH\n"
        "FROM scratch\nCOPY --from=build /src/out /out\nENTRYPOINT [\"/out\"]\n"
    )
    assert warnings(text) == []


def test_check_skip_directive() -> None:
    text = "# check=skip=JSONArgsRecommended,MaintainerDeprecated\nFROM a\nCMD x\nMAINTAINER m\nENV a b\n"
    assert [w[0] for w in warnings(text)] == ["LegacyKeyValueFormat"]
    assert warnings("# check=skip=all\nFROM a\nCMD x\n") == []


def test_warnings_carry_docs_url() -> None:
    plan = parse("FROM a\nCMD x\n", build_platform="linux/amd64")
    assert plan.warnings[0].url == "https://docs.docker.com/go/dockerfile/rule/json-args-recommended/"
    assert str(plan.warnings[0]).startswith("Dockerfile:2: JSONArgsRecommended: ")

"""ONBUILD's forbidden and odd triggers end in BuildKit's errors, never in a crash.

``FROM busybox`` / ``ONBUILD ONBUILD RUN echo test`` once raised an IndexError in the syntax
layer (the nested ONBUILD was re-parsed with the wrong line numbers); a continuation before
the nested keyword recursed without end.
"""

from __future__ import annotations

import pytest

from nbcontainer.dockerfile import DockerfileError, Onbuild, dump, parse, parse_syntax

CHAINING = "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"


def error(text: str) -> DockerfileError:
    with pytest.raises(DockerfileError) as info:
        parse(text, build_platform="linux/amd64")
    return info.value


def test_onbuild_onbuild_gives_buildkits_error() -> None:
    err = error("FROM busybox\nONBUILD ONBUILD RUN echo test")
    assert err.message == CHAINING
    assert (err.line, err.column) == (2, 1)
    assert str(err).startswith("Dockerfile:2:1: " + CHAINING)


@pytest.mark.parametrize(
    "text",
    [
        "FROM busybox\nONBUILD ONBUILD RUN echo test\n",
        "FROM busybox\n\n# comment\nONBUILD ONBUILD RUN echo test\n",
        "FROM busybox\nONBUILD onbuild RUN x\n",
        "FROM busybox\nonbuild  ONBUILD\n",
        "FROM busybox\nONBUILD ONBUILD\n",
        "FROM busybox\nONBUILD ONBUILD ONBUILD RUN x\n",
        "FROM busybox\nONBUILD ONBUILD MAINTAINER x\n",
        "FROM busybox\nONBUILD \\\n ONBUILD RUN x\n",
        "# escape=`\nFROM b\nONBUILD `\n onbuild OnBuild\nRUN z\n",
        "FROM b\nONBUILD ONBUILD --mount=type=cache,target=/x RUN <<EOF\nhi\nEOF\n",
        "ONBUILD ONBUILD RUN x\n",
    ],
)
def test_chained_onbuild_variants(text: str) -> None:
    assert error(text).message == CHAINING


def test_nested_onbuild_parses_in_the_syntax_layer() -> None:
    # BuildKit's parser accepts the nesting; only the instruction layer refuses it.
    tree = parse_syntax("FROM busybox\nONBUILD ONBUILD RUN echo test\n")
    assert dump(tree) == '(from "busybox")\n(onbuild (onbuild (run "echo test")))'
    sub = tree.nodes[1].sub
    assert sub is not None and sub.keyword == "onbuild" and sub.start_line == 2
    assert sub.sub is not None and sub.sub.keyword == "run"


@pytest.mark.parametrize(
    ("text", "message", "column"),
    [
        ("FROM busybox\nONBUILD FROM alpine\n", "FROM isn't allowed as an ONBUILD trigger", 9),
        ("FROM busybox\nONBUILD MAINTAINER me\n", "MAINTAINER isn't allowed as an ONBUILD trigger", 9),
        ("FROM busybox\nONBUILD from alpine\n", "FROM isn't allowed as an ONBUILD trigger", 9),
        ("FROM busybox\nONBUILD\n", "ONBUILD requires at least one argument", 1),
        ("FROM busybox\nONBUILD    \n", "ONBUILD requires at least one argument", 1),
        ("FROM busybox\nONBUILD --foo RUN x\n", "unknown flag: --foo", 9),
    ],
)
def test_forbidden_and_empty_triggers(text: str, message: str, column: int) -> None:
    err = error(text)
    assert err.message == message
    assert (err.line, err.column) == (2, column)


def test_unknown_trigger_is_kept_for_the_child_build() -> None:
    # BuildKit validates a trigger only when it fires (in the build that uses the image).
    plan = parse("FROM busybox\nONBUILD FOO bar\n", build_platform="linux/amd64")
    (onbuild,) = plan.stages[0].instructions
    assert isinstance(onbuild, Onbuild)
    assert onbuild.expression == "FOO bar" and onbuild.trigger is None


def test_onbuild_with_heredoc_keeps_its_body() -> None:
    plan = parse("FROM b\nONBUILD COPY <<EOF /x\nhi\nEOF\nRUN a\n", build_platform="linux/amd64")
    onbuild = plan.stages[0].instructions[0]
    assert isinstance(onbuild, Onbuild)
    assert onbuild.expression == "COPY <<EOF /x\nhi\nEOF"
    assert onbuild.trigger is not None and onbuild.trigger.keyword == "COPY"

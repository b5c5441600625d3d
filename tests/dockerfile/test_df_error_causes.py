"""``--debug`` shows a real cause: errors keep the exception they come from when it says
more than the message, and drop it (``from None``) when it only repeats the message."""

from __future__ import annotations

import pytest

from nbcontainer.dockerfile import DockerfileError, IgnoreMatcher, Lexer, parse
from nbcontainer.errors import ReferenceFormatError


def raised(fn) -> DockerfileError:
    with pytest.raises(DockerfileError) as info:
        fn()
    return info.value


def test_invalid_utf8_keeps_the_decode_error() -> None:
    err = raised(lambda: parse(b"FROM a\nRUN echo \xff\n"))
    assert err.message == "Dockerfile is not valid UTF-8" and (err.line, err.column) == (2, 10)
    assert isinstance(err.__cause__, UnicodeDecodeError)


def test_bad_platform_keeps_the_reason() -> None:
    err = raised(lambda: parse("FROM a\n", platform="linux/arm64/v8/extra/x"))
    assert err.message.startswith("failed to parse target platform: ")
    assert isinstance(err.__cause__, DockerfileError)
    assert isinstance(err.__cause__.__cause__, ReferenceFormatError)


def test_ignore_pattern_keeps_the_syntax_problem() -> None:
    err = raised(lambda: IgnoreMatcher(["a[b"]))
    assert err.message == "syntax error in pattern: a[b"
    assert isinstance(err.__cause__, ValueError)


@pytest.mark.parametrize(
    "fn",
    [
        lambda: parse("FROM a\nFROMM b\n"),  # located instruction error
        lambda: parse("FROM a\nCOPY --from=9 /a /b\n"),  # plan error
        lambda: parse("FROM a\nENV X=${Y\n"),  # lexer error, located
        lambda: Lexer("\\").process("${", {}),
    ],
)
def test_our_own_errors_carry_no_cause(fn) -> None:
    err = raised(fn)
    assert err.__cause__ is None
    assert err.__context__ is None or err.__suppress_context__

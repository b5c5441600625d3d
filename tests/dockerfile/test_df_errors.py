"""Every error class the issue lists: BuildKit's words, plus file, line, column and caret."""

from __future__ import annotations

import pytest

from nbcontainer.dockerfile import DockerfileError, parse
from nbcontainer.errors import NbcontainerError


def fail(text: str, **kw) -> DockerfileError:
    with pytest.raises(DockerfileError) as exc:
        parse(text, build_platform="linux/amd64", **kw)
    return exc.value


# (dockerfile, message, line, column, caret line (the marker under the source line))
CASES = [
    (
        "FROM alpine\nFROMM x\n",
        "unknown instruction: FROMM (did you mean FROM?)",
        2, 1, "^^^^^",
    ),
    (
        "FROM alpine\n  RUNN ls\n",
        "unknown instruction: RUNN (did you mean RUN?)",
        2, 3, "  ^^^^",
    ),
    (
        "FROM a b\n",
        "FROM requires either one or three arguments",
        1, 1, "^",
    ),
    (
        "FROM alpine AS a\nFROM alpine\nCOPY --from=9 /a /b\n",
        "invalid stage index 9",
        3, 6, "     " + "^" * 8,
    ),
    (
        "FROM alpine AS a\nFROM alpine\nCOPY --from=NotAStage /a /b\n",
        "invalid from flag value NotAStage: undefined stage or invalid image reference",
        3, 6, "     " + "^" * 16,
    ),
    (
        "FROM busybox AS stage0\nCOPY --from=stage0 f1 /sub/\n",
        "circular dependency detected on stage: stage0",
        2, 8, "       ^^^^",
    ),
    (
        "FROM alpine\nRUN <<EOF\necho hi\n",
        "unterminated heredoc",
        2, 1, "^",
    ),
    (
        'FROM alpine\nCMD ["echo", 1]\n',
        "when using JSON array syntax, arrays must be comprised of strings only",
        2, 5, "    ^",
    ),
    (
        "FROM alpine\nCOPY --chmod=999 a /b\n",
        "invalid chmod parameter: 999",
        2, 14, "             ^^^",
    ),
    (
        "FROM alpine\nCOPY --owner=1 a /b\n",
        "unknown flag: --owner",
        2, 6, "     ^^^^^^^^^",
    ),
    (
        "FROM alpine\nENV a=1 \\\n    b\n",
        'Syntax error - can\'t find = in "b". Must be of the form: name=value',
        3, 5, "    ^",
    ),
    (
        "FROM alpine\nWORKDIR ${X:?must be set}\n",
        'failed to process "${X:?must be set}": X: must be set',
        2, 9, "        ^^^^^^^^^^^^^^^^^",
    ),
    (
        "# escape=`\n# escape=`\nFROM alpine\n",
        "only one escape parser directive can be used",
        2, 1, "^",
    ),
    (
        "ARG B=\nFROM $B\n",
        "base name ($B) should not be blank",
        2, 6, "     ^^",
    ),
    (
        "RUN x\nFROM alpine\n",
        "no build stage in current context",
        1, 1, "^",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("text", "message", "line", "column", "caret"), CASES)
def test_error_location_and_caret(text: str, message: str, line: int, column: int, caret: str) -> None:
    err = fail(text)
    assert err.message == message
    assert (err.file, err.line, err.column) == ("Dockerfile", line, column)
    source = text.split("\n")[line - 1]
    assert err.source == source
    assert err.caret == f"{source}\n{caret}"
    rendered = str(err)
    assert rendered.startswith(f"Dockerfile:{line}:{column}: {message}\n{source}\n")


def test_error_is_in_the_family() -> None:
    err = fail("FROMM x\n")
    assert isinstance(err, NbcontainerError) and isinstance(err, ValueError)


def test_filename_is_reported() -> None:
    with pytest.raises(DockerfileError) as exc:
        parse("FROM a b\n", filename="app.Dockerfile", build_platform="linux/amd64")
    assert exc.value.file == "app.Dockerfile"
    assert str(exc.value).startswith("app.Dockerfile:1:1: ")


def test_errors_without_location() -> None:
    err = fail("# only a comment\n")
    assert err.message == "file with no instructions"
    assert err.line is None and err.caret == ""
    err = fail("FROM a\n", target="x")
    assert err.message == 'target stage "x" could not be found'


def test_tab_aligned_caret() -> None:
    err = fail("FROM alpine\n\tRUNN x\n")
    assert err.caret == "\tRUNN x\n\t^^^^"


def test_invalid_utf8() -> None:
    with pytest.raises(DockerfileError) as exc:
        parse(b"FROM a\nRUN \xff\n")
    assert exc.value.message == "Dockerfile is not valid UTF-8"
    assert (exc.value.line, exc.value.column) == (2, 5)


def test_lint_error_mode() -> None:
    err = fail("# check=error=true\nFROM alpine\nMAINTAINER me\n")
    assert err.message == "lint violation found for rules: MaintainerDeprecated"
    assert err.line == 3

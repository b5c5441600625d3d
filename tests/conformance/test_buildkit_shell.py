"""BuildKit lexer conformance: ``lex_test.go`` TestShellParser4EnvVars (``envVarTest``, the
A and U lines) and TestShellParser4Words (``wordsTest``), one pytest case per line."""

from __future__ import annotations

import pytest

from nbcontainer.dockerfile import DockerfileError, Lexer

from .data import SHELL

ENV = {"PWD": "/home", "SHELL": "bash", "KOREAN": "한국어", "NULL": ""}


def _env_var_cases() -> list:
    cases = []
    text = (SHELL / "envVarTest").read_text(encoding="utf-8")
    for lineno, raw in enumerate(text.split("\n"), 1):
        if raw.startswith("#") or not raw.strip():
            continue
        fields = raw.strip().split("|")
        assert len(fields) == 3, f"envVarTest:{lineno} must have 3 fields"
        plat, src, expected = (f.strip() for f in fields)
        assert plat in ("A", "U", "W"), f"envVarTest:{lineno} bad platform {plat}"
        if plat == "W":
            continue
        cases.append(pytest.param(src, expected, id=f"L{lineno}"))
    return cases


def _words_cases() -> list:
    cases = []
    env: list[str] = []
    text = (SHELL / "wordsTest").read_text(encoding="utf-8")
    for lineno, line in enumerate(text.split("\n"), 1):
        if line.startswith("#"):
            continue
        if line.startswith("ENV "):
            env.append(line[3:].lstrip(" "))
            continue
        if line == "" and lineno == len(text.split("\n")):
            continue  # the newline that ends the file
        fields = line.split("|")
        assert len(fields) == 2, f"wordsTest:{lineno} must have exactly one |"
        src = fields[0].strip()
        expected = fields[1].lstrip(" ").split(",")
        cases.append(pytest.param(src, expected, list(env), id=f"L{lineno}"))
    return cases


ENV_VAR_CASES = _env_var_cases()
WORDS_CASES = _words_cases()


def test_case_counts() -> None:
    assert len(ENV_VAR_CASES) == 228  # 226 A + 2 U
    assert len(WORDS_CASES) >= 20


@pytest.mark.parametrize(("src", "expected"), ENV_VAR_CASES)
def test_env_var(src: str, expected: str) -> None:
    lex = Lexer("\\")
    if expected == "error":
        with pytest.raises(DockerfileError):
            lex.process_word(src, ENV)
    else:
        assert lex.process_word(src, ENV) == expected


@pytest.mark.parametrize(("src", "expected", "env"), WORDS_CASES)
def test_words(src: str, expected: list[str], env: list[str]) -> None:
    lex = Lexer("\\")
    try:
        got = lex.process_words(src, env)
    except DockerfileError:
        got = ["error"]
    assert got == expected

"""Word expansion tables ported from BuildKit ``frontend/dockerfile/shell/lex_test.go``
(TestProcessWithMatches, TestShellParserMandatoryEnvVars, TestConvertShellPatternToRegex,
TestReversePattern, TestGetEnv, TestProcessWithMatchesPlatform)."""

from __future__ import annotations

import pytest

from nbcontainer.dockerfile import DockerfileError, Lexer
from nbcontainer.dockerfile.lexer import (
    _LexError,
    _pattern_regex,
    _reverse_pattern,
    build_envs,
)

# (input, envs, expected or None for an error, matches, unmatched)
PROCESS_WITH_MATCHES = [
    ("x", {"DUMMY": "dummy"}, "x", set(), set()),
    ("x ${UNUSED}", {"DUMMY": "dummy"}, "x ", set(), {"UNUSED"}),
    ("x ${FOO}", {"FOO": "y"}, "x y", {"FOO"}, set()),
    ("${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}", {"FOO": "xxx", "BAR": ""}, "xxx  ccc", {"FOO", "BAR"}, {"BAZ"}),
    ("${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}", {"FOO": "xxx", "BAR": ""}, "xxx bbb ccc", {"FOO", "BAR"}, {"BAZ"}),
    ("${FOO:-}", {"FOO": "xxx", "BAR": ""}, "xxx", {"FOO"}, set()),
    ("${FOO:-}", {}, "", set(), {"FOO"}),
    ("${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}", {"FOO": "xxx", "BAR": ""}, "aaa bbb ", {"FOO", "BAR"}, {"BAZ"}),
    ("${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}", {"FOO": "xxx", "BAR": ""}, "aaa  ", {"FOO", "BAR"}, {"BAZ"}),
    ("${FOO?aaa}", {"FOO": "xxx", "BAR": ""}, "xxx", {"FOO"}, set()),
    ("${BAR?bbb}", {"FOO": "xxx", "BAR": ""}, "", {"BAR"}, set()),
    ("${BAZ?ccc}", {"FOO": "xxx", "BAR": ""}, None, set(), {"BAZ"}),
    ("${FOO:?aaa}", {"FOO": "xxx", "BAR": ""}, "xxx", {"FOO"}, set()),
    ("${BAR:?bbb}", {"FOO": "xxx", "BAR": ""}, None, set(), set()),
    ("${BAZ:?ccc}", {"FOO": "xxx", "BAR": ""}, None, set(), {"BAZ"}),
    ("${BAZ:?}", {"FOO": "xxx", "BAR": ""}, None, set(), {"BAZ"}),
    ("${FOO=aaa}", {"FOO": "xxx", "BAR": ""}, None, set(), set()),
    ("${FOO=:aaa}", {"FOO": "xxx", "BAR": ""}, None, set(), set()),
    ("${FOO=}", {}, None, set(), set()),
    ("${FOO#()[]{\\}^$.\\*\\?|\\\\}", {"FOO": "()[]{}^$.*?|\\x"}, "x", {"FOO"}, set()),
    ("${FOO%%\\**}", {"FOO": "xx**"}, "xx", {"FOO"}, set()),
    ("${FOO#*x*y}", {"FOO": "xxyy"}, "y", {"FOO"}, set()),
    ("${FOO#*}", {"FOO": "xxyy"}, "xxyy", {"FOO"}, set()),
    ("${FOO#$BAR}", {"FOO": "xxyy", "BAR": "x"}, "xyy", {"FOO", "BAR"}, set()),
    ("${FOO#$BAR}", {"FOO": "xxyy", "BAR": ""}, "xxyy", {"FOO", "BAR"}, set()),
    ("${FOO#}", {"FOO": "xxyy"}, "xxyy", {"FOO"}, set()),
    ("${FOO##*x}", {"FOO": "xxyy"}, "yy", {"FOO"}, set()),
    ("${FOO##}", {"FOO": "xxyy"}, "xxyy", {"FOO"}, set()),
    ("${FOO#?\\?}", {"FOO": "???y"}, "?y", {"FOO"}, set()),
    ("${ABC:-.}${FOO%x}${ABC:-.}", {"FOO": "xxyy"}, ".xxyy.", {"FOO"}, {"ABC"}),
    ("${FOO%%\\**\\*}", {"FOO": "a***yy*"}, "a", {"FOO"}, set()),
    ("${FOO%}", {"FOO": "xxyy"}, "xxyy", {"FOO"}, set()),
    ("${FOO%%$BAR}", {"FOO": "xxyy", "BAR": ""}, "xxyy", {"FOO", "BAR"}, set()),
    (
        "${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}",
        {"FOO": "/foo*/*/*.txt", "NEEDLE": "\\*/"},
        "/foo.*/*.txt - /foo..*.txt",
        {"FOO", "NEEDLE"},
        set(),
    ),
    (
        "${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}",
        {"FOO": "/tmp/tmp/bar.txt", "NEEDLE": "/tmp"},
        "/tmp/bar.txt - /bar.txt",
        {"FOO", "NEEDLE"},
        set(),
    ),
    (
        "${FOO/$NEEDLE/$REPLACEMENT} - ${FOO//$NEEDLE/$REPLACEMENT}",
        {"FOO": "/a/foo/b/c.txt", "NEEDLE": "/?/", "REPLACEMENT": "/"},
        "/foo/b/c.txt - /foo/c.txt",
        {"FOO", "NEEDLE", "REPLACEMENT"},
        set(),
    ),
    (
        "${FOO/$NEEDLE/$REPLACEMENT}",
        {"FOO": "http://google.de", "NEEDLE": "http://", "REPLACEMENT": "https://"},
        "https://google.de",
        {"FOO", "NEEDLE", "REPLACEMENT"},
        set(),
    ),
    ("${FOO//\\//\\/}", {"FOO": "/tmp/foo.txt"}, "\\/tmp\\/foo.txt", {"FOO"}, set()),
    ("${FOO/$BAR/ww}", {"FOO": "xxyy", "BAR": ""}, "wwxxyy", {"FOO", "BAR"}, set()),
    ("${FOO//ww}", {"FOO": "xxyy"}, None, set(), set()),
    ("${FOO//}", {"FOO": "xxyy"}, None, set(), set()),
    ("${FOO///}", {"FOO": "xxyy"}, "xxyy", {"FOO"}, set()),
    ("${FOO///}", {}, "", set(), {"FOO"}),
]


@pytest.mark.parametrize(
    ("word", "env", "expected", "matches", "unmatched"),
    PROCESS_WITH_MATCHES,
    ids=[f"{i}:{c[0]}" for i, c in enumerate(PROCESS_WITH_MATCHES)],
)
def test_process_with_matches(
    word: str, env: dict, expected: str | None, matches: set, unmatched: set
) -> None:
    lex = Lexer("\\")
    if expected is None:
        with pytest.raises(DockerfileError):
            lex.process(word, env)
        return
    res = lex.process(word, env)
    assert res.result == expected
    assert res.matched == matches
    assert res.unmatched == unmatched


def test_process_with_matches_platform() -> None:
    release = (
        "something-${VERSION}.${TARGETOS}-${TARGETARCH}${TARGETVARIANT:+-${TARGETVARIANT}}.tar.gz"
    )
    lex = Lexer("\\")
    res = lex.process(
        release, {"VERSION": "v1.2.3", "TARGETOS": "linux", "TARGETARCH": "arm", "TARGETVARIANT": "v7"}
    )
    assert res.result == "something-v1.2.3.linux-arm-v7.tar.gz"
    res = lex.process(
        release, {"VERSION": "v1.2.3", "TARGETOS": "linux", "TARGETARCH": "arm64", "TARGETVARIANT": ""}
    )
    assert res.result == "something-v1.2.3.linux-arm64.tar.gz"
    res = lex.process(release, {"VERSION": "v1.2.3", "TARGETOS": "linux", "TARGETARCH": "arm64"})
    assert res.result == "something-v1.2.3.linux-arm64.tar.gz"


def test_mandatory_env_vars() -> None:
    lex = Lexer("\\")
    set_envs = ["VAR=plain", "ARG=x"]
    empty_envs = ["VAR=", "ARG=x"]
    unset_envs = ["ARG=x"]
    no_empty = "${VAR:?message here$ARG}"
    no_unset = "${VAR?message here$ARG}"
    assert lex.process_word(no_empty, set_envs) == "plain"
    with pytest.raises(DockerfileError, match="message herex"):
        lex.process_word(no_empty, empty_envs)
    with pytest.raises(DockerfileError, match="message herex"):
        lex.process_word(no_empty, unset_envs)
    assert lex.process_word(no_unset, set_envs) == "plain"
    assert lex.process_word(no_unset, empty_envs) == ""
    with pytest.raises(DockerfileError, match="message herex"):
        lex.process_word(no_unset, unset_envs)


@pytest.mark.parametrize(
    ("pattern", "regex"),
    [
        ("*", "^.*"),
        ("?", "^."),
        ("\\*", "^\\*"),
        ("(()[]{\\}^$.\\*\\?|\\\\", "^\\(\\(\\)\\[\\]\\{\\}\\^\\$\\.\\*\\?\\|\\\\"),
    ],
)
def test_convert_shell_pattern_to_regex(pattern: str, regex: str) -> None:
    assert _pattern_regex(pattern, greedy=True, anchored=True).pattern == regex


@pytest.mark.parametrize("pattern", ["\\", "\\x", "\\\\\\"])
def test_convert_shell_pattern_invalid(pattern: str) -> None:
    with pytest.raises(_LexError):
        _pattern_regex(pattern, greedy=True, anchored=True)


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("a\\*c", "c\\*a"),
        ("\\\\\\ab", "b\\a\\\\"),
        ("ab\\", "\\ba"),
        ("👽\\🚀🖖", "🖖\\🚀👽"),
        ("\\\\b", "b\\\\"),
    ],
)
def test_reverse_pattern(pattern: str, expected: str) -> None:
    assert _reverse_pattern(pattern) == expected


def test_get_env() -> None:
    assert build_envs([]).get("foo", "") == ""
    assert build_envs(["foo"])["foo"] == ""
    assert build_envs(["foo="])["foo"] == ""
    assert build_envs(["foo=bar"])["foo"] == "bar"
    assert build_envs(["foo=bar", "car=hat"]) == {"foo": "bar", "car": "hat"}
    assert build_envs(["foo=bar", "car=hat", "car=bike"])["car"] == "bike"


def test_backtick_escape_token() -> None:
    lex = Lexer("`")
    assert lex.process_word("a`$b", {"b": "x"}) == "a$b"
    assert lex.process_words('"a`"b" c', {}) == ['a"b', "c"]


def test_go_replace_all_skips_empty_match_after_match() -> None:
    assert Lexer().process_word("${V//*/x}", {"V": "abc"}) == "x"


def test_error_message_is_buildkits() -> None:
    with pytest.raises(DockerfileError) as exc:
        Lexer().process_word("${X:=y}", {})
    assert exc.value.message == 'failed to process "${X:=y}": unsupported modifier (:=) in substitution'

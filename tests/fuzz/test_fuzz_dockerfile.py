"""Property: any input either parses or raises DockerfileError, and never hangs.

Inputs are arbitrary text/bytes and hypothesis-driven mutations of BuildKit's parser corpus
(vendored in ``tests/conformance/buildkit``); seeded with the fuzz stage's seed, so a failure
replays with ``NBCONTAINER_FUZZ_SEED``.
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from nbcontainer.dockerfile import BuildPlan, DockerfileError, IgnoreMatcher, Lexer, parse
from tests.support.fuzz import corpus
from tests.support.fuzz import settings as fuzz_settings

CORPUS = [t.decode("utf-8", "replace") for t in corpus.dockerfiles()]
TOKENS = [
    "\\\n", "`\n", "\n", "\r\n", " ", "\t", "<<EOF\n", "<<-'EOF'\n", "EOF\n", "--from=", "--mount=",
    "${", "}", "$", '"', "'", "[", "]", '["a", 1]', "# escape=`\n", "# check=error=true\n",
    "ONBUILD ", "FROM ", "AS ", "COPY ", "RUN ", "ENV ", "ARG ", "=", ":-", "%%", "//", "\x00",
    "\ufeff", "#", "0", "-1", "scratch", "HEALTHCHECK ", "CMD ", "--platform=$BUILDPLATFORM ",
]  # fmt: skip


def _check(text: str | bytes, **kw) -> None:
    try:
        result = parse(text, build_platform="linux/amd64", **kw)
    except DockerfileError as exc:
        str(exc)  # rendering an error must never fail either
        return
    assert isinstance(result, BuildPlan)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(CORPUS))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["insert", "delete", "dup", "token", "swap"]))
        n = len(text)
        i = draw(st.integers(0, n))
        j = draw(st.integers(i, min(n, i + 40)))
        if op == "insert":
            text = text[:i] + draw(st.text(max_size=8)) + text[i:]
        elif op == "delete":
            text = text[:i] + text[j:]
        elif op == "dup":
            text = text[:j] + text[i:j] + text[j:]
        elif op == "token":
            text = text[:i] + draw(st.sampled_from(TOKENS)) + text[i:]
        else:
            lines = text.split("\n")
            a = draw(st.integers(0, len(lines) - 1))
            b = draw(st.integers(0, len(lines) - 1))
            lines[a], lines[b] = lines[b], lines[a]
            text = "\n".join(lines)
    return text


def common(max_examples: int) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Bounded example counts (a few thousand in all), a per-example deadline as the
    "never hangs" check, and the fuzz stage's seed."""
    return lambda fn: seed(fuzz_settings.SEED)(settings(
        max_examples=max_examples,
        deadline=5000,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,
    )(fn))


@common(1300)
@given(mutated(), st.dictionaries(st.sampled_from(["V", "A", "HTTP_PROXY", "X"]), st.text(max_size=5)))
def test_mutated_corpus_parses_or_raises(text: str, build_args: dict[str, str]) -> None:
    _check(text, build_args=build_args)


@common(700)
@given(st.text(alphabet=st.characters(codec=None, min_codepoint=0), max_size=300))
def test_arbitrary_text_parses_or_raises(text: str) -> None:
    _check(text)


@common(300)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_parse_or_raise(data: bytes) -> None:
    _check(data)


@common(500)
@given(st.text(max_size=60), st.sampled_from(["\\", "`"]))
def test_lexer_returns_or_raises(word: str, escape: str) -> None:
    try:
        Lexer(escape).process_words(word, {"A": "a b", "B": ""})
    except DockerfileError:
        pass


@common(300)
@given(st.lists(st.text(max_size=12), max_size=5), st.text(max_size=20))
def test_ignore_matcher_returns_or_raises(patterns: list[str], path: str) -> None:
    try:
        matcher = IgnoreMatcher(patterns)
    except DockerfileError:
        return
    assert isinstance(matcher.matches(path), bool)

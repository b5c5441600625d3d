"""BuildKit parser conformance: ``parser_test.go`` (TestParseCases, TestParseErrorCases,
TestParseIncludesLineNumbers) run against the data files in place."""

from __future__ import annotations

import pytest

from nbcontainer.dockerfile import DockerfileError, dump, parse_syntax

from .data import PARSER

POSITIVE = sorted(p.name for p in (PARSER / "testfiles").iterdir() if p.is_dir())
NEGATIVE = sorted(p.name for p in (PARSER / "testfiles-negative").iterdir() if p.is_dir())


def test_corpus_is_complete() -> None:
    """The issue promises 33 positive and 4 negative cases; fewer means the data is broken."""
    assert len(POSITIVE) == 33
    assert len(NEGATIVE) == 4


@pytest.mark.parametrize("case", POSITIVE)
def test_parse_case(case: str) -> None:
    folder = PARSER / "testfiles" / case
    expected = (folder / "result").read_text(encoding="utf-8")
    tree = parse_syntax((folder / "Dockerfile").read_bytes())
    assert dump(tree) + "\n" == expected


@pytest.mark.parametrize("case", NEGATIVE)
def test_parse_error_case(case: str) -> None:
    with pytest.raises(DockerfileError):
        parse_syntax((PARSER / "testfiles-negative" / case / "Dockerfile").read_bytes())


def test_line_numbers() -> None:
    tree = parse_syntax((PARSER / "testfile-line" / "Dockerfile").read_bytes())
    assert tree.nodes[0].start_line == 5
    assert tree.nodes[-1].end_line == 31
    assert [(n.start_line, n.end_line) for n in tree.nodes] == [(5, 5), (11, 12), (17, 31)]

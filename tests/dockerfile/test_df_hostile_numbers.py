"""Numbers no range holds end in the instruction's own error, never in a Python exception.

Python's int() refuses strings of more than 4300 digits (ValueError) and a float of
endless digits is infinite (OverflowError once made an int); Go's strconv reports them as
out of range, and so do we.
"""

from __future__ import annotations

import pytest

from nbcontainer.dockerfile import DockerfileError, parse
from nbcontainer.dockerfile.errors import InstructionError
from nbcontainer.dockerfile.instructions import parse_instruction
from nbcontainer.dockerfile.lexer import _go_expand, saturating_int
from nbcontainer.dockerfile.mounts import parse_mount
from nbcontainer.dockerfile.syntax import parse_heredoc_word, parse_syntax

BIG = "9" * 5000


def error(text: str) -> DockerfileError:
    with pytest.raises(DockerfileError) as info:
        parse(text, build_platform="linux/amd64")
    return info.value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"FROM a\nEXPOSE {BIG}\n", f"invalid containerPort: {BIG}"),
        (f"FROM a\nEXPOSE 80-{BIG}\n", f"invalid containerPort: 80-{BIG}"),
        (f"FROM a\nHEALTHCHECK --retries={BIG} CMD a\n", f'strconv.ParseInt: parsing "{BIG}": value out of range'),
        (f"FROM a\nHEALTHCHECK --retries=-{BIG} CMD a\n", f'strconv.ParseInt: parsing "-{BIG}": value out of range'),
        (f"FROM a\nRUN --mount=type=cache,target=/c,uid={BIG} a\n", f"invalid value for uid: {BIG}"),
        (f"FROM a\nRUN --mount=type=tmpfs,target=/t,size={BIG} a\n", f"invalid size: '{BIG}'"),
        ("FROM a\nRUN --mount=type=tmpfs,target=/t,size=" + "9" * 400 + " a\n", "invalid size: '" + "9" * 400 + "'"),
        ("FROM a\nRUN --mount=type=tmpfs,target=/t,size=99999999999p a\n", "invalid size: '99999999999p'"),
    ],
)
def test_out_of_range_numbers(text: str, message: str) -> None:
    assert error(text).message == message


def test_leading_zeros_still_count_as_the_number() -> None:
    plan = parse("FROM a\nEXPOSE " + "0" * 5000 + "80\n", build_platform="linux/amd64")
    assert plan.stages[0].instructions[0].ports == ("0" * 5000 + "80",)
    assert parse_mount("type=cache,target=/c,uid=" + "0" * 5000 + "7").uid == 7


def test_copy_from_an_endless_index_is_no_stage() -> None:
    err = error(f"FROM a\nCOPY --from={BIG} /a /b\n")
    assert err.message.startswith(f"invalid from flag value {BIG}")
    assert error("FROM a\nCOPY --from=7 /a /b\n").message == "invalid stage index 7"


def test_plan_stage_lookup_by_odd_digits_is_a_key_error() -> None:
    plan = parse("FROM a AS one\nFROM b\n", build_platform="linux/amd64")
    assert plan.stage("1").base_name == "b"
    for ref in ("²", BIG, "7"):
        with pytest.raises(KeyError):
            plan.stage(ref)


def test_heredoc_with_an_endless_fd_is_not_a_heredoc() -> None:
    assert parse_heredoc_word("3<<EOF") == ("EOF", 3, True, False)
    assert parse_heredoc_word(BIG + "<<EOF") is None


def test_dollar_zero_with_many_zeros_in_a_replacement() -> None:
    # Go's Regexp.Expand, used for ${X/pattern/replacement}: $0 (any number of zeros) is the match.
    assert _go_expand("<$00>", "b") == "<b>"
    assert _go_expand("<${" + "0" * 5000 + "}>", "b") == "<b>"


def test_saturating_int() -> None:
    assert saturating_int("42") == 42
    assert saturating_int("-0042") == -42
    assert saturating_int("+7") == 7
    assert saturating_int(BIG) == 2**64
    assert saturating_int("-" + BIG) == -(2**64)
    assert saturating_int("0" * 5000) == 0


def test_expose_is_checked_once_expanded() -> None:
    # EXPOSE values may hold variables, so the port is checked on expansion (as BuildKit).
    tree = parse_syntax(f"EXPOSE {BIG}\n")
    instr = parse_instruction(tree.nodes[0], lines=tree.lines)
    with pytest.raises(InstructionError, match="invalid containerPort"):
        instr.expand(lambda w: w)

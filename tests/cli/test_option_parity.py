"""One option spec, two skins: each CLI verb and its magic accept the same flags, parsed into
the same names, except the few whose concept one skin lacks (listed here with the reason).
Adding a flag to one skin only therefore means adding it here, on purpose."""

from __future__ import annotations

import argparse

import pytest

from nbcontainer import options
from nbcontainer.cli import build_parser
from nbcontainer.notebook.magics import ContainerMagics

# (CLI verb, magic)
PAIRS = [
    ("build", "dockerfile"),
    ("run", "container_run"),
    ("pull", "pull"),
    ("push", "push"),
    ("login", "login"),
    ("logout", "logout"),
    ("images", "images"),
    ("inspect", "inspect"),
    ("layers", "layers"),
    ("info", "nbcontainer_info"),
    ("kernel install", "kernel_install"),
    ("kernel list", "kernel_list"),
    ("kernel remove", "kernel_remove"),
]

# Flags only the CLI has.
CLI_ONLY: dict[str, set[str]] = {
    "info": {"-f", "--format"},  # the magic's result carries its JSON (application/json)
    "run": {
        "-i", "--interactive",  # a kernel has no standard input to hand to a container
        "-t", "--tty",  # nor a terminal
    },
    "login": {
        "-p", "--password",  # a password written on a magic's line is saved in the notebook
        "--password-stdin",  # a kernel has no standard input to pipe a password into
    },
}

# Flags only the magic has.
MAGIC_ONLY: dict[str, set[str]] = {
    "build": {"--context"},  # the cell is the magic's input, so its context is a flag (the
                             # CLI's is the positional CONTEXT, as docker build's)
    "inspect": {"--html"},   # a terminal shows no HTML
    "layers": {"--widget"},  # a terminal has no widgets
}


def cli_parser(verb: str) -> argparse.ArgumentParser:
    """The parser of ``verb`` (``kernel install``: a verb's sub-verb)."""
    parser = build_parser()
    for word in verb.split():
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[word]
    return parser


def magic_parser(name: str) -> argparse.ArgumentParser:
    return getattr(ContainerMagics, name).parser


def dests(parser: argparse.ArgumentParser) -> dict[str, str]:
    return {s: a.dest for a in parser._actions for s in a.option_strings}


@pytest.mark.parametrize(("verb", "magic"), PAIRS)
def test_the_same_flags_in_both_skins(verb: str, magic: str) -> None:
    cli, nb = cli_parser(verb), magic_parser(magic)
    cli_flags, magic_flags = options.option_strings(cli), options.option_strings(nb)
    assert cli_flags - magic_flags == CLI_ONLY.get(verb, set())
    assert magic_flags - cli_flags == MAGIC_ONLY.get(verb, set())
    shared = cli_flags & magic_flags
    assert {s: d for s, d in dests(cli).items() if s in shared} == \
        {s: d for s, d in dests(nb).items() if s in shared}


def test_the_allow_lists_name_real_flags() -> None:
    """A stale entry would hide a flag that later appears in one skin only."""
    for verb, magic in PAIRS:
        assert CLI_ONLY.get(verb, set()) <= options.option_strings(cli_parser(verb))
        assert MAGIC_ONLY.get(verb, set()) <= options.option_strings(magic_parser(magic))


@pytest.mark.parametrize(("verb", "magic"), PAIRS)
def test_values_parse_alike(verb: str, magic: str) -> None:
    """The same words give the same values in both skins (types and defaults included)."""
    argv = {
        "build": ["--build-arg", "A=1", "-t", "x:1", "--provenance", "--progress", "plain",
                  "--host-ca"],
        "run": ["-e", "K=V", "--rm", "--no-host-ca", "img", "echo", "hi"],
        "pull": ["--tls-verify=false", "-a", "img"],
        "push": ["--digestfile", "d", "-q", "img", "dest"],
        "login": ["-u", "bob", "--password-env", "PW", "r.example"],
        "logout": ["r.example"],
        "images": ["-q", "--no-trunc"],
        "inspect": ["--provenance", "img"],
        "layers": ["--check", "--lowest-efficiency", "95%", "--highest-wasted-bytes", "20MB",
                   "--ignore", "tmp", "img"],
        "info": ["--isolation", "ptrace"],
        "kernel install": ["-v", "/a:/b:ro", "--no-workdir-mount", "--allow", "network.host",
                           "--sys-prefix", "img"],
        "kernel list": [],
        "kernel remove": ["a", "b"],
    }[verb]
    cli, nb = vars(cli_parser(verb).parse_args(argv)), vars(magic_parser(magic).parse_args(argv))
    for skin_only in ("context", "names", "ref", "html", "password", "password_stdin",
                      "widget", "format", "interactive", "tty"):
        cli.pop(skin_only, None)
        nb.pop(skin_only, None)
    cli.pop("_run", None)
    assert cli == nb


def test_bad_values_are_usage_errors_in_both_skins(capsys) -> None:
    from IPython.core.error import UsageError

    for verb, magic, argv in [("build", "dockerfile", ["--build-arg", "=1"]),
                              ("run", "container_run", ["-e", "=x", "img"]),
                              ("pull", "pull", ["--tls-verify", "maybe", "img"])]:
        with pytest.raises(SystemExit) as e:
            cli_parser(verb).parse_args(argv)
        assert e.value.code == 2
        with pytest.raises(UsageError):
            magic_parser(magic).parse_args(argv)
    assert "expected KEY=VALUE" in capsys.readouterr().err


def test_every_magic_is_guarded() -> None:
    """Each magic runs under the guard that turns any failure into a short message."""
    for kind in ("line", "cell"):
        for name in ContainerMagics.magics[kind]:
            fn = getattr(ContainerMagics, name)
            assert getattr(fn, "__wrapped__", None) is not None, name


def test_provenance_without_a_value_leaves_the_context() -> None:
    """``build --provenance CONTEXT`` (buildx's optional value): the word is the context."""
    from nbcontainer.cli.build import _context

    for argv, context, mode in [(["--provenance", "ctx"], "ctx", "mode=min"),
                                (["--provenance", "mode=max", "ctx"], "ctx", "mode=max"),
                                (["--provenance=false"], ".", "false")]:
        a = cli_parser("build").parse_args(argv)
        assert (_context(a), a.provenance) == (context, mode)
    a = magic_parser("dockerfile").parse_args(["--provenance", "stray"])
    assert options.stray_word(a) == "stray"  # the magic refuses it (it takes no positional)

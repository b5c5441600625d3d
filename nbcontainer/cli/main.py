"""``nbcontainer``: a docker-compatible command line over the Python API.

This module holds the parser, the dispatch and the error handling; the verbs live by concern
(``images.py``, ``layers.py``, ``registry.py``, ``build.py``, ``run.py``) and call ``nbcontainer.api`` only,
with their flags from the spec both skins share (``options.py``). Each verb is a ``Command``:
adding one means adding an entry to its module's ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

from .. import api
from ..errors import NbcontainerError, bug_message
from ..version import __version__
from . import build, images, layers, registry, run
from .command import Command

COMMANDS: list[Command] = [*images.COMMANDS, *layers.COMMANDS, *registry.COMMANDS,
                           *build.COMMANDS, *run.COMMANDS]

EX_SOFTWARE = 70  # sysexits.h: an internal software error (a bug), not the user's input


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # docker-style usage errors, exit 2
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nbcontainer", description=(
        "Daemonless OCI image toolkit: docker-compatible verbs over a local content store."))
    parser.add_argument("--version", action="version", version=f"nbcontainer {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("--root", metavar="DIR",
                        help="store location (default: $NBCONTAINER_HOME or ~/.local/share/nbcontainer)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for cmd in COMMANDS:
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help, aliases=list(cmd.aliases))
        cmd.configure(p)
        p.set_defaults(_run=cmd.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        code: int = args._run(args, api.get_store(args.root))
        return code
    except Exception as exc:  # noqa: BLE001 - every failure ends as one line and an exit code
        return _failed(exc, args.command, args.debug or bool(os.environ.get("NBCONTAINER_DEBUG")))
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130


def _failed(exc: Exception, command: str, debug: bool) -> int:
    """Report a failed verb: our errors as one line and a hint (exit 1), an unexpected
    exception as one line saying it is a bug (exit 70); the traceback only with --debug."""
    if isinstance(exc, BrokenPipeError):  # the reader went away (| head): not an error
        return 141
    if debug:
        traceback.print_exc()
    if isinstance(exc, NbcontainerError):
        sys.stderr.write(f"Error: {exc.message}\n")
        if exc.excerpt is not None:  # where in the Dockerfile, as BuildKit shows it
            sys.stderr.write("".join(line + "\n" for line in exc.excerpt.render()))
        if exc.hint:
            sys.stderr.write(f"hint: {exc.hint}\n")
        return 1
    if isinstance(exc, OSError):  # disk full, permissions: the user's to fix, one line too
        where = f" ({exc.filename})" if exc.filename else ""
        sys.stderr.write(f"Error: {exc.strerror or exc}{where}\n")
        return 1
    details = "the traceback is above" if debug else \
        "run it again with --debug or NBCONTAINER_DEBUG=1 for the traceback"
    sys.stderr.write(f"Error: {bug_message(f'nbcontainer {command}', exc, details)}\n")
    return EX_SOFTWARE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

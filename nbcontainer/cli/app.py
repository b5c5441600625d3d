"""``nbcontainer``: a docker-compatible command line over the Python API.

This module holds the parser, the dispatch and the error handling; the verbs live by concern
(``images.py``, ``layers.py``, ``registry.py``, ``build.py``, ``run.py``, ``system.py``) and
call ``nbcontainer.api`` only, with their flags from the spec both skins share
(``options.py``). Each verb is a ``Command``: adding one means adding an entry to its
module's ``COMMANDS`` and a line to ``VERBS``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from ..errors import NbcontainerError, bug_message
from ..version import __version__

if TYPE_CHECKING:
    from .command import Command

EX_SOFTWARE = 70  # sysexits.h: an internal software error (a bug), not the user's input

# verb → (module of cli/ that holds it, one-line help). Only the verb being run is imported:
# `nbcontainer --version` and `--help` load none of them, and a verb loads only its own
# module and what it uses (start-up time is most of a cached build's time at a terminal).
VERBS: dict[str, tuple[str, str]] = {
    "images": ("images", "list images in the local store"),
    "import": ("images", "create an image from a root filesystem directory or tarball"),
    "inspect": ("images", "show low-level information on images (JSON)"),
    "tag": ("images", "create a tag TARGET that refers to SOURCE"),
    "rmi": ("images", "remove one or more images"),
    "save": ("images", "save images to a tar archive (or OCI layout directory)"),
    "load": ("images", "load images from a tar archive or OCI layout directory"),
    "prune": ("images", "remove blobs no image references"),
    "fsck": ("images", "verify every blob in the store; quarantine corrupt ones"),
    "pull": ("registry", "download an image from a registry"),
    "push": ("registry", "upload an image to a registry"),
    "login": ("registry", "log in to a registry (stores credentials like docker login)"),
    "logout": ("registry", "remove stored credentials for a registry"),
    "ls": ("registry", "list the tags of a repository in a registry"),
    "build": ("build", "build an image from a Dockerfile"),
    "run": ("run", "run a command in a new container from an image"),
    "layers": ("layers", "show an image's layers, the junk in them and where its bytes are"),
    "history": ("layers", "show the history of an image"),
    "check": ("layers", "check an image against dive's CI rules and the junk rules (exit code "
                        "1 when one fails)"),
    "kernel": ("kernel", "install, list and remove Jupyter kernels that run in an image"),
    "info": ("system", "show the store and how builds are isolated here (rung, reasons, probe)"),
    "system": ("system", "manage the store as a whole (reset)"),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # docker-style usage errors, exit 2
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


def command(name: str) -> Command:
    """The verb ``name``, its module imported now."""
    module = importlib.import_module(f".{VERBS[name][0]}", __package__)
    found: Command = next(c for c in module.COMMANDS if c.name == name)
    return found


def __getattr__(name: str) -> Any:  # ``COMMANDS``: every verb (imports all of them)
    if name == "COMMANDS":
        return [command(verb) for verb in VERBS]
    raise AttributeError(name)


def _global_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--version", action="version", version=f"nbcontainer {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("--root", metavar="DIR",
                        help="store location (default: $NBCONTAINER_HOME or ~/.local/share/nbcontainer)")


def _top_parser() -> argparse.ArgumentParser:
    """The global options and the verb; the verb's own arguments are parsed by its parser."""
    width = max(len(v) for v in VERBS)
    listing = "\n".join(f"  {v:<{width}}  {h}" for v, (_, h) in VERBS.items())
    parser = _Parser(prog="nbcontainer", formatter_class=argparse.RawDescriptionHelpFormatter,
                     description="Daemonless OCI image toolkit: docker-compatible verbs over a "
                                 "local content store.",
                     epilog=f"commands:\n{listing}\n\nRun 'nbcontainer COMMAND --help' for a "
                            "command's options.")
    _global_options(parser)
    parser.add_argument("command", nargs="?", metavar="COMMAND", help="the verb to run")
    parser.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def _verb_parser(cmd: Command) -> argparse.ArgumentParser:
    parser = _Parser(prog=f"nbcontainer {cmd.name}", description=cmd.help)
    cmd.configure(parser)
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The whole command line as one argparse parser (every verb imported): for tools and
    tests that introspect it; ``main`` parses the same arguments verb by verb."""
    parser = _Parser(prog="nbcontainer", description=(
        "Daemonless OCI image toolkit: docker-compatible verbs over a local content store."))
    _global_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in VERBS:
        cmd = command(name)
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help,
                           aliases=list(cmd.aliases))
        cmd.configure(p)
        p.set_defaults(_run=cmd.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    top = _top_parser()
    first = top.parse_args(list(sys.argv[1:] if argv is None else argv))
    if first.command is None:
        top.print_help()
        return 2
    if first.command not in VERBS:
        top.error(f"argument COMMAND: invalid choice: {first.command!r} (choose from "
                  f"{', '.join(map(repr, VERBS))})")
    cmd = command(first.command)
    args = _verb_parser(cmd).parse_args(first.args)
    args.command, args.debug, args.root = first.command, first.debug, first.root
    debug = args.debug or bool(os.environ.get("NBCONTAINER_DEBUG"))
    try:
        from .. import api

        code: int = cmd.run(args, api.get_store(args.root))
        return code
    except Exception as exc:  # noqa: BLE001 - every failure ends as one line and an exit code
        return _failed(exc, args.command, debug)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130


def _failed(exc: Exception, command: str, debug: bool) -> int:
    """Report a failed verb: our errors as one line and a hint (exit 1), an unexpected
    exception as one line saying it is a bug (exit 70); the traceback only with --debug."""
    if isinstance(exc, BrokenPipeError):  # the reader went away (| head): not an error
        return 141
    if debug:
        import traceback  # (only here: a clean run does not pay for its import)

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

"""``nbcontainer``: the docker-compatible command line, a skin over ``nbcontainer.api``.

``main`` is the console script's entry point; ``nbcontainer --version`` is answered here,
before the parser and the error handling are imported (it is what people time)."""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # (typing's, without importing typing)
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["COMMANDS", "build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--version"]:
        from ..version import __version__

        sys.stdout.write(f"nbcontainer {__version__}\n")
        return 0
    from .app import main as run

    return run(args)


def __getattr__(name: str) -> object:  # COMMANDS imports every verb: only when asked for
    if name == "COMMANDS":
        from .app import VERBS, command

        return [command(verb) for verb in VERBS]
    if name == "build_parser":
        from .app import build_parser

        return build_parser
    raise AttributeError(name)

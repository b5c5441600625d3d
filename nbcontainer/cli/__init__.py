"""``nbcontainer``: the docker-compatible command line, a skin over ``nbcontainer.api``."""

from typing import Any

from .main import build_parser, main

__all__ = ["COMMANDS", "build_parser", "main"]


def __getattr__(name: str) -> Any:  # COMMANDS imports every verb: only when asked for
    if name == "COMMANDS":
        from .main import VERBS, command

        return [command(verb) for verb in VERBS]
    raise AttributeError(name)

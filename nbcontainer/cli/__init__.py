"""``nbcontainer``: the docker-compatible command line, a skin over ``nbcontainer.api``."""

from .main import COMMANDS, build_parser, main

__all__ = ["COMMANDS", "build_parser", "main"]

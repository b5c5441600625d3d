"""A verb of the command line: its name, its help, its arguments and the function that runs it."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

from .. import api, options


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, api.Store], int]
    aliases: tuple[str, ...] = ()


def spec(add: Callable[[argparse.ArgumentParser, options.Skin], None]
         ) -> Callable[[argparse.ArgumentParser], None]:
    """A verb's arguments from the option spec both skins share (``options.py``)."""
    def configure(parser: argparse.ArgumentParser) -> None:
        add(parser, options.CLI)
    return configure

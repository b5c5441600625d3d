"""``nbcontainer info`` and ``nbcontainer system reset``: the store and the sandbox as a whole."""

from __future__ import annotations

import argparse
import json
import sys

from .. import api, options
from ..errors import NbcontainerError
from .command import Command, spec


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")


def _run_info(a: argparse.Namespace, st: api.Store) -> int:
    from ..wording import info_lines

    found = api.info(store=st, isolation=a.isolation).to_dict()
    _out(json.dumps(found, indent=2) if a.format == "json" else "\n".join(info_lines(found)))
    return 0


def _conf_system(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    reset = sub.add_parser("reset", help="delete the whole store (images, cache, build area), "
                           "files owned by subordinate ids included")
    reset.add_argument("-f", "--force", action="store_true", help="do not ask")


def _run_system(a: argparse.Namespace, st: api.Store) -> int:
    if not a.force:
        if not sys.stdin.isatty():
            raise NbcontainerError(f"system reset deletes {st.home} and everything in it",
                                   hint="pass -f to confirm")
        answer = input(f"Delete {st.home} with every image and the build cache? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            return 1
    _out(f"Deleted {api.reset(store=st)}")
    return 0


COMMANDS: list[Command] = [
    Command("info", "show the store and how builds are isolated here (rung, reasons, probe)",
            spec(options.add_info_args), _run_info),
    Command("system", "manage the store as a whole (reset)", _conf_system, _run_system),
]

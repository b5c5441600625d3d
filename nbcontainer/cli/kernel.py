"""``nbcontainer kernel install|list|remove``: Jupyter kernels that run in an image."""

from __future__ import annotations

import argparse
import sys

from .. import api, options
from ..wording import kernel_installed, kernel_rows
from .command import Command
from .render import out


def _conf_kernel(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    options.add_kernel_install_args(sub.add_parser(
        "install", help="install IMAGE as a Jupyter kernel (pinned to its digest)"),
        options.CLI)
    options.add_kernel_list_args(sub.add_parser(
        "list", aliases=["ls"], help="list the kernels from images"), options.CLI)
    options.add_kernel_remove_args(sub.add_parser(
        "remove", aliases=["rm"], help="remove kernels (the images stay)"), options.CLI)


def _run_kernel(a: argparse.Namespace, st: api.Store) -> int:
    if a.action == "install":
        kernel = api.install_kernel(a.image, name=a.name, store=st,
                                    **options.kernel_options(a))
        sys.stderr.write(kernel_installed(kernel) + "\n")
        out(kernel.name)
    elif a.action in ("list", "ls"):
        out("\n".join(kernel_rows(api.kernels())))
    else:
        for name in a.names:
            removed = api.remove_kernel(name)
            out(f"Removed kernel {removed.name} ({removed.path})")
    return 0


COMMANDS: list[Command] = [
    Command("kernel", "install, list and remove Jupyter kernels that run in an image",
            _conf_kernel, _run_kernel),
]

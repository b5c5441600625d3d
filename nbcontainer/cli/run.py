"""``nbcontainer run``: docker run's flags (from the shared spec) over ``api.run``."""

from __future__ import annotations

import argparse
import sys

from .. import api, options
from .command import Command, spec
from .terminal import pty_for_container


def _run_run(a: argparse.Namespace, st: api.Store) -> int:
    sys.stdout.flush()  # the container writes to the same stdout
    kw = {"store": st, "env": options.pairs(a.env), "network": a.network, "user": a.user,
          "workdir": a.workdir, "entrypoint": options.entrypoint(a), "isolation": a.isolation,
          "volumes": a.volume, "mounts": a.mount, "name": a.name, "host_ca": a.host_ca,
          **options.hardening(a)}
    api.bind_mounts(a.volume, a.mount)  # a bad -v is an error before the terminal changes
    if a.tty:
        with pty_for_container(a.interactive) as follower:
            return api.run(a.image, a.cmd or None, stdin=follower, tty=True,
                           output=_discard, **kw)
    stdin = sys.stdin.fileno() if a.interactive else None
    return api.run(a.image, a.cmd or None, stdin=stdin, **kw)


def _discard(chunk: bytes) -> None:
    """With -t everything goes through the terminal; this pipe stays empty."""


COMMANDS: list[Command] = [
    Command("run", "run a command in a new container from an image", spec(options.add_run_args),
            _run_run),
]

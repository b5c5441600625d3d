"""``nbcontainer run``: docker run's flags (from the shared spec) over ``api.run``."""

from __future__ import annotations

import argparse
import sys

from .. import api, options
from .command import Command, spec


def _run_run(a: argparse.Namespace, st: api.Store) -> int:
    sys.stdout.flush()  # the container writes to the same stdout
    return api.run(a.image, a.cmd or None, store=st, env=options.pairs(a.env),
                   network=a.network, user=a.user, workdir=a.workdir,
                   entrypoint=options.entrypoint(a), isolation=a.isolation,
                   host_ca=a.host_ca, **options.hardening(a))  # type: ignore[arg-type]


COMMANDS: list[Command] = [
    Command("run", "run a command in a new container from an image", spec(options.add_run_args),
            _run_run),
]

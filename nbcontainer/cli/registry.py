"""The registry verbs: pull, push, login, logout, ls."""

from __future__ import annotations

import argparse
import os
import sys
from getpass import getpass

from .. import api, options
from ..errors import NbcontainerError
from .command import Command, spec
from .render import TransferPrinter, out


def _printer(quiet: bool) -> TransferPrinter | None:
    return None if quiet else TransferPrinter(sys.stdout)


def _run_pull(a: argparse.Namespace, st: api.Store) -> int:
    api.pull(a.ref, platform=a.platform, all_platforms=a.all_platforms,
             progress=_printer(a.quiet), tls_verify=a.tls_verify, store=st)
    out(api.canonical_name(a.ref) if a.quiet else "")
    return 0


def _run_push(a: argparse.Namespace, st: api.Store) -> int:
    digest = api.push(a.ref, a.dest, progress=_printer(a.quiet), digestfile=a.digestfile,
                      tls_verify=a.tls_verify, store=st)
    if a.quiet:
        out(digest)
    return 0


def _password(a: argparse.Namespace) -> str:
    """From stdin, the environment, the command line (with docker's warning) or a prompt."""
    if a.password_stdin:
        return sys.stdin.read().rstrip("\n")
    if a.password_env:
        password = os.environ.get(a.password_env, "")
        if not password:
            raise NbcontainerError(f"environment variable {a.password_env} is empty or unset")
        return password
    if a.password is not None:
        sys.stderr.write("WARNING! Using --password via the CLI is insecure. "
                         "Use --password-stdin.\n")
        return str(a.password)
    if sys.stdin.isatty():
        return getpass("Password: ")
    raise NbcontainerError("no password given", hint="use --password-stdin")


def _run_login(a: argparse.Namespace, st: api.Store) -> int:
    user = a.username or (input("Username: ") if sys.stdin.isatty() else None)
    if not user:
        raise NbcontainerError("a username is required", hint="pass -u USER")
    where = api.login(a.registry, user, _password(a), tls_verify=a.tls_verify)
    out(f"Login Succeeded ({where})")
    return 0


def _run_logout(a: argparse.Namespace, st: api.Store) -> int:
    if api.logout(a.registry):
        out(f"Removing login credentials for {a.registry}")
    else:
        out(f"Not logged in to {a.registry}")
    return 0


def _conf_ls(p: argparse.ArgumentParser) -> None:
    p.add_argument("repository", metavar="REPOSITORY", help="e.g. localhost:5000/app")
    p.add_argument("--tls-verify", default=None, type=options.bool_value, metavar="BOOL")


def _run_ls(a: argparse.Namespace, st: api.Store) -> int:
    for t in api.list_tags(a.repository, tls_verify=a.tls_verify):
        out(t)
    return 0


COMMANDS: list[Command] = [
    Command("pull", "download an image from a registry", spec(options.add_pull_args), _run_pull),
    Command("push", "upload an image to a registry", spec(options.add_push_args), _run_push),
    Command("login", "log in to a registry (stores credentials like docker login)",
            spec(options.add_login_args), _run_login),
    Command("logout", "remove stored credentials for a registry", spec(options.add_logout_args),
            _run_logout),
    Command("ls", "list the tags of a repository in a registry", _conf_ls, _run_ls),
]

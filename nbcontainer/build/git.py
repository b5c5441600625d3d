"""ADD of git repositories (BuildKit's git source), through the ``git`` binary.

Accepted source forms (the ones BuildKit's ``ADD`` recognises as git, see
``dockerfile.instructions.add_source_kind``), each with an optional ``#ref[:subdir]``:

* ``https://host/path/repo.git``, ``http://…/repo.git``, ``git://host/repo.git``;
* ``ssh://[user@]host/path/repo.git`` and scp-like ``git@host:owner/repo.git``;
* scheme-less ``github.com/owner/repo.git`` (fetched over https).

``ref`` is a branch, a tag or a commit (default: the remote's HEAD); ``subdir`` picks the
directory to copy. Not supported: BuildKit 1.x's query form (``?ref=…&subdir=…``).
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import BuildError

_SCHEMES = ("https://", "http://", "git://", "ssh://")


@dataclass(frozen=True)
class GitSource:
    remote: str  # what git fetches from
    ref: str  # branch, tag or commit; "" = the remote's HEAD
    subdir: str  # "" = the whole repository


def parse_git_url(src: str) -> GitSource:
    """``https://host/repo.git#ref:subdir`` (or any form above) → its parts."""
    url, _, fragment = src.partition("#")
    ref, _, subdir = fragment.partition(":")
    if not url.startswith(_SCHEMES) and not re.match(r"^[\w.-]+@[\w.-]+:", url):
        url = "https://" + url  # github.com/owner/repo.git, as BuildKit does
    if url.startswith("-") or not url:
        raise BuildError(f"invalid git source {src!r}")
    subdir = subdir.strip("/")
    if any(part == ".." for part in subdir.split("/")):
        raise BuildError(f"invalid git subdir {subdir!r}: it must stay inside the repository")
    return GitSource(url, ref, subdir)


def _git(args: list[str], cwd: Path | None = None) -> str:
    # No prompt for credentials (a build must not hang); protocol.file off, as BuildKit only
    # fetches from remotes.
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true",
           "GIT_CONFIG_NOSYSTEM": "1"}
    try:
        proc = subprocess.run(["git", "-c", "protocol.file.allow=never",
                               "-c", "advice.detachedHead=false", *args],
                              cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    except FileNotFoundError:
        raise BuildError("ADD of a git repository needs the git binary",
                         hint="install git (apt-get install git)") from None
    except subprocess.TimeoutExpired:
        raise BuildError(f"git {args[0]} timed out") from None
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, args, proc.stdout, proc.stderr)
    return proc.stdout.strip()


def fetch(source: GitSource, into: Path, keep_git_dir: bool) -> tuple[Path, str, int]:
    """Check ``source`` out into ``into``; returns (the tree to copy, commit, commit time).
    A shallow fetch of the ref first; a full fetch for commits the server won't serve by id."""
    into.mkdir()
    ref = source.ref or "HEAD"
    try:
        _git(["init", "-q", str(into)])
        _git(["remote", "add", "origin", source.remote], cwd=into)
        try:
            _git(["fetch", "-q", "--depth=1", "--no-tags", "origin", ref], cwd=into)
            _git(["checkout", "-q", "FETCH_HEAD"], cwd=into)
        except subprocess.CalledProcessError:
            if not re.fullmatch(r"[0-9a-f]{7,64}", ref):
                raise
            _git(["fetch", "-q", "--tags", "origin"], cwd=into)
            _git(["checkout", "-q", ref], cwd=into)
        if (into / ".gitmodules").is_file():
            _git(["submodule", "update", "-q", "--init", "--recursive", "--depth=1"], cwd=into)
        commit = _git(["rev-parse", "HEAD"], cwd=into)
        when = int(_git(["show", "-s", "--format=%ct", "HEAD"], cwd=into))
    except subprocess.CalledProcessError as exc:
        detail = (exc.stderr or exc.stdout or "").strip().splitlines()
        raise BuildError(f"failed to fetch git source {source.remote}"
                         f"{'#' + source.ref if source.ref else ''}: "
                         f"{detail[-1] if detail else 'git ' + str(exc.cmd[0]) + ' failed'}",
                         hint="check the URL and the ref (branch, tag or commit)") from None
    if not keep_git_dir:
        import shutil

        shutil.rmtree(into / ".git")
    tree = into / source.subdir if source.subdir else into
    if not tree.is_dir():
        raise BuildError(f"git source {source.remote}: subdir {source.subdir!r} not found "
                         f"at {commit[:12]}")
    return tree, commit, when

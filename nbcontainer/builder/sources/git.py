"""ADD of git repositories (BuildKit's git source), through the ``git`` binary.

Accepted source forms (the ones BuildKit's ``ADD`` recognises as git, see
``dockerfile.instructions.add_source_kind``), each with an optional ``#ref[:subdir]``:

* ``https://host/path/repo.git``, ``http://…/repo.git``, ``git://host/repo.git``;
* ``ssh://[user@]host/path/repo.git`` and scp-like ``git@host:owner/repo.git``;
* scheme-less ``github.com/owner/repo.git`` (fetched over https).

``ref`` is a branch, a tag or a commit (default: the remote's HEAD); ``subdir`` picks the
directory to copy. BuildKit's newer query form says the same with keys, and more:
``https://host/repo.git?ref=v1&subdir=dir&checksum=<commit>&keep-git-dir=true`` (``checksum``
and ``keep-git-dir`` as ADD's ``--checksum``/``--keep-git-dir``). One URL uses one form: a
query and a ``#fragment`` together, or an unknown key, is an error.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

from ...errors import BuildError
from ..copyplan import Source, tree_source

_SCHEMES = ("https://", "http://", "git://", "ssh://")


_QUERY_KEYS = ("ref", "subdir", "checksum", "keep-git-dir")


@dataclass(frozen=True)
class GitSource:
    remote: str  # what git fetches from
    ref: str  # branch, tag or commit; "" = the remote's HEAD
    subdir: str  # "" = the whole repository
    checksum: str = ""  # expected commit (query form's checksum=)
    keep_git_dir: bool | None = None  # query form's keep-git-dir= (None: ADD's flag decides)


def _query(src: str, query: str) -> tuple[str, str, str, bool | None]:
    """``?ref=…&subdir=…&checksum=…&keep-git-dir=…`` → (ref, subdir, checksum, keep)."""
    if "#" in src:
        raise BuildError(f"invalid git source {src!r}: it mixes a query (?ref=…) and a "
                         "fragment (#ref:subdir)",
                         hint="use one form: repo.git?ref=REF&subdir=DIR or repo.git#REF:DIR")
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise BuildError(f"invalid git source {src!r}: malformed query {query!r}") from None
    fields: dict[str, str] = {}
    for key, value in pairs:
        if key not in _QUERY_KEYS:
            raise BuildError(f"invalid git source {src!r}: unknown query key {key!r}",
                             hint=f"the git URL query accepts {', '.join(_QUERY_KEYS)}")
        if key in fields:
            raise BuildError(f"invalid git source {src!r}: {key!r} is given twice")
        fields[key] = value
    checksum = fields.get("checksum", "")
    if checksum and not re.fullmatch(r"[0-9a-f]{7,64}", checksum):
        raise BuildError(f"invalid git source {src!r}: checksum {checksum!r} is not a commit id",
                         hint="give the commit's hex id (at least 7 characters)")
    keep: bool | None = None
    if "keep-git-dir" in fields:
        word = fields["keep-git-dir"].lower()
        if word not in ("true", "false", "1", "0", ""):
            raise BuildError(f"invalid git source {src!r}: keep-git-dir={fields['keep-git-dir']}"
                             " is not a boolean", hint="use keep-git-dir=true or false")
        keep = word in ("true", "1", "")
    return fields.get("ref", ""), fields.get("subdir", ""), checksum, keep


def parse_git_url(src: str) -> GitSource:
    """``https://host/repo.git#ref:subdir`` or ``…repo.git?ref=…&subdir=…`` (any form above)
    → its parts."""
    checksum, keep = "", None
    base, qmark, query = src.partition("?")
    if qmark:
        url = base
        ref, subdir, checksum, keep = _query(src, query)
    else:
        url, _, fragment = src.partition("#")
        ref, _, subdir = fragment.partition(":")
    if not url.startswith(_SCHEMES) and not re.match(r"^[\w.-]+@[\w.-]+:", url):
        url = "https://" + url  # github.com/owner/repo.git, as BuildKit does
    if url.startswith("-") or not url:
        raise BuildError(f"invalid git source {src!r}")
    subdir = subdir.strip("/")
    if any(part == ".." for part in subdir.split("/")):
        raise BuildError(f"invalid git subdir {subdir!r}: it must stay inside the repository")
    return GitSource(url, ref, subdir, checksum, keep)


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


def git_source(src: str, work: Path, *, checksum: str | None,
               keep_git_dir: bool) -> Source:
    """ADD of a git repository: its tree at the ref (``.git`` kept with ``--keep-git-dir``),
    keyed by the commit, not by the checkout's bytes."""
    source = parse_git_url(src)
    # the URL's query (?keep-git-dir=, ?checksum=) says the same as ADD's flags
    keep = keep_git_dir if source.keep_git_dir is None else source.keep_git_dir
    tree, commit, when = fetch(source, work / f"git-{len(os.listdir(work))}", keep)
    for expected in (checksum, source.checksum):
        if expected and not commit.startswith(expected):
            raise BuildError(f"checksum mismatch for {src}: expected commit {expected}, "
                             f"got {commit}")
    key = ["git", source.remote, commit, source.subdir, keep]
    return tree_source(tree, key, when * 1_000_000_000)

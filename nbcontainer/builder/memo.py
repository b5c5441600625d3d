"""A fully cached build answered without solving it again: the build memo.

BuildKit answers a rebuild from a warm daemon; a daemonless builder starts cold for every
command, and most of a cached build's time would go to loading the frontend and the solver
only to find every step in the cache. So each successful build records, under a key of
everything it was given, the image it produced and what it read; a later build with the same
key is a hit when all of that is unchanged, and then it only re-tags the image and replays
its steps as CACHED. Whenever anything may differ, it is a miss and the build solves as
usual: the memo never decides what an image contains, it only remembers a result.

What is checked on a hit:

* the key: Dockerfile text and name, build args, target, platforms, the ids of secrets and
  ssh sockets (values never key a step), ``SOURCE_DATE_EPOCH``, the proxies the build found
  around it (environment, docker's config.json: ``proxies.py``), the toolkit's version;
* the build context: a fingerprint of every entry's type, size, mode, times and inode (any
  change anywhere in it is a miss). It is taken before the build and again after it, and the
  build is recorded only when both agree (a file saved while the build ran would otherwise
  be remembered with content the build never read). A context of more than ``MAX_ENTRIES``
  entries, or one with a file changed too recently to tell (within ``RACY_NS`` on a
  filesystem with whole-second times, ``FINE_RACY_NS`` elsewhere), is never recorded;
* every image the build read still resolves to the digest it had;
* the result is still in the store, and the last step of every stage is in the cache index
  with the very entry it had (a pruned cache rebuilds, as it would without the memo, and a
  step re-run since by ``--no-cache`` or another build answers with what it holds now).

Builds that read the network (``ADD`` of a URL or a git repository), ``--no-cache``, remote
caches and provenance statements are never recorded.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import stat
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..oci.digest import Digest
from ..progress import Kind, ProgressEvent, ProgressFn
from ..store import Store
from ..store.buildcache import cache_dir, memo_dir
from ..version import __version__

FORMAT = 1
MAX_ENTRIES = 5000  # a larger context is not fingerprinted (the walk would cost more)
# A file changed this recently may change again unseen (same size, same times): two ticks
# of whole-second timestamps (FAT, some network filesystems), else well above the kernel's
# coarse clock tick that stamps files (1-10 ms).
RACY_NS = 2_000_000_000
FINE_RACY_NS = 100_000_000
_ENV = ("SOURCE_DATE_EPOCH",)


@dataclass(frozen=True)
class Request:
    """Everything a build was given that can change its result."""

    dockerfile_text: str
    dockerfile_name: str
    context: Path
    build_args: Mapping[str, str]
    target: str | None
    platforms: Sequence[str]
    secret_ids: Sequence[str] = ()
    ssh_ids: Sequence[str] = ()
    proxy_env: Mapping[str, str] = field(default_factory=dict, repr=False)
    entitlements: Sequence[str] = ()  # --allow: a build without them must not be answered

    def key(self) -> str:
        doc = [FORMAT, __version__, self.dockerfile_text, self.dockerfile_name,
               sorted(self.build_args.items()), self.target, list(self.platforms),
               sorted(self.secret_ids), sorted(self.ssh_ids), sorted(self.entitlements),
               [(k, os.environ.get(k)) for k in _ENV], sorted(self.proxy_env.items()),
               str(self.context.resolve())]
        return hashlib.sha256(json.dumps(doc, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class Hit:
    digest: Digest
    platforms: tuple[str, ...]
    steps: tuple[dict[str, Any], ...]  # the START events to replay as CACHED


def lookup(store: Store, request: Request, context: str | None = None) -> Hit | None:
    """The recorded result of ``request`` if everything it read is unchanged, else None.
    ``context``: the context's fingerprint, when the caller has taken it already."""
    try:
        doc = json.loads((memo_dir(store) / f"{request.key()}.json").read_text())
        digest = Digest.parse(doc["digest"])
        context = context or fingerprint(request.context)
        if doc.get("format") != FORMAT or context is None or doc["context"] != context:
            return None
        for name, platform, was in doc["bases"]:
            from ..oci.platform import Platform

            if str(store.image(name, Platform.parse(platform)).digest) != was:
                return None
        if not store.has_image(digest):
            return None
        entries = _entries(store, list(doc["keys"]))
        if doc["keys"] != entries or not all(h for _, h in entries):
            return None
        return Hit(digest, tuple(doc["platforms"]), tuple(doc["steps"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # no memo, an unreadable one, a base no longer there: solve the build
    except Exception as exc:  # noqa: BLE001 - the store's own errors: a miss as well
        from ..errors import NbcontainerError

        if isinstance(exc, NbcontainerError):
            return None
        raise


def record(store: Store, request: Request, digest: Digest, platforms: Sequence[str],
           bases: Sequence[tuple[str, str, str]], keys: Sequence[str],
           steps: Sequence[ProgressEvent], before: str | None) -> None:
    """Remember a successful build (best effort: a memo that cannot be written is a miss).
    ``before``: the context's fingerprint taken before the build; a context that changed
    since (or could not be fingerprinted) is not remembered."""
    context = fingerprint(request.context)
    if context is None or context != before:
        return
    doc = {"format": FORMAT, "digest": str(digest), "platforms": list(platforms),
           "context": context, "bases": [list(b) for b in bases],
           "keys": _entries(store, keys),
           "steps": [{"id": e.id, "text": e.text, "stage": e.stage, "step": e.step,
                      "steps": e.steps} for e in steps]}
    folder = memo_dir(store)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{secrets.token_hex(6)}.json"
        tmp.write_text(json.dumps(doc, separators=(",", ":")))
        os.replace(tmp, folder / f"{request.key()}.json")
    except OSError:
        return


def _entries(store: Store, keys: Sequence[Any]) -> list[list[str]]:
    """[step key, sha256 of its cache entry] for each key (``keys`` may be such pairs)."""
    root = cache_dir(store)
    out = []
    for item in keys:
        key = item[0] if isinstance(item, list) else item
        try:
            data = (root / key[:2] / f"{key}.json").read_bytes()
        except OSError:
            data = b""
        out.append([key, hashlib.sha256(data).hexdigest() if data else ""])
    return out


def replay(hit: Hit, progress: ProgressFn) -> None:
    """The steps of the recorded build, each CACHED, as a cached build shows them."""
    progress(ProgressEvent(Kind.PLAN, "", total=len(hit.steps)))
    for step in hit.steps:
        fields = {"stage": step["stage"], "step": step["step"], "steps": step["steps"]}
        progress(ProgressEvent(Kind.START, step["id"], text=step["text"], **fields))
        progress(ProgressEvent(Kind.CACHED, step["id"], text=step["text"], elapsed=0.0,
                               **fields))


def fingerprint(root: Path) -> str | None:
    """A digest of every entry below ``root`` (path, type, mode, size, mtime, ctime, inode);
    None when there are more than ``MAX_ENTRIES`` or one changed too recently (see
    ``RACY_NS``)."""
    h = hashlib.sha256()
    now = time.time_ns()
    count = 0
    stack = [(os.fspath(root), "")]
    while stack:
        path, rel = stack.pop()
        try:
            entries = sorted(os.scandir(path), key=lambda e: e.name)
        except OSError:
            return None
        for e in entries:
            count += 1
            if count > MAX_ENTRIES:
                return None
            st = e.stat(follow_symlinks=False)
            coarse = st.st_mtime_ns % 1_000_000_000 == 0  # whole-second times
            racy = now - (RACY_NS if coarse else FINE_RACY_NS)
            if st.st_ctime_ns > racy or st.st_mtime_ns > racy:
                return None
            sub = f"{rel}/{e.name}"
            h.update(f"{sub}\0{st.st_mode}\0{st.st_size}\0{st.st_mtime_ns}\0"
                     f"{st.st_ctime_ns}\0{st.st_ino}\n".encode("utf-8", "surrogateescape"))
            if stat.S_ISDIR(st.st_mode):
                stack.append((e.path, sub))
    return h.hexdigest()

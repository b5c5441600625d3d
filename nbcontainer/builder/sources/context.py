"""The build context: which files COPY/ADD may see (.dockerignore), and their content hashes.

Hashing every file on every build would make a notebook rebuild O(context bytes), so content
digests are remembered per absolute path with the file's (inode, size, mtime_ns, ctime_ns).
A rewritten file always changes ctime (and usually mtime), so a changed file misses even when
rewritten within the same second with the same size (BuildKit's #4817). Like git's racy-index
rule, a digest is only remembered once the file's ctime is older than ``RACY_NS`` before we
hashed it: timestamps are coarse (jiffies), and a file rewritten within the same tick as its
hashing would otherwise look unchanged.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import posixpath
import re
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ...dockerfile import IgnoreMatcher, find_ignore_file, read_ignore_patterns
from ...errors import BuildError

RACY_NS = 2_000_000_000
_GLOB = re.compile(r"[*?\[]")


class StatCache:
    """Content digests of context files, persisted in the store between builds."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._data: dict[str, list] = {}
        self._dirty = False
        self.hashed = 0  # files actually read (tests and benchmarks look at this)
        if path is not None:
            try:
                self._data = json.loads(path.read_text())
            except (OSError, ValueError):
                self._data = {}

    def digest(self, path: Path, st: os.stat_result) -> str:
        key = str(path)
        sig = [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
        with self._lock:
            hit = self._data.get(key)
        if hit is not None and hit[:4] == sig:
            return hit[4]
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        self.hashed += 1
        value = h.hexdigest()
        now = time.time_ns()
        with self._lock:
            if st.st_ctime_ns < now - RACY_NS:
                self._data[key] = [*sig, value]
            else:
                self._data.pop(key, None)
            self._dirty = True
        return value

    def save(self) -> None:
        if self.path is None or not self._dirty:
            return
        with self._lock:
            data = json.dumps(self._data, separators=(",", ":"))
            self._dirty = False
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}")
        tmp.write_text(data)
        os.replace(tmp, self.path)


def has_glob(pattern: str) -> bool:
    return bool(_GLOB.search(pattern))


def _go_to_fnmatch(pattern: str) -> str:
    """Go's filepath.Match classes use ``[^…]``; fnmatch spells negation ``[!…]``."""
    return pattern.replace("[^", "[!")


def glob_match(pattern: str, path: str) -> bool:
    """``filepath.Match``: components matched one by one, ``*`` never crosses a ``/``."""
    pparts, parts = pattern.split("/"), path.split("/")
    if len(pparts) != len(parts):
        return False
    return all(fnmatch.fnmatchcase(p, _go_to_fnmatch(q)) for p, q in zip(parts, pparts, strict=True))


@dataclass
class BuildContext:
    root: Path
    ignore: IgnoreMatcher
    stat_cache: StatCache

    @classmethod
    def open(cls, root: Path, dockerfile: str, stat_cache: StatCache) -> BuildContext:
        # BuildKit sends the Dockerfile on its own, so unlike the legacy builder it does not
        # force the Dockerfile and .dockerignore back into the context (buildah agrees).
        ignore = find_ignore_file(root, dockerfile)
        patterns = read_ignore_patterns(ignore.read_bytes()) if ignore else []
        return cls(root, IgnoreMatcher(patterns), stat_cache)

    def excluded(self, rel: str) -> bool:
        return bool(rel) and self.ignore.excluded(rel)

    def resolve(self, rel: str, *, follow: bool = True) -> str | None:
        """A context-relative path with symlinks resolved inside the context (None: missing
        or excluded)."""
        parts = [p for p in posixpath.normpath("/" + rel).split("/") if p]
        resolved: list[str] = []
        hops = 0
        while parts:
            name = parts.pop(0)
            if name == "..":
                if resolved:
                    resolved.pop()
                continue
            cand = "/".join([*resolved, name])
            try:
                st = os.lstat(self.root / cand)
            except (FileNotFoundError, NotADirectoryError):
                return None
            if stat.S_ISLNK(st.st_mode) and (parts or follow):
                hops += 1
                if hops > 40:
                    raise BuildError(f"too many levels of symbolic links in context path {rel}")
                target = os.readlink(self.root / cand)
                if target.startswith("/"):
                    resolved = []
                parts = [p for p in target.split("/") if p] + parts
                continue
            resolved.append(name)
        out = "/".join(resolved)
        if self.excluded(out):
            return None
        return out

    def glob(self, pattern: str) -> list[str]:
        """Context paths matching a wildcard pattern, sorted, ignoring excluded files."""
        pattern = posixpath.normpath(pattern.lstrip("/"))
        depth = pattern.count("/")
        # Walk only as deep as the pattern reaches.
        fixed = []
        for part in pattern.split("/"):
            if has_glob(part):
                break
            fixed.append(part)
        start = "/".join(fixed[: depth])
        out: list[str] = []
        base = self.root / start if start else self.root

        def rec(dirpath: Path, rel: str, level: int) -> None:
            try:
                names = sorted(os.listdir(dirpath))
            except OSError:
                return
            for name in names:
                sub = f"{rel}/{name}" if rel else name
                if level == depth:
                    if glob_match(pattern, sub) and not self.excluded(sub):
                        out.append(sub)
                elif (dirpath / name).is_dir() and not (dirpath / name).is_symlink():
                    rec(dirpath / name, sub, level + 1)

        rec(base, start, start.count("/") + 1 if start else 0)
        return out

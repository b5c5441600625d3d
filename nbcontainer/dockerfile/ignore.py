"""``.dockerignore`` with moby/patternmatcher semantics (what BuildKit uses for contexts).

Reading follows ``ignorefile.ReadAll`` (BOM stripped, ``#`` comments only in column 1,
``filepath.Clean``, leading ``/`` dropped); matching follows ``MatchesOrParentMatches``
(last matching pattern wins, a path is excluded if it or any parent matches).
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

from nbcontainer.dockerfile.errors import DockerfileError
from nbcontainer.dockerfile.lexer import go_trim_space

__all__ = [
    "IgnoreMatcher",
    "IgnorePattern",
    "find_ignore_file",
    "go_clean",
    "read_ignore_patterns",
]


def go_clean(path: str) -> str:
    """Go's ``path.Clean`` (``filepath.Clean`` on Unix)."""
    if path == "":
        return "."
    rooted = path.startswith("/")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(part)
    out = "/".join(parts)
    if rooted:
        return "/" + out
    return out or "."


def read_ignore_patterns(text: str | bytes) -> list[str]:
    """``ignorefile.ReadAll``: the patterns of a .dockerignore file, normalised."""
    if isinstance(text, bytes | bytearray):
        text = bytes(text).decode("utf-8", "surrogateescape")
    out: list[str] = []
    for i, line in enumerate(text.split("\n")):
        if line.endswith("\r"):
            line = line[:-1]
        if i == 0 and line.startswith("\ufeff"):
            line = line[1:]
        if line.startswith("#"):
            continue
        pattern = go_trim_space(line)
        if not pattern:
            continue
        invert = pattern[0] == "!"
        if invert:
            pattern = go_trim_space(pattern[1:])
        if pattern:
            pattern = go_clean(pattern)
            if len(pattern) > 1 and pattern[0] == "/":
                pattern = pattern[1:]
        if invert:
            pattern = "!" + pattern
        out.append(pattern)
    return out


def _check_go_match_syntax(pattern: str) -> None:
    """Raise ValueError when Go's ``filepath.Match`` would return ErrBadPattern."""
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            if i + 1 >= n:
                raise ValueError("syntax error in pattern")
            i += 2
            continue
        if ch == "[":
            i += 1
            if i < n and pattern[i] == "^":
                i += 1
            nrange = 0
            while True:
                if i < n and pattern[i] == "]" and nrange > 0:
                    i += 1
                    break
                lo, i = _class_char(pattern, i)
                if i < n and pattern[i] == "-":
                    _hi, i = _class_char(pattern, i + 1)
                nrange += 1
            continue
        i += 1


def _class_char(pattern: str, i: int) -> tuple[str, int]:
    n = len(pattern)
    if i >= n or pattern[i] in "-]":
        raise ValueError("syntax error in pattern")
    if pattern[i] == "\\":
        i += 1
        if i >= n:
            raise ValueError("syntax error in pattern")
    return pattern[i], i + 1


class IgnorePattern:
    """One compiled pattern (``matchType`` fast paths included, as patternmatcher does)."""

    __slots__ = ("pattern", "exclusion", "kind", "regex")

    def __init__(self, pattern: str, exclusion: bool) -> None:
        self.pattern = pattern
        self.exclusion = exclusion
        self.kind, self.regex = self._compile(pattern)

    @staticmethod
    def _compile(pattern: str) -> tuple[str, re.Pattern[str] | None]:
        reg = "^"
        kind = "exact"
        i = 0
        n = len(pattern)
        idx = 0
        while i < n:
            ch = pattern[i]
            i += 1
            if ch == "*":
                if i < n and pattern[i] == "*":
                    i += 1
                    if i < n and pattern[i] == "/":
                        i += 1
                    if i >= n:
                        if kind == "exact":
                            kind = "prefix"
                        else:
                            reg += ".*"
                            kind = "regexp"
                    else:
                        reg += "(.*/)?"
                        kind = "regexp"
                    if idx == 0:
                        kind = "suffix"
                else:
                    reg += "[^/]*"
                    kind = "regexp"
            elif ch == "?":
                reg += "[^/]"
                kind = "regexp"
            elif ch in ".+()|{}$":
                reg += "\\" + ch
            elif ch == "\\":
                if i < n:
                    reg += "\\" + pattern[i]
                    i += 1
                    kind = "regexp"
                else:
                    reg += "\\\\"
            elif ch in "[]":
                reg += ch
                kind = "regexp"
            else:
                reg += ch
            idx += 1
        if kind != "regexp":
            return kind, None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                return "regexp", re.compile(reg + "$")
        except re.error as exc:
            raise ValueError(str(exc)) from None

    def match(self, path: str) -> bool:
        if self.kind == "exact":
            return path == self.pattern
        if self.kind == "prefix":
            return path.startswith(self.pattern[:-2])
        if self.kind == "suffix":
            suffix = self.pattern[2:]
            if path.endswith(suffix):
                return True
            return suffix[:1] == "/" and path == suffix[1:]
        assert self.regex is not None
        return self.regex.match(path) is not None


class IgnoreMatcher:
    """Decides which context paths BuildKit would send (``PatternMatcher`` plus the rule that
    the Dockerfile and the ignore file itself are always sent)."""

    def __init__(self, patterns: Iterable[str], *, always_include: Iterable[str] = ()) -> None:
        self.patterns: list[IgnorePattern] = []
        for raw in patterns:
            p = go_trim_space(raw)
            if not p:
                continue
            p = go_clean(p)
            exclusion = False
            if p[0] == "!":
                if len(p) == 1:
                    raise DockerfileError('illegal exclusion pattern: "!"', file=".dockerignore")
                exclusion = True
                p = p[1:]
            try:
                _check_go_match_syntax(p)
                compiled = IgnorePattern(p, exclusion)
            except ValueError as exc:  # the cause says what in the pattern is wrong
                raise DockerfileError(
                    f"syntax error in pattern: {p}", file=".dockerignore"
                ) from exc
            self.patterns.append(compiled)
        self.always_include = frozenset(go_clean(a).lstrip("/") for a in always_include)

    @property
    def has_exclusions(self) -> bool:
        """True when some ``!`` pattern exists, so excluded directories must still be walked."""
        return any(p.exclusion for p in self.patterns)

    @classmethod
    def from_text(cls, text: str | bytes, *, always_include: Iterable[str] = ()) -> IgnoreMatcher:
        return cls(read_ignore_patterns(text), always_include=always_include)

    @classmethod
    def for_context(
        cls, context: str | os.PathLike[str], dockerfile: str | os.PathLike[str] = "Dockerfile"
    ) -> IgnoreMatcher:
        """The matcher ``docker build`` would use for this context and Dockerfile."""
        ctx = Path(context)
        df = Path(dockerfile)
        df_abs = df if df.is_absolute() else ctx / df
        ignore = find_ignore_file(ctx, df_abs)
        always = []
        try:
            always.append(df_abs.resolve().relative_to(ctx.resolve()).as_posix())
        except ValueError:
            pass
        if ignore is None:
            return cls([], always_include=always)
        try:
            always.append(ignore.resolve().relative_to(ctx.resolve()).as_posix())
        except ValueError:
            pass
        return cls(read_ignore_patterns(ignore.read_bytes()), always_include=always)

    def matches(self, path: str) -> bool:
        """True when ``path`` (context-relative, ``/``-separated) matches, i.e. is excluded."""
        path = path.replace(os.sep, "/") if os.sep != "/" else path
        matched = False
        parent = go_clean(path.rsplit("/", 1)[0]) if "/" in path else "."
        parent_dirs = parent.split("/")
        for pat in self.patterns:
            if pat.exclusion != matched:
                continue
            hit = pat.match(path)
            if not hit and parent != ".":
                for k in range(len(parent_dirs)):
                    if pat.match("/".join(parent_dirs[: k + 1])):
                        hit = True
                        break
            if hit:
                matched = not pat.exclusion
        return matched

    def excluded(self, path: str) -> bool:
        """Whether the path stays out of the context (never true for the always-sent files)."""
        clean = go_clean(path).lstrip("/")
        if clean in self.always_include:
            return False
        return self.matches(clean)

    def included(self, path: str) -> bool:
        return not self.excluded(path)

    def walk(self, context: str | os.PathLike[str], below: str = "") -> Iterator[str]:
        """Context-relative paths (dirs and files, sorted, ``/``-separated) that are sent,
        under the context-relative directory ``below`` (default: everything).

        Excluded directories are skipped whole unless an exception pattern may re-include
        something below them (then their included descendants and the parents are kept).
        """
        root = Path(context)
        yield from self._walk(root, below.strip("/"))

    def _walk(self, root: Path, rel: str) -> Iterator[str]:
        base = root / rel if rel else root
        try:
            entries = sorted(os.scandir(base), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            path = f"{rel}/{entry.name}" if rel else entry.name
            is_dir = entry.is_dir(follow_symlinks=False)
            excluded = self.excluded(path)
            if is_dir:
                if excluded and not self.has_exclusions and not self._keeps_below(path):
                    continue
                below = list(self._walk(root, path))
                if not excluded or below:
                    yield path
                    yield from below
            elif not excluded:
                yield path

    def _keeps_below(self, path: str) -> bool:
        return any(a.startswith(path + "/") for a in self.always_include)


def find_ignore_file(
    context: str | os.PathLike[str], dockerfile: str | os.PathLike[str] = "Dockerfile"
) -> Path | None:
    """``<Dockerfile>.dockerignore`` next to the Dockerfile if it exists, else
    ``<context>/.dockerignore`` if it exists, else None."""
    df = Path(dockerfile)
    ctx = Path(context)
    if not df.is_absolute():
        df = ctx / df
    specific = df.with_name(df.name + ".dockerignore")
    if specific.is_file():
        return specific
    generic = ctx / ".dockerignore"
    return generic if generic.is_file() else None

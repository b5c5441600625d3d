"""BuildKit's instruction flag parser (``instructions/bflag.go``).

Each instruction declares the flags it accepts; anything else is an error worded as BuildKit
words it, with a "did you mean" suggestion computed the same way (Levenshtein distance < 3).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = ["BFlags", "Flag", "FlagError", "levenshtein", "suggest"]


class FlagError(Exception):
    """A flag problem; the instruction layer turns it into a located DockerfileError."""


def levenshtein(a: str, b: str) -> int:
    """Edit distance, as ``github.com/agext/levenshtein`` computes it (unit costs)."""
    if a == b:
        return 0
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def suggest(value: str, options: Iterable[str], *, case_sensitive: bool) -> str | None:
    """BuildKit's ``suggest.WrapError`` choice: the closest option at distance < 3, if any."""
    orig = value
    if not case_sensitive:
        value = value.lower()
    match = None
    best = 3
    for opt in options:
        cmp = opt if case_sensitive else opt.lower()
        if cmp == value:
            return None
        if abs(len(cmp) - len(value)) >= best:
            continue  # the distance is at least the length difference: skip the O(n*m) work
        dist = levenshtein(value, cmp)
        if dist < best:
            best = dist
            if case_sensitive:
                match = cmp
            elif orig == orig.lower():
                match = cmp.lower()
            elif orig == orig.upper():
                match = cmp.upper()
            else:
                match = cmp
    return match


def with_suggestion(message: str, value: str, options: Iterable[str], *, case_sensitive: bool) -> str:
    """Append `` (did you mean X?)`` the way BuildKit does."""
    match = suggest(value, options, case_sensitive=case_sensitive)
    return f"{message} (did you mean {match}?)" if match else message


@dataclass
class Flag:
    """One declared flag and what the instruction line set it to."""

    name: str
    kind: str  # "bool" | "string" | "strings"
    value: str = ""
    values: list[str] = field(default_factory=list)
    used: bool = False

    @property
    def is_true(self) -> bool:
        return self.value == "true"


class BFlags:
    """Declare flags with ``add_*`` then ``parse()`` the instruction's raw ``--flag`` words."""

    def __init__(self, args: Sequence[str] = ()) -> None:
        self.args = list(args)
        self.flags: dict[str, Flag] = {}
        self._err: str | None = None

    def _add(self, name: str, kind: str) -> Flag:
        if name in self.flags:
            self._err = f"Duplicate flag defined: {name}"
        flag = Flag(name, kind)
        self.flags[name] = flag
        return flag

    def add_bool(self, name: str, default: bool = False) -> Flag:
        flag = self._add(name, "bool")
        flag.value = "true" if default else "false"
        return flag

    def add_string(self, name: str, default: str = "") -> Flag:
        flag = self._add(name, "string")
        flag.value = default
        return flag

    def add_strings(self, name: str) -> Flag:
        return self._add(name, "strings")

    def used(self) -> list[str]:
        return [f.name for f in self.flags.values() if f.used]

    def parse(self) -> None:
        """Apply the raw flag words; raise FlagError with BuildKit's message."""
        if self._err:
            raise FlagError(f"Error setting up flags: {self._err}")
        for raw in self.args:
            if not raw.startswith("--"):
                raise FlagError(f"Arg should start with -- : {raw}")
            if raw == "--":
                return
            arg = raw[2:]
            value = ""
            index = arg.find("=")
            if index >= 0:
                value = arg[index + 1 :]
                arg = arg[:index]
            flag = self.flags.get(arg)
            if flag is None:
                raise FlagError(
                    with_suggestion(f"unknown flag: --{arg}", arg, self.flags, case_sensitive=True)
                )
            if flag.used and flag.kind != "strings":
                raise FlagError(f"Duplicate flag specified: {arg}")
            flag.used = True
            if flag.kind == "bool":
                if index >= 0 and value == "":
                    raise FlagError(f"Missing a value on flag: {arg}")
                lower = value.lower()
                if lower == "":
                    flag.value = "true"
                elif lower in ("true", "false"):
                    flag.value = lower
                else:
                    raise FlagError(f"Expecting boolean value for flag {arg}, not: {value}")
            elif flag.kind == "string":
                if index < 0:
                    raise FlagError(f"Missing a value on flag: {arg}")
                flag.value = value
            else:
                if index < 0:
                    raise FlagError(f"Missing a value on flag: {arg}")
                flag.values.append(value)

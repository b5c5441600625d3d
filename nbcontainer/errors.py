"""One exception family for the whole toolkit.

Every error carries a message a user can act on and an optional hint; the CLI and the
notebook print ``str(err)`` (message plus hint) and never a traceback unless asked.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class SourceExcerpt:
    """Where in a Dockerfile an error happened, shown as BuildKit shows a failed step: the
    instruction's lines marked ``>>>`` with a little context, numbered. ``lines`` is the
    whole file and ``start``/``end`` the instruction's lines (1-based). In a notebook cell
    the ``%%dockerfile`` line is line 1 (:meth:`in_cell`), so the numbers are the cell's."""

    file: str
    lines: tuple[str, ...]
    start: int
    end: int
    label: str = ""  # the header, when it is not ``file:start``

    def in_cell(self, magic_line: str) -> SourceExcerpt:
        """The same place, numbered as in the cell whose first line is ``magic_line``."""
        return replace(self, lines=(magic_line, *self.lines), start=self.start + 1,
                       end=self.end + 1,
                       label=f"cell line {self.start + 1} ({self.file}:{self.start})")

    def render(self) -> list[str]:
        """``Dockerfile:3``, a rule, `` 3 | >>> RUN false`` with two lines of context around
        a one-line instruction (one around a longer one), a rule: BuildKit's layout."""
        n = len(self.lines)
        if not 1 <= self.start <= n:
            return []
        end = min(max(self.end, self.start), n)
        context = 2 if end == self.start else 1
        first, last = max(1, self.start - context), min(n, end + context)
        rule = "-" * 20
        out = [self.label or f"{self.file}:{self.start}", rule]
        for i in range(first, last + 1):
            mark = ">>>" if self.start <= i <= end else "   "
            out.append(f" {i:3d} | {mark} {self.lines[i - 1]}".rstrip())
        out.append(rule)
        return out


class NbcontainerError(Exception):
    """Base of all errors nbcontainer raises on purpose. ``excerpt``: where in the Dockerfile
    it happened (a failed build step), printed between the message and the hint."""

    excerpt: SourceExcerpt | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        parts = [self.message]
        if self.excerpt is not None:
            parts += self.excerpt.render()
        if self.hint:
            parts.append(f"hint: {self.hint}")
        return "\n".join(parts)


class ReferenceFormatError(NbcontainerError, ValueError):
    """An image reference, digest, tag or platform string is malformed."""


class ImageFormatError(NbcontainerError, ValueError):
    """A manifest, index, config or archive does not follow the OCI/Docker formats."""


class LayerError(NbcontainerError):
    """A layer cannot be written or read (I/O, compression)."""


class UnsafeLayerError(LayerError):
    """A layer entry would escape the target directory or is otherwise hostile/corrupt."""

    def __init__(self, message: str, *, entry: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.entry = entry


class StoreError(NbcontainerError):
    """The content store cannot satisfy a request (unknown image, corrupt blob, lock)."""


class ImageNotFound(StoreError, LookupError):
    """No image matches a tag, digest or short id."""


class DigestMismatch(StoreError):
    """Bytes did not hash to the digest they were announced with."""


class BuildError(NbcontainerError):
    """A build step failed."""


class RegistryError(NbcontainerError):
    """A registry request failed."""


def bug_message(what: str, exc: BaseException, details: str) -> str:
    """One line for an exception nbcontainer did not expect (not one of the errors above):
    what failed, that it is a bug, and ``details``, the skin's way to get the traceback. The
    CLI and the notebook both say it this way."""
    text = str(exc).strip().splitlines()
    cause = type(exc).__name__ + (f": {text[0]}" if text else "")
    if len(cause) > 200:
        cause = cause[:199] + "…"
    return f"{what} failed with {cause}; this is a bug in nbcontainer ({details})"


class MountSpecError(NbcontainerError, ValueError):
    """A ``-v``/``--mount`` value is malformed or names a host path that does not exist."""


class KernelError(NbcontainerError):
    """A kernel from an image cannot be installed, found or started."""

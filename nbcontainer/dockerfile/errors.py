"""The one exception type of the Dockerfile frontend, and the lint warning record.

Errors point at the source (file, line, column, the line itself and a caret) because a
Dockerfile is usually edited in a notebook cell, where a traceback helps nobody.
"""

from __future__ import annotations

from dataclasses import dataclass

from nbcontainer.errors import NbcontainerError


def caret_render(source_line: str, column: int | None, width: int = 1) -> str:
    """Two lines: the source line and a caret under ``column`` (1-based), tabs kept aligned."""
    if column is None or column < 1:
        return source_line
    prefix = "".join("\t" if ch == "\t" else " " for ch in source_line[: column - 1])
    return f"{source_line}\n{prefix}{'^' * max(1, width)}"


class DockerfileError(NbcontainerError, ValueError):
    """A Dockerfile cannot be parsed, expanded or planned.

    ``message`` is BuildKit's wording where BuildKit has one; ``file``/``line``/``column``
    locate the problem (1-based, ``None`` when unknown) and ``source`` is the offending line.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = "Dockerfile",
        line: int | None = None,
        column: int | None = None,
        end_line: int | None = None,
        source: str | None = None,
        width: int = 1,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.file = file
        self.line = line
        self.column = column
        self.end_line = end_line
        self.source = source
        self.width = width

    @property
    def caret(self) -> str:
        """The offending source line with a caret under the column (empty if no source)."""
        if self.source is None:
            return ""
        return caret_render(self.source, self.column, self.width)

    @property
    def location(self) -> str:
        """``file:line:column`` with the parts that are known."""
        parts = [self.file or "Dockerfile"]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)

    def __str__(self) -> str:
        text = f"{self.location}: {self.message}"
        if self.source is not None:
            text += "\n" + self.caret
        if self.hint:
            text += f"\nhint: {self.hint}"
        return text


@dataclass(frozen=True)
class LintWarning:
    """One BuildKit lint finding: reported with the plan, never raised."""

    rule: str
    message: str
    line: int | None = None
    file: str = "Dockerfile"
    url: str = ""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.rule}: {self.message}"


class InstructionError(Exception):
    """Internal: what is wrong with one instruction's value, and the token to point the caret
    at. The instruction layer and the plan turn it into a located DockerfileError."""

    def __init__(self, message: str, token: str | None = None) -> None:
        super().__init__(message)
        self.token = token

"""Errors in a cell: the message a user can act on, never a traceback (``NBCONTAINER_DEBUG``
set keeps them).

IPython prints ``exc._render_traceback_()`` instead of a traceback when an exception has it.
The error keeps its class (a ``DockerfileError`` is still one for ``except`` clauses) through a
subclass that only adds that method, and the cell still fails, so "run all" stops there.
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import NbcontainerError

RED, DIM, RESET = "\x1b[31m", "\x1b[2m", "\x1b[0m"
_classes: dict[type, type] = {}


def render(exc: BaseException) -> list[str]:
    """Lines for the cell's error output: ``Name: message``, a caret block, ``hint: …``."""
    name = type(exc).__name__
    if isinstance(exc, NbcontainerError):
        body = str(exc).split("\n")  # DockerfileError: location: message, source, caret, hint
    else:
        body = str(exc).split("\n") if str(exc) else []
    head = f"{RED}{name}{RESET}: {body[0]}" if body else f"{RED}{name}{RESET}"
    rest = [f"{DIM}{line}{RESET}" if line.startswith("hint: ") else line for line in body[1:]]
    return [head, *rest]


def _render_traceback_(self: BaseException) -> list[str]:
    return render(self)


def short(exc: BaseException) -> BaseException:
    """``exc`` re-classed so IPython shows :func:`render` instead of a traceback (unless
    ``NBCONTAINER_DEBUG`` is set)."""
    if os.environ.get("NBCONTAINER_DEBUG") or hasattr(exc, "_render_traceback_"):
        return exc
    cls = type(exc)
    sub = _classes.get(cls)
    if sub is None:
        try:
            sub = type(cls.__name__, (cls,), {"_render_traceback_": _render_traceback_,
                                             "__module__": cls.__module__})
        except TypeError:  # a final class: fall back to the generic wrapper
            sub = None
        _classes[cls] = sub  # type: ignore[assignment]
    if sub is None:
        return CellError(render(exc))
    new = sub.__new__(sub, *exc.args)
    new.args = exc.args
    new.__dict__.update(getattr(exc, "__dict__", {}))
    return new


class CellError(Exception):
    """A failure that is already a message (e.g. a container's exit status)."""

    def __init__(self, message: str | list[str], *, hint: str | None = None) -> None:
        lines = message if isinstance(message, list) else [message]
        super().__init__(lines[0] if lines else "")
        self.lines = lines + ([f"hint: {hint}"] if hint else [])

    def _render_traceback_(self) -> list[str]:
        return [f"{RED}Error{RESET}: {self.lines[0]}" if self.lines else "Error",
                *self.lines[1:]]


# How a notebook user gets the traceback of an unexpected error (the CLI says --debug).
DEBUG_HOW = "run %env NBCONTAINER_DEBUG=1 and the cell again for the traceback"


class InternalError(Exception):
    """An exception nbcontainer did not expect, as the one line ``errors.bug_message`` makes
    (what failed, that it is a bug, how to see the traceback). The original exception is the
    ``__cause__``, so ``%debug`` and ``%tb`` still reach it."""

    def _render_traceback_(self) -> list[str]:
        return [f"{RED}InternalError{RESET}: {self.args[0] if self.args else ''}"]


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a build or transfer, after the cleanup: one clear line."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what

    def _render_traceback_(self) -> list[str]:
        return [f"{RED}Interrupted{RESET}: {self.what}"]


def is_short(exc: Any) -> bool:
    return hasattr(exc, "_render_traceback_")

"""Package attributes imported on first use (PEP 562).

A package ``__init__`` that re-exports names from its modules would import all of them, and
with them the heavy dependencies (the compression libraries, the sandbox's helpers), even
when only one small module is needed: ``nbcontainer --version`` or a fully cached build would
pay for the whole toolkit. ``exports`` gives such a package a ``__getattr__`` that imports a
name's module when the name is first asked for. The names stay visible to type checkers
through an ``if TYPE_CHECKING:`` import of the same names.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def exports(package: str, table: Mapping[str, str]) -> Callable[[str], Any]:
    """``__getattr__`` for ``package``: ``table`` maps each exported name to its module."""

    def getattr_(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        setattr(sys.modules[package], name, value)  # later lookups skip this function
        return value

    return getattr_

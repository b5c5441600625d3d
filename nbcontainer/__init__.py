"""nbcontainer: a notebook-native, daemonless OCI image toolkit."""

from __future__ import annotations

import sys

from .version import __version__ as __version__

TYPE_CHECKING = False  # (typing.TYPE_CHECKING without importing typing: the CLI's start-up)
if TYPE_CHECKING:
    from typing import Any


def load_ipython_extension(ipython: Any) -> None:  # an IPython InteractiveShell
    """``%load_ext nbcontainer``: registers the magics and the rich displays (imported lazily
    so plain API users never pay for IPython)."""
    from .notebook import display, magics

    display.register(ipython)
    magics.register(ipython)


def _register_display() -> None:
    """Inside a running IPython (a Jupyter kernel), images, indexes and diffs show richly
    after a plain ``import nbcontainer``, without ``%load_ext``. Looking in ``sys.modules``
    keeps a process that has not loaded IPython (the command line) from importing it."""
    if "IPython" not in sys.modules:
        return
    from IPython import get_ipython

    ip = get_ipython()
    if ip is None or not hasattr(ip, "display_formatter"):
        return
    from .notebook import display

    display.register(ip)


_register_display()

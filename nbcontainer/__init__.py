"""nbcontainer: a notebook-native, daemonless OCI image toolkit."""

from __future__ import annotations

from .version import __version__ as __version__


def load_ipython_extension(ipython) -> None:  # pragma: no cover - exercised via IPython tests
    """``%load_ext nbcontainer``: registers the magics (imported lazily so plain API users
    never pay for IPython)."""
    try:
        from .notebook import magics
    except ImportError:
        return  # the notebook layer arrives with its own issue; loading stays clean until then
    magics.register(ipython)

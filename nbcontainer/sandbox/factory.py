"""Which executor this environment gets."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .executor import Executor
from .namespaced import NamespaceExecutor

if TYPE_CHECKING:
    from nbcontainer.layers.idmap import IdMap


def open_executor(*, rootless: bool | None = None, idmap: IdMap | None = None,
                  warm: bool = True) -> Executor:
    """The executor for RUN steps here: today always the namespace executor, rootless
    exactly when not running as root (``rootless``/``idmap`` override that).

    ``warm`` keeps a helper resident between runs (a build); pass False for a single run
    or for file operations only, which then start nothing ahead of time.
    """
    return NamespaceExecutor(rootless, idmap=idmap, fork_server=warm)

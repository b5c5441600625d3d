"""Housekeeping of the build area ``<store>/build/`` for ``prune``.

Called by ``store.gc.prune`` while it holds the store's gc lock exclusively (so no build is
running: builds hold it shared), after unreferenced blobs were deleted. Removes:

* snapshots (``snapshots-*/flat|diff/<chain>``) of chains that no image in the store uses,
  and snapshots from an earlier boot (not trusted, see snapshots.py);
* cache entries whose layer blobs are gone (they could never hit again) and unreadable ones;
* temp dirs and files of builds that were killed (their process is gone).

``RUN --mount=type=cache`` directories are kept (``prune --cache`` removes them), and so is
the stat cache, which holds no data.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..oci.digest import Digest
from ..oci.manifest import Manifest
from .buildcache import entry_files, entry_valid, memo_dir, memo_valid
from .snapshots import build_area, chain_ids, trusted
from .store import Store

Remove = Callable[[Path], None]


@dataclass
class BuildPruneReport:
    snapshots_removed: int = 0
    cache_entries_removed: int = 0
    temp_removed: int = 0


def used_chains(store: Store) -> set[str]:
    """Chain ids (hex) of every layer prefix of every image in the store."""
    out: set[str] = set()
    for dig in store.refs.read().images:
        for blob in store.blobs_of(Digest.parse(dig)):
            try:
                parsed = store.read_manifest(blob)
            except Exception:  # noqa: BLE001 - configs, layers and foreign blobs
                continue
            if not isinstance(parsed, Manifest):
                continue
            try:
                diff_ids = store.read_config(parsed).diff_ids
            except Exception:  # noqa: BLE001 - a broken image keeps nothing alive
                continue
            out.update(c.hex for c in chain_ids(diff_ids))
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _owner_pid(name: str) -> int | None:
    """The pid in a temp name ``[prefix-]<pid>-<random>`` (None: not one of ours)."""
    parts = name.lstrip(".").split("-")
    for part in parts[:2]:
        if part.isdigit():
            return int(part)
    return None


def plain_remove(path: Path) -> None:
    """Delete a file or tree (what root, or the owner of every file, can do directly)."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    except FileNotFoundError:
        return


def prune_build(store: Store, remove: Remove | None = None) -> BuildPruneReport:
    """``remove`` deletes a tree; rootless snapshots hold files owned by subordinate ids,
    which only root of the builder's user namespace can delete (the caller passes that)."""
    report = BuildPruneReport()
    area = build_area(store)
    if not area.is_dir():
        return report
    remove = remove or plain_remove
    keep = used_chains(store)
    for snaps in sorted(area.glob("snapshots-*")):
        for kind in ("flat", "diff"):
            for d in sorted((snaps / kind).glob("*")) if (snaps / kind).is_dir() else ():
                # Directory names are the first 24 hex digits of the chain id.
                if trusted(d) and any(c.startswith(d.name) for c in keep):
                    continue
                remove(d)
                report.snapshots_removed += 1
        tmp = snaps / "tmp"
        for p in sorted(tmp.iterdir()) if tmp.is_dir() else ():
            pid = _owner_pid(p.name)
            if pid is not None and _alive(pid):
                continue  # a live builder's scratch (an idle notebook session's pool)
            remove(p)
            report.temp_removed += 1
    for p in entry_files(store):
        if p.name.startswith("."):  # a writer killed between write and rename
            p.unlink(missing_ok=True)
            report.temp_removed += 1
        elif not entry_valid(store, p):
            p.unlink(missing_ok=True)
            report.cache_entries_removed += 1
    memos = memo_dir(store)
    for p in sorted(memos.iterdir()) if memos.is_dir() else ():
        if p.name.startswith(".") or not memo_valid(store, p):  # (a killed writer's temp too)
            p.unlink(missing_ok=True)
            report.cache_entries_removed += 1
    return report

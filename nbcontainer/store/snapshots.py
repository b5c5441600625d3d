"""Extracted filesystems in the store, keyed by layer chain id, shared and read-only.

Two kinds live side by side under ``<store>/build/snapshots-<ids>/``:

* ``flat/<chain>``: the whole chain extracted into one tree (a base image from a registry);
* ``diff/<chain>``: one layer in overlayfs format on top of its parent chain; a RUN's upper
  dir (whiteouts as char 0:0, opaque xattrs) is kept as is, because an upper dir is a valid
  lower dir, so later RUNs stack it without re-extracting anything.

A chain's lower dirs are found by walking down from its top: diff snapshots until a flat one
(or the bottom). When something is missing (pruned, or a layer that came from the cache of
another store), the chain is extracted flat once. Snapshots are published by rename, so a
reader never sees a half-written one; ``<ids>`` separates root and rootless (id-shifted) trees.

Snapshots are never fsynced (RUN overlays are mounted ``volatile``; extraction writes through
the page cache): the layer blobs are the durable truth. So ``meta.json`` records the boot it
was written in, and a snapshot from an earlier boot is not trusted, since a crash may have left
it torn: it is ignored (the chain is rebuilt from its blobs) and ``prune`` deletes it.
Scratch dirs in ``tmp/`` are named ``<pid>-…`` so ``prune`` can tell a killed build's from a
live one's.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from ..layers.owners import move_owners
from ..oci.digest import Digest
from .store import Store

MAX_LOWERS = 48  # overlay's option string is one page; stay well below it
_SHORT = 24  # hex chars of a chain id in a directory name (keeps lowerdir= short)


def boot_id() -> str:
    """This boot's random id (snapshots from another boot are not trusted)."""
    global _BOOT_ID
    if _BOOT_ID is None:
        try:
            with open("/proc/sys/kernel/random/boot_id") as f:
                _BOOT_ID = f.read().strip()
        except OSError:  # no procfs: fall back to trusting nothing across processes
            _BOOT_ID = f"pid-{os.getpid()}"
    return _BOOT_ID


_BOOT_ID: str | None = None


def trusted(snapshot_dir: Path) -> bool:
    """Whether a published snapshot (``flat/<x>`` or ``diff/<x>``) is from this boot."""
    try:
        with open(snapshot_dir / "meta.json") as f:
            return bool(json.load(f).get("boot") == boot_id())
    except (OSError, ValueError, AttributeError):
        return False


def chain_ids(diff_ids: Sequence[Digest]) -> list[Digest]:
    """OCI chain ids: ``chain(n) = sha256(chain(n-1) + " " + diff_id(n))``."""
    out: list[Digest] = []
    for d in diff_ids:
        if not out:
            out.append(d)
        else:
            out.append(Digest.of(f"{out[-1]} {d}".encode()))
    return out


class FileOps(Protocol):
    """How snapshot trees are written and deleted: in-process as root, or as root of the
    sandbox's user namespace when rootless (files owned by subordinate ids)."""

    def extract(self, target: Path, blobs: Sequence[Path]) -> None: ...

    def remove(self, path: Path) -> None: ...


class Snapshots:
    """``vfs``: rungs without overlayfs keep only flat trees (a RUN copies one and its copy
    becomes the next chain's), each with its owners record beside it (layers/owners.py)."""

    def __init__(self, store: Store, fileops: FileOps, ids_tag: str, *,
                 vfs: bool = False) -> None:
        self.store = store
        self.fileops = fileops
        self.vfs = vfs
        self.root = build_area(store) / f"snapshots-{ids_tag}"
        self.tmp = self.root / "tmp"
        for d in (self.root / "flat", self.root / "diff", self.tmp):
            d.mkdir(parents=True, exist_ok=True)
        self._trusted: set[Path] = set()  # meta.json read once: a snapshot never changes
        # vfs: trees this process may hand to a RUN instead of a copy (see take_private).
        self._lock = threading.Lock()
        self._fresh: set[str] = set()  # flats this process published (chain ids)
        self._spares: dict[str, Path] = {}  # chain id -> an unpublished copy of its tree
        # Called with the layers before extracting them: fetches blobs a --cache-from hit
        # left in the registry (remote_cache fetches lazily, as BuildKit does).
        self.before_extract: Callable[[Sequence[tuple[Digest, Digest]]], None] | None = None

    @classmethod
    def open(cls, store: Store, fileops: FileOps, idmap: str | None, *, vfs: bool = False,
             records: bool = False) -> Snapshots:
        """The snapshot set for one id mapping: ``idmap`` is the uid and gid map lines of a
        rootless sandbox, None for real root (trees owned by container ids as they are).
        ``records``: trees owned by the caller with owners records (any rung that keeps
        them shares one set); ``vfs``: flat trees only."""
        if records:
            tag = f"records-{os.getuid()}"
        else:
            tag = ("root" if idmap is None else ids_tag(idmap)) + ("-vfs" if vfs else "")
        return cls(store, fileops, tag, vfs=vfs)

    def empty_dir(self) -> Path:
        """An empty, read-only lower dir (the root of ``scratch`` images)."""
        empty = self.root / "empty"
        if not empty.is_dir():
            tmp = self.scratch()
            os.chmod(tmp, 0o755)
            try:
                os.rename(tmp, empty)
            except OSError:
                os.rmdir(tmp)
        return empty

    def lowers_or_empty(self, layers: Sequence[tuple[Digest, Digest]]) -> list[Path]:
        """``lowers``, or the empty dir for an image without layers (overlay needs one)."""
        return self.lowers(layers) or [self.empty_dir()]

    def _dir(self, kind: str, chain: Digest) -> Path:
        return self.root / kind / chain.hex[:_SHORT]

    def _get(self, kind: str, chain: Digest) -> Path | None:
        d = self._dir(kind, chain)
        if not (d / "fs").is_dir():  # (prune may have removed a snapshot seen earlier)
            return None
        if d in self._trusted:
            return d / "fs"
        if not trusted(d):
            return None
        self._trusted.add(d)
        return d / "fs"

    def flat(self, chain: Digest) -> Path | None:
        return self._get("flat", chain)

    def diff(self, chain: Digest) -> Path | None:
        return self._get("diff", chain)

    def scratch(self) -> Path:
        """A fresh private directory on the snapshots' filesystem (for uppers and COPYs)."""
        d = self.tmp / temp_name()
        d.mkdir()
        return d

    def publish_diff(self, chain: Digest, tree: Path) -> Path | None:
        """Move ``tree`` (an upper or COPY dir) in as the diff snapshot of ``chain`` (not in
        ``vfs`` mode, where a diff is no lower dir: the caller discards it)."""
        if self.vfs:
            return None
        return self._publish("diff", chain, tree)

    def publish_flat(self, chain: Digest, tree: Path) -> Path:
        """Move ``tree`` (a whole tree after a RUN, with its record) in as ``chain``'s."""
        final = self._publish("flat", chain, tree)
        with self._lock:
            self._fresh.add(str(chain))
        return final

    # ------------------------------------------------------------------ vfs: no copy twice
    # A RUN over a tree copy pays for the copy (on a busy disk, ~0.1-0.7 ms per entry). In a
    # linear Dockerfile the next RUN runs over the tree the previous one just published, and
    # a RUN that changed nothing leaves a copy identical to its parent's: both can be handed
    # to the next RUN instead of a fresh copy. A flat taken this way is gone from the store
    # (``lowers`` extracts it again from the blobs if anything asks later).

    def take_private(self, layers: Sequence[tuple[Digest, Digest]]) -> Path | None:
        """A private tree of ``layers``' chain for a RUN to consume, if one is at hand."""
        if not self.vfs or not layers:
            return None
        chain = str(chain_ids([d for _, d in layers])[-1])
        with self._lock:
            spare = self._spares.pop(chain, None)
            if spare is not None:
                return spare
            if chain not in self._fresh:
                return None
            self._fresh.discard(chain)
        final = self._dir("flat", Digest.parse(chain))
        private = self.tmp / temp_name("take")
        try:
            os.rename(final / "fs", private)
        except OSError:
            return None  # gone meanwhile (prune): the caller copies from the store
        move_owners(final / "fs", private)
        self._trusted.discard(final)
        self.fileops.remove(final)  # meta.json: the chain has no flat any more
        return private

    def offer_spare(self, layers: Sequence[tuple[Digest, Digest]], tree: Path) -> bool:
        """Keep ``tree`` (an unchanged copy of ``layers``' tree) for the next RUN over it."""
        if not self.vfs or not layers:
            return False
        chain = str(chain_ids([d for _, d in layers])[-1])
        spare = self.tmp / temp_name("spare")
        os.rename(tree, spare)
        move_owners(tree, spare)
        with self._lock:
            old = self._spares.pop(chain, None)
            self._spares[chain] = spare
        if old is not None:
            self.fileops.remove(old)
        return True

    def drop_spares(self) -> None:
        with self._lock:
            spares, self._spares = list(self._spares.values()), {}
        for tree in spares:
            self.fileops.remove(tree)

    def _publish(self, kind: str, chain: Digest, tree: Path) -> Path:
        final = self._dir(kind, chain)
        holder = self.tmp / temp_name("pub")
        holder.mkdir()
        os.rename(tree, holder / "fs")
        move_owners(tree, holder / "fs")
        (holder / "meta.json").write_text(json.dumps({"chain": str(chain), "kind": kind,
                                                      "boot": boot_id()}))
        try:
            os.rename(holder, final)
        except OSError:
            if not trusted(final):  # a stale one from an earlier boot: replace it
                stale = self.tmp / temp_name("stale")
                try:
                    os.rename(final, stale)
                    self.fileops.remove(stale)
                    os.rename(holder, final)
                except OSError:
                    pass
            if holder.exists():  # another build published it first: theirs is as good
                self.fileops.remove(holder)
        self._trusted.add(final)
        return final / "fs"

    def lowers(self, layers: Sequence[tuple[Digest, Digest]]) -> list[Path]:
        """Lower dirs (top first) for layers ``(blob digest, diff_id)``, bottom first; the
        flat chain is extracted when the diff snapshots don't reach down."""
        if not layers:
            return []
        chains = chain_ids([d for _, d in layers])
        if self.vfs:
            return [self.materialize(layers, chains[-1])]
        out: list[Path] = []
        for k in range(len(chains) - 1, -1, -1):
            flat = self.flat(chains[k])
            if flat is not None:
                out.append(flat)
                return out
            diff = self.diff(chains[k])
            if diff is None or len(out) >= MAX_LOWERS:
                break
            out.append(diff)
        else:
            return out
        return [self.materialize(layers, chains[-1])]

    def materialize(self, layers: Sequence[tuple[Digest, Digest]], chain: Digest) -> Path:
        existing = self.flat(chain)
        if existing is not None:
            return existing
        work = self.scratch()
        target = work / "fs"
        target.mkdir()
        try:
            if self.before_extract is not None:
                self.before_extract(layers)
            self.fileops.extract(target, [self.store.blobs.path(b) for b, _ in layers])
            return self._publish("flat", chain, target)
        finally:
            self.fileops.remove(work)


def temp_name(prefix: str = "") -> str:
    """``[prefix-]<pid>-<random>``: prune removes a temp dir only once its process is gone."""
    return f"{prefix + '-' if prefix else ''}{os.getpid()}-{secrets.token_hex(6)}"


def ids_tag(idmap_lines: str) -> str:
    """Name of the snapshot set for one id mapping (root's identity map is ``root``)."""
    return hashlib.sha256(idmap_lines.encode()).hexdigest()[:12]


def build_area(store: Store) -> Path:
    """``<store>/build``: snapshots, the build cache index, cache mounts, stat caches."""
    return store.home / "build"

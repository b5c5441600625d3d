"""The build cache index in the store: step key → what the builder recorded after that step.

Keys chain: each is a hash of the previous step's key and of exactly what the step uses
(instruction, expanded values, source contents, environment, used build args), never times
or absolute paths, so the same Dockerfile and context hit in another directory too.

The store keeps an entry as an opaque JSON value (the builder's image state) plus the layer
blobs it needs. A hit is only honoured while every one of those blobs is in the store
(prune may remove them), and ``gc`` reads nothing but that list: the store never needs to
understand the builder's format.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..oci.digest import Digest
from .snapshots import build_area
from .store import Store

Submit = Callable[[Callable[[], object]], None]
FORMAT = 2  # entries of format 1 (no blob list) are misses and are pruned


def step_key(parent: str, kind: str, payload: Any) -> str:
    data = json.dumps([parent, kind, payload], sort_keys=True, default=str,
                      separators=(",", ":"))
    return hashlib.sha256(data.encode()).hexdigest()


@dataclass(frozen=True)
class CacheEntry:
    """One cache entry: the builder's value and the layer blobs it names."""

    value: Any
    blobs: tuple[Digest, ...]

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, "blobs": [str(b) for b in self.blobs],
                           "value": self.value}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> CacheEntry:
        doc = json.loads(text)
        if not isinstance(doc, dict) or doc.get("format") != FORMAT or \
                not isinstance(doc.get("blobs"), list):
            raise ValueError("not a cache entry of this format")
        return cls(doc.get("value"), tuple(Digest.parse(b) for b in doc["blobs"]))


class CacheIndex:
    """One JSON file per key, published by rename. With ``submit`` (a background writer that
    keeps submission order) files are written off the critical path and entries not yet on
    disk are served from memory; the caller drains its writer at the end of every build."""

    def __init__(self, store: Store, submit: Submit | None = None) -> None:
        self.store = store
        self.root = cache_dir(store)
        self.root.mkdir(parents=True, exist_ok=True)
        self.submit = submit
        self._pending: dict[str, CacheEntry] = {}
        self._lock = threading.Lock()

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> CacheEntry | None:
        with self._lock:
            entry = self._pending.get(key)
        if entry is None:
            try:
                text = self._path(key).read_text()
            except OSError:
                return None
            try:
                entry = CacheEntry.from_json(text)
            except (ValueError, TypeError, AttributeError):
                return None
        if not all(self.store.blobs.has(b) for b in entry.blobs):
            return None
        return entry

    def put(self, key: str, value: Any, blobs: Sequence[Digest]) -> None:
        entry = CacheEntry(value, tuple(blobs))
        if self.submit is None:
            self._write(key, entry)
            return
        with self._lock:
            self._pending[key] = entry
        self.submit(lambda: self._write_pending(key, entry))

    def _write_pending(self, key: str, entry: CacheEntry) -> None:
        try:
            self._write(key, entry)
        finally:
            with self._lock:
                if self._pending.get(key) is entry:
                    del self._pending[key]

    def _write(self, key: str, entry: CacheEntry) -> None:
        path = self._path(key)
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_name(f".{key}.{secrets.token_hex(4)}")
        tmp.write_text(entry.to_json())
        os.replace(tmp, path)


def cache_dir(store: Store) -> Path:
    return build_area(store) / "cache"


def entry_files(store: Store) -> Iterator[Path]:
    """Every file below the cache index (entries and writers' leftovers), for ``prune``."""
    root = cache_dir(store)
    for sub in sorted(root.iterdir()) if root.is_dir() else ():
        yield from (sorted(sub.iterdir()) if sub.is_dir() else ())


def entry_valid(store: Store, path: Path) -> bool:
    """Whether the entry at ``path`` can still hit: readable, of this format, blobs present."""
    try:
        entry = CacheEntry.from_json(path.read_text())
    except (OSError, ValueError, TypeError, AttributeError):
        return False
    return all(store.blobs.has(b) for b in entry.blobs)


def memo_dir(store: Store) -> Path:
    """Where the builder's memo of whole builds lives: one JSON file per build request, each
    naming the image it produced as ``digest`` (all ``prune`` needs to know of it)."""
    return build_area(store) / "memo"


def memo_valid(store: Store, path: Path) -> bool:
    """Whether a memo entry still names an image of the store."""
    try:
        doc = json.loads(path.read_text())
        return isinstance(doc, dict) and str(doc.get("digest")) in store.refs.read().images
    except (OSError, ValueError):
        return False

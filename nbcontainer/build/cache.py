"""The build cache index in the store: step key → the image state after that step.

Keys chain: each is a hash of the previous step's key and of exactly what the step uses
(instruction, expanded values, source contents, environment, used build args), never times
or absolute paths, so the same Dockerfile and context hit in another directory too. A hit is
only honoured when every layer blob it names is still in the store (prune may remove them).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import threading
from pathlib import Path
from typing import Any

from ..store import Store
from .janitor import Janitor
from .state import ImageState


def step_key(parent: str, kind: str, payload: Any) -> str:
    data = json.dumps([parent, kind, payload], sort_keys=True, default=str,
                      separators=(",", ":"))
    return hashlib.sha256(data.encode()).hexdigest()


class CacheIndex:
    """One JSON file per key, published by rename. With a ``janitor`` the files are written
    in the background (in order, after whatever was submitted before them) and entries not
    yet on disk are served from memory; the builder drains the janitor at the end of every
    build, failed or not."""

    def __init__(self, store: Store, janitor: Janitor | None = None) -> None:
        self.store = store
        self.root = store.home / "build" / "cache"
        self.root.mkdir(parents=True, exist_ok=True)
        self.janitor = janitor
        self._pending: dict[str, ImageState] = {}
        self._lock = threading.Lock()

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> ImageState | None:
        with self._lock:
            state = self._pending.get(key)
        if state is None:
            try:
                text = self._path(key).read_text()
            except OSError:
                return None
            try:
                state = ImageState.from_json(text)
            except (ValueError, KeyError):
                return None
        if not all(self.store.blobs.has(lr.blob) for lr in state.layers):
            return None
        return state

    def put(self, key: str, state: ImageState) -> None:
        if self.janitor is None:
            self._write(key, state)
            return
        with self._lock:
            self._pending[key] = state
        self.janitor.submit(lambda: self._write_pending(key, state))

    def _write_pending(self, key: str, state: ImageState) -> None:
        try:
            self._write(key, state)
        finally:
            with self._lock:
                if self._pending.get(key) is state:
                    del self._pending[key]

    def _write(self, key: str, state: ImageState) -> None:
        path = self._path(key)
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_name(f".{key}.{secrets.token_hex(4)}")
        tmp.write_text(state.to_json())
        os.replace(tmp, path)

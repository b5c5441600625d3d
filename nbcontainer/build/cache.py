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
from pathlib import Path
from typing import Any

from ..store import Store
from .state import ImageState


def step_key(parent: str, kind: str, payload: Any) -> str:
    data = json.dumps([parent, kind, payload], sort_keys=True, default=str,
                      separators=(",", ":"))
    return hashlib.sha256(data.encode()).hexdigest()


class CacheIndex:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.root = store.home / "build" / "cache"
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> ImageState | None:
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
        path = self._path(key)
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_name(f".{key}.{secrets.token_hex(4)}")
        tmp.write_text(state.to_json())
        os.replace(tmp, path)

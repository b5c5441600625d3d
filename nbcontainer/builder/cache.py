"""The builder's view of the store's cache index: step key → :class:`ImageState`.

The store keeps entries as opaque JSON plus the blobs they need (see ``store.buildcache``);
this adapter turns them into image states and back.
"""

from __future__ import annotations

from ..store import Store
from ..store.buildcache import CacheIndex, Submit
from .state import ImageState


class BuildCache:
    def __init__(self, store: Store, submit: Submit | None = None) -> None:
        self.index = CacheIndex(store, submit)

    def get(self, key: str) -> ImageState | None:
        entry = self.index.get(key)
        if entry is None:
            return None
        try:
            return ImageState.from_value(entry.value)
        except (ValueError, KeyError, TypeError, AttributeError):
            return None  # a damaged entry is a miss: the step runs again

    def put(self, key: str, state: ImageState) -> None:
        self.index.put(key, state.to_value(), [lr.blob for lr in state.layers])

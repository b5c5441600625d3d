"""Layer entries: the tar members of one layer as small records, read once and cached.

A layer is read with the strict tar reader (a corrupt header is an error, never a short
listing). Entry lists are kept in one process-wide LRU keyed by the layer's blob digest:
blobs are content-addressed, so the same digest lists the same entries in any store, and the
layer views, ``Image.files()`` and diffs all read a layer once.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..layers import open_layer, overlay
from ..layers.tarreader import ReadInto, TarReader
from ..oci.digest import Digest
from ..store import Store

# the names the layer codec writes (bytes there), as the str paths entries carry
WHITEOUT_PREFIX = overlay.WHITEOUT_PREFIX.decode()
OPAQUE = overlay.OPAQUE_MARKER.decode()  # an opaque directory: hides what lower layers hold


@dataclass(frozen=True, slots=True)
class LayerEntry:
    """One tar entry of a layer: ``kind`` is f(ile) d(ir) l(symlink) h(ardlink) c b p.
    ``size`` is the content size of regular files (0 for every other kind)."""

    path: str
    kind: str
    size: int
    mode: int
    uid: int
    gid: int
    mtime: int
    link: str = ""

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def is_dir(self) -> bool:
        return self.kind == "d"

    @property
    def is_whiteout(self) -> bool:
        return self.name.startswith(WHITEOUT_PREFIX)


_KINDS = {b"0": "f", b"\0": "f", b"7": "f", b"1": "h", b"2": "l", b"3": "c", b"4": "b",
          b"5": "d", b"6": "p"}
_REGULAR = (b"0", b"\0", b"7")

EntryReader = Callable[[Digest], Sequence[LayerEntry]]
"""Gives the entries of the layer with a blob digest (see :func:`store_reader`)."""


def read_entries(stream: ReadInto) -> list[LayerEntry]:
    """Every entry of an uncompressed layer tar, whiteouts included (as ``.wh.`` names), with
    normalised paths (no leading ``/`` or ``./``, no trailing ``/``)."""
    out: list[LayerEntry] = []
    add = out.append
    reader = TarReader(stream)
    for e in reader.entries():
        path = os.fsdecode(e.name).lstrip("/").removeprefix("./").rstrip("/")
        if not path or path == ".":
            continue
        add(LayerEntry(path, _KINDS.get(e.type, "f"), e.size if e.type in _REGULAR else 0,
                       e.mode & 0o7777, e.uid, e.gid, e.mtime_ns // 1_000_000_000,
                       os.fsdecode(e.linkname) if e.linkname else ""))
    reader.drain()
    return out


class EntryCache:
    """Entry lists of the last few layers (a 30,000-file layer is a few MB of records)."""

    def __init__(self, size: int = 16) -> None:
        self.size = size
        self._data: OrderedDict[Digest, list[LayerEntry]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Digest) -> list[LayerEntry] | None:
        with self._lock:
            found = self._data.get(key)
            if found is not None:
                self._data.move_to_end(key)
            return found

    def put(self, key: Digest, value: list[LayerEntry]) -> list[LayerEntry]:
        with self._lock:
            self._data[key] = value
            while len(self._data) > self.size:
                self._data.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


ENTRIES = EntryCache()
"""The one cache of entry lists."""


def layer_entries(store: Store, digest: Digest) -> list[LayerEntry]:
    """The entries of the layer blob ``digest`` in ``store``, read once (cached)."""
    cached = ENTRIES.get(digest)
    if cached is None:
        with store.blobs.open(digest) as raw, open_layer(raw) as stream:
            cached = ENTRIES.put(digest, read_entries(stream))
    return cached


def store_reader(store: Store) -> EntryReader:
    """An :data:`EntryReader` over the layer blobs of ``store``."""

    def read(digest: Digest) -> list[LayerEntry]:
        return layer_entries(store, digest)

    return read

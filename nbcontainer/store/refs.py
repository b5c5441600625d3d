"""The store's small database of images and tags (``refs.json``), updated under a file lock.

Tags map a normalized reference to a manifest (or index) digest; ``images`` records every
image the store holds, tagged or not (a build result without ``-t`` is an untagged image,
like Docker's ``<none>``).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import StoreError
from . import locks


@dataclass
class RefData:
    tags: dict[str, str] = field(default_factory=dict)  # reference → digest
    images: dict[str, dict[str, Any]] = field(default_factory=dict)  # digest → record

    def tags_of(self, digest: str) -> list[str]:
        return sorted(t for t, d in self.tags.items() if d == digest)


class RefDB:
    def __init__(self, path: Path):
        self.path = path
        self.lock_path = path.with_suffix(".lock")

    def read(self) -> RefData:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return RefData()
        try:
            d = json.loads(raw)
            return RefData(dict(d.get("tags", {})), dict(d.get("images", {})))
        except (ValueError, AttributeError) as e:
            raise StoreError(
                f"the store's tag database {self.path} is corrupt: {e}",
                hint="run `nbcontainer fsck`; blobs are unaffected and can be re-tagged",
            ) from None

    @contextmanager
    def update(self) -> Iterator[RefData]:
        """Read-modify-write under an exclusive lock; written atomically on success only,
        and only when something changed (a rebuild that tags what it already tagged costs
        no fsync)."""
        with locks.exclusive(self.lock_path):
            data = self.read()
            before = _body(self._doc(data))
            yield data
            after = _body(self._doc(data))
            if after != before:
                write_bytes_atomic(self.path, after)

    @staticmethod
    def _doc(data: RefData) -> dict[str, Any]:
        return {"version": 1, "tags": data.tags, "images": data.images}


def _body(doc: Any) -> bytes:
    return json.dumps(doc, indent=1, sort_keys=True).encode()


def write_json_atomic(path: Path, doc: Any) -> None:
    """``doc`` as ``path``, fsynced then renamed into place: readers see old or new, never
    half (the store's small JSON indexes: refs.json, referrers.json)."""
    write_bytes_atomic(path, _body(doc))


def write_bytes_atomic(path: Path, body: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def now() -> float:
    return time.time()

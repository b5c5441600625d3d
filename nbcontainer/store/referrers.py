"""The store's referrers index (``referrers.json``): subject digest → artifact manifests.

The OCI image spec 1.1 lets a manifest point at another one through ``subject`` (a signature,
an SBOM, a build provenance statement). A registry answers "what refers to X" with the
referrers API; the store answers it from this small file, kept like ``refs.json``: read
freely, rewritten atomically under an exclusive file lock. Artifacts are not images: they are
not listed by ``images`` and live exactly as long as their subject (see ``gc.prune``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import StoreError
from . import locks
from .refs import write_json_atomic


class ReferrersDB:
    """``{"version": 1, "referrers": {subject digest: [descriptor dict, …]}}``."""

    def __init__(self, path: Path):
        self.path = path
        self.lock_path = path.with_suffix(".lock")

    def read(self) -> dict[str, list[dict[str, Any]]]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        try:
            doc = json.loads(raw)
            return {k: list(v) for k, v in dict(doc.get("referrers", {})).items()}
        except (ValueError, AttributeError, TypeError) as e:
            raise StoreError(
                f"the store's referrers index {self.path} is corrupt: {e}",
                hint="delete it; images are unaffected, only their attached artifacts are "
                     "forgotten (pull or build them again)",
            ) from None

    @contextmanager
    def update(self) -> Iterator[dict[str, list[dict[str, Any]]]]:
        """Read-modify-write under an exclusive lock; written atomically on success only."""
        with locks.exclusive(self.lock_path):
            data = self.read()
            yield data
            self._write({k: v for k, v in data.items() if v})

    def _write(self, data: dict[str, list[dict[str, Any]]]) -> None:
        write_json_atomic(self.path, {"version": 1, "referrers": data})

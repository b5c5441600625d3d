"""Where blobs are known to live remotely, so a push can mount instead of uploading.

A pull records ``registry/repository`` for every blob it fetched, a push for every blob it
sent; pushing the same layer to another repository of that registry then asks for a
cross-repository mount (``?mount=&from=``), as skopeo's blob-info cache does. One small
append-only file per blob under the store's home keeps concurrent writers safe without a lock.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..oci.digest import Digest

_MAX_LINES = 32


class BlobLocations:
    def __init__(self, home: Path) -> None:
        self.root = home / "registry" / "blob-locations"

    def _path(self, digest: Digest) -> Path:
        return self.root / f"{digest.algorithm}-{digest.hex}"

    def record(self, digest: Digest, domain: str, repo: str) -> None:
        if f"{domain}/{repo}" in self.locations(digest):
            return
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            # O_APPEND writes of one short line are atomic: no lock needed.
            fd = os.open(self._path(digest), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                os.write(fd, f"{domain}/{repo}\n".encode())
            finally:
                os.close(fd)
        except OSError:
            pass  # only an optimisation: never fail a transfer over it

    def locations(self, digest: Digest) -> list[str]:
        try:
            lines = self._path(digest).read_text().splitlines()
        except OSError:
            return []
        return list(dict.fromkeys(x for x in lines[-_MAX_LINES:] if x))

    def mount_sources(self, digest: Digest, domain: str, repo: str) -> list[str]:
        """Other repositories of ``domain`` that hold ``digest``, most recent first."""
        out = []
        for loc in reversed(self.locations(digest)):
            d, _, r = loc.partition("/")
            if d == domain and r and r != repo:
                out.append(r)
        return out

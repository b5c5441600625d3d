"""Content-addressed blobs: verified while written, renamed into place atomically.

A blob is visible under ``blobs/<alg>/<hex>`` only once its bytes are complete, fsynced and
proven to hash to its name; writers stream into ``tmp/`` first. A process killed mid-write
leaves at most a temp file, which ``prune`` removes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, BinaryIO

from ..errors import DigestMismatch, StoreError
from ..oci.digest import Digest

_CHUNK = 1 << 20


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlobWriter:
    """A writable temp file that hashes what passes through it; ``commit`` publishes it."""

    def __init__(self, store: BlobStore, expected: Digest | None, expected_size: int | None):
        self._store = store
        self.expected = expected
        self.expected_size = expected_size
        algorithm = expected.algorithm if expected else "sha256"
        self._hash = hashlib.new(algorithm)
        fd, name = tempfile.mkstemp(dir=store.tmp_dir, prefix=f"ingest-{os.getpid()}-")
        self.tmp_path = Path(name)
        self._file: BinaryIO = os.fdopen(fd, "wb")
        self.size = 0
        self.digest: Digest | None = None
        self._done = False

    def write(self, data: bytes | memoryview) -> int:
        self._file.write(data)
        self._hash.update(data)
        n = len(data)
        self.size += n
        return n

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        self._file.flush()

    def copy_from(self, src: IO[bytes]) -> None:
        while chunk := src.read(_CHUNK):
            self.write(chunk)

    def commit(self, expected: Digest | None = None) -> Digest:
        """Verify and publish; raises DigestMismatch (and discards the bytes) on a mismatch."""
        expected = expected or self.expected
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        actual = Digest(self._hash.name, self._hash.hexdigest())
        try:
            if expected is not None and actual != expected:
                raise DigestMismatch(
                    f"content does not match its digest: expected {expected}, got {actual}",
                    hint="the source is corrupt or was modified in transit; nothing was stored",
                )
            if self.expected_size is not None and self.size != self.expected_size:
                raise DigestMismatch(
                    f"content of {actual} has {self.size} bytes, expected {self.expected_size}"
                )
            self._store.publish(self.tmp_path, actual)
        finally:
            self._done = True
            self.tmp_path.unlink(missing_ok=True)
        self.digest = actual
        return actual

    def abort(self) -> None:
        if not self._done:
            self._file.close()
            self.tmp_path.unlink(missing_ok=True)
            self._done = True

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.abort()


class BlobStore:
    def __init__(self, root: Path):
        self.root = root
        self.tmp_dir = root.parent / "tmp"
        for d in (root, self.tmp_dir):
            d.mkdir(parents=True, exist_ok=True)

    def path(self, digest: Digest) -> Path:
        return self.root / digest.algorithm / digest.hex

    def has(self, digest: Digest) -> bool:
        return self.path(digest).is_file()

    def size(self, digest: Digest) -> int:
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError:
            raise self._missing(digest) from None

    def open(self, digest: Digest) -> BinaryIO:
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError:
            raise self._missing(digest) from None

    def read(self, digest: Digest) -> bytes:
        with self.open(digest) as f:
            return f.read()

    def writer(self, expected: Digest | None = None, size: int | None = None) -> BlobWriter:
        return BlobWriter(self, expected, size)

    def put(self, data: bytes, expected: Digest | None = None) -> Digest:
        digest = Digest.of(data, expected.algorithm if expected else "sha256")
        if expected is not None and digest != expected:
            raise DigestMismatch(f"content does not match its digest: expected {expected}, got {digest}")
        if self.has(digest):
            return digest
        with self.writer(digest, len(data)) as w:
            w.write(data)
            return w.commit()

    def put_file(self, src: BinaryIO, expected: Digest | None = None, size: int | None = None) -> Digest:
        if expected is not None and self.has(expected):
            return expected
        with self.writer(expected, size) as w:
            w.copy_from(src)
            return w.commit()

    def publish(self, tmp_path: Path, digest: Digest) -> None:
        """Atomically move a verified temp file to its content address."""
        final = self.path(digest)
        final.parent.mkdir(exist_ok=True)
        if final.exists():
            return  # same content already there; content addressing makes this a no-op
        os.chmod(tmp_path, 0o444)
        os.replace(tmp_path, final)
        _fsync_dir(final.parent)

    def delete(self, digest: Digest) -> None:
        self.path(digest).unlink(missing_ok=True)

    def quarantine(self, digest: Digest, dest_dir: Path) -> Path:
        dest_dir.mkdir(parents=True, exist_ok=True)
        dest = dest_dir / f"{digest.algorithm}-{digest.hex}"
        shutil.move(str(self.path(digest)), dest)
        return dest

    def __iter__(self) -> Iterator[Digest]:
        if not self.root.is_dir():
            return
        for alg_dir in sorted(self.root.iterdir()):
            if not alg_dir.is_dir():
                continue
            for p in sorted(alg_dir.iterdir()):
                try:
                    yield Digest.parse(f"{alg_dir.name}:{p.name}")
                except Exception:  # a stray file is fsck's business, not iteration's
                    continue

    def hash_file(self, digest: Digest) -> Digest:
        h = hashlib.new(digest.algorithm)
        with self.open(digest) as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
        return Digest(digest.algorithm, h.hexdigest())

    @staticmethod
    def _missing(digest: Digest) -> StoreError:
        return StoreError(
            f"blob {digest} is not in the store",
            hint="pull or load the image again; `nbcontainer fsck` checks the store",
        )

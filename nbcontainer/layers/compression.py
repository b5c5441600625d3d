"""Layer compression: deterministic parallel gzip (isal), zstd, none; and auto-detecting readers.

The gzip writer works like pigz: the tar stream is cut into fixed 1 MiB blocks, each block
is deflated on its own thread with the previous block's last 32 KiB as dictionary and ends
with a sync flush, and the pieces are concatenated into one gzip member.  The output depends
only on the input and the block size, never on thread timing, so it is reproducible.
"""

from __future__ import annotations

import enum
import hashlib
import io
import os
import struct
import threading
from typing import Any, BinaryIO

import zstandard
from isal import igzip, isal_zlib

from ..errors import LayerError
from ..oci import mediatypes

# Part of the output format: changing any of these changes every gzip layer digest.
GZIP_BLOCK_SIZE = 1 << 20
# isal level 1: 4-5x faster than zlib level 1 at a similar ratio; levels 0 and 2 are no
# faster on real trees (0 even grows random data by 20%); see benchmarks/layers.py.
GZIP_LEVEL = 1
ZSTD_LEVEL = 3  # zstd's and BuildKit's default
GZIP_WINDOW = 32 * 1024  # deflate's window: the dictionary each block is primed with
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class Compression(enum.Enum):
    GZIP = "gzip"
    ZSTD = "zstd"
    NONE = "none"

    @property
    def media_type(self) -> str:
        return {
            Compression.GZIP: mediatypes.OCI_LAYER_GZIP,
            Compression.ZSTD: mediatypes.OCI_LAYER_ZSTD,
            Compression.NONE: mediatypes.OCI_LAYER,
        }[self]

    @classmethod
    def from_media_type(cls, media_type: str) -> Compression:
        kind = mediatypes.layer_compression(media_type)
        return {"gzip": cls.GZIP, "zstd": cls.ZSTD}.get(kind, cls.NONE)


def default_threads() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


_local = threading.local()
# python-isal's pigz helper (what its own igzip_threaded uses): deflate with a dictionary,
# sync flush and crc32 in one call without the GIL.  Private, so looked up defensively.
_PARALLEL = getattr(isal_zlib, "_ParallelCompress", None)


def deflate_block(block: memoryview, zdict: bytes, level: int) -> tuple[bytes, int]:
    """Raw deflate of one block primed with ``zdict``, ending in a sync flush; plus its crc32.

    Thread-safe (one isal compressor per thread) and GIL-free while it works.
    """
    if _PARALLEL is None:  # pragma: no cover - python-isal without its pigz helper
        # Valid gzip, but not byte-identical to _ParallelCompress output.
        cobj = isal_zlib.compressobj(level, isal_zlib.DEFLATED, -15, 8, 0, zdict or None)
        data = cobj.compress(block) + cobj.flush(isal_zlib.Z_SYNC_FLUSH)
        return data, isal_zlib.crc32(block)
    comps = _local.__dict__.setdefault("compressors", {})
    comp = comps.get(level)
    if comp is None:
        # Output room: level 0 never falls back to stored blocks and deflate spends at most
        # 15 bits per byte, so twice the input plus headers always fits (isal's own bound).
        comp = comps[level] = _PARALLEL(2 * GZIP_BLOCK_SIZE + 500, level)
    out: tuple[bytes, int] = comp.compress_and_crc(block, zdict)
    return out


# Fixed header: no name, mtime 0, OS "unknown" (like Go and isal's threaded writer).
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"


def gzip_tail(crc: int, isize: int) -> bytes:
    """The final empty deflate block (BFINAL) and the gzip trailer."""
    return isal_zlib.compress(b"", wbits=-15) + struct.pack("<II", crc, isize & 0xFFFFFFFF)


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    return isal_zlib.crc32_combine(crc1, crc2, len2)


def zstd_compressor(level: int, threads: int) -> zstandard.ZstdCompressionObj:
    """Multi-threaded zstd output does not depend on the number of workers (as long as
    there is at least one), so it is reproducible on any machine."""
    cctx = zstandard.ZstdCompressor(
        level=level, threads=max(1, threads), write_checksum=True, write_content_size=False
    )
    return cctx.compressobj()


# --------------------------------------------------------------------------- reading


class _HashingReader(io.RawIOBase):
    """Counts and hashes the raw (compressed) bytes as they are consumed."""

    def __init__(self, raw: BinaryIO, head: bytes) -> None:
        self._raw = raw
        self._head = head
        self.hasher = hashlib.sha256(head)
        self.size = len(head)

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        mv = memoryview(b).cast("B")
        if self._head:
            n = min(len(mv), len(self._head))
            mv[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._raw.read(len(mv))
        if not data:
            return 0
        n = len(data)
        mv[:n] = data
        self.hasher.update(data)
        self.size += n
        return n


def _read_head(raw: BinaryIO, n: int) -> bytes:
    head = b""
    while len(head) < n:
        chunk = raw.read(n - len(head))
        if not chunk:
            break
        head += chunk
    return head


class LayerStream(io.RawIOBase):
    """A readable, uncompressed tar stream over a gzip/zstd/plain layer blob.

    Decompression errors become :class:`LayerError`; the uncompressed bytes are hashed as
    they are read (``diff_id``) and the compressed ones too (``digest``) once fully read.
    """

    def __init__(self, raw: BinaryIO, *, close_raw: bool = False) -> None:
        self._close_raw = close_raw
        self._raw_file = raw
        head = _read_head(raw, 4)
        self._src = _HashingReader(raw, head)
        self._diff = hashlib.sha256()
        self.uncompressed_size = 0
        self._eof = False
        if head.startswith(_GZIP_MAGIC):
            self.compression = Compression.GZIP
            self._gz = igzip.IGzipFile(fileobj=self._src, mode="rb")  # type: ignore[no-untyped-call]
            self._read = self._read_gzip
        elif head == _ZSTD_MAGIC:
            self.compression = Compression.ZSTD
            self._zd = zstandard.ZstdDecompressor()
            self._zobj = self._zd.decompressobj()
            self._zpending = b""
            self._zframe_started = False
            self._read = self._read_zstd
        else:
            self.compression = Compression.NONE
            self._read = self._read_plain

    # -- decoders: each fills ``mv`` and returns the count (0 at the end)
    def _read_plain(self, mv: memoryview) -> int:
        return self._src.readinto(mv)

    def _read_gzip(self, mv: memoryview) -> int:
        try:
            return self._gz.readinto(mv)
        except EOFError:
            raise LayerError(
                "truncated gzip layer: the stream ends before the gzip end marker "
                "(or is followed by garbage)"
            ) from None
        except (OSError, isal_zlib.error) as e:  # type: ignore[misc]  # (isal's error is untyped)
            raise LayerError(f"corrupt gzip layer: {e}") from e

    def _read_zstd(self, mv: memoryview) -> int:
        # Small input steps bound the output of a single call (decompression bombs).
        while not self._zpending:
            if self._zobj.eof:
                rest = self._zobj.unused_data
                self._zobj = self._zd.decompressobj()
                self._zframe_started = False
                if rest:
                    if not (rest.startswith(_ZSTD_MAGIC) or 0x50 <= rest[0] <= 0x5F):
                        raise LayerError("corrupt zstd layer: garbage after the last frame")
                    self._feed_zstd(rest)
                    continue
            chunk = self._src.read(16384)
            if not chunk:
                if self._zframe_started and not self._zobj.eof:
                    raise LayerError("truncated zstd layer: the stream ends inside a frame")
                return 0
            if not self._zframe_started and not (
                chunk.startswith(_ZSTD_MAGIC) or len(chunk) >= 4 and 0x50 <= chunk[0] <= 0x5F
            ):
                raise LayerError("corrupt zstd layer: garbage after the last frame")
            self._feed_zstd(chunk)
        n = min(len(mv), len(self._zpending))
        mv[:n] = self._zpending[:n]
        self._zpending = self._zpending[n:]
        return n

    def _feed_zstd(self, data: bytes) -> None:
        self._zframe_started = True
        try:
            self._zpending = self._zobj.decompress(data)
        except zstandard.ZstdError as e:
            raise LayerError(f"corrupt zstd layer: {e}") from e

    # -- io.RawIOBase
    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self._eof:
            return 0
        mv = memoryview(b).cast("B")
        if not len(mv):
            return 0
        n = self._read(mv)
        if n == 0:
            self._eof = True
            return 0
        self._diff.update(mv[:n])
        self.uncompressed_size += n
        return n

    def drain(self) -> None:
        """Read to the end (verifies trailers, completes the hashes)."""
        buf = bytearray(1 << 18)
        while self.readinto(buf):
            pass

    @property
    def diff_id_hex(self) -> str:
        return self._diff.hexdigest()

    @property
    def digest_hex(self) -> str:
        return self._src.hasher.hexdigest()

    @property
    def compressed_size(self) -> int:
        return self._src.size

    def close(self) -> None:
        if not self.closed and self._close_raw:
            self._raw_file.close()
        super().close()


def open_layer(src: str | os.PathLike[str] | BinaryIO) -> LayerStream:
    """Open a layer blob (path or binary file object) as an uncompressed tar stream.

    The format is detected from magic bytes: gzip (1f 8b), zstd (28 b5 2f fd), else plain tar.
    """
    if isinstance(src, str | os.PathLike):
        try:
            f: BinaryIO = open(src, "rb")  # noqa: SIM115 - closed by LayerStream
        except OSError as e:
            raise LayerError(f"cannot open layer {os.fspath(src)!r}: {e.strerror}") from e
        return LayerStream(f, close_raw=True)
    return LayerStream(src)

"""A strict streaming tar reader for layers (ustar, PAX, GNU long names).

Our own rather than :mod:`tarfile`: tarfile quietly ends the archive at a corrupt header
(half a layer applied, no error), truncates names at NUL bytes, and its stream buffer
copies its whole remainder on every read.  Here every malformed header is an error, NUL
bytes in PAX names are reported, and file data is copied straight to a file descriptor.
"""

from __future__ import annotations

import base64
import os
import struct
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol
from zlib import adler32

from ..errors import LayerError, UnsafeLayerError

BLOCKSIZE = 512
_MAX_META = 16 << 20  # PAX / GNU long-name payloads bigger than this are hostile
_BUF = 1 << 18

REGULAR = b"0"
HARDLINK = b"1"
SYMLINK = b"2"
CHARDEV = b"3"
BLOCKDEV = b"4"
DIRECTORY = b"5"
FIFO = b"6"
_REGULAR_ALIASES = (b"0", b"\0", b"7")  # '7' contiguous file: a regular file everywhere
_META_TYPES = (b"x", b"g", b"L", b"K")
# The types the fast path of TarReader._header takes; anything else goes the careful way.
_FAST_TYPES = {b"0": REGULAR, b"\0": REGULAR, b"7": REGULAR, b"1": HARDLINK, b"2": SYMLINK,
               b"3": CHARDEV, b"4": BLOCKDEV, b"5": DIRECTORY, b"6": FIFO}
# name, mode+uid+gid, size, mtime, chksum, typeflag, linkname, magic+version, (uname, gname
# unused), devmajor+devminor, prefix: one unpack per header.
_USTAR = struct.Struct("100s24s12s12s8sc100s8s64x16s155s")
_NUL_SPACE = b"\0 "
# Parsed (mode, uid, gid) and (devmajor, devminor) field bytes: a layer repeats a few values.
_IDS: dict[bytes, tuple[int, int, int]] = {}
_DEVS: dict[bytes, tuple[int, int]] = {}
_MEMO_MAX = 4096


@dataclass(slots=True)
class TarEntry:
    name: bytes  # as in the archive (after PAX/GNU overrides), not yet normalized
    type: bytes  # one of REGULAR, HARDLINK, SYMLINK, CHARDEV, BLOCKDEV, DIRECTORY, FIFO
    mode: int
    uid: int
    gid: int
    size: int
    mtime_ns: int
    linkname: bytes = b""
    devmajor: int = 0
    devminor: int = 0
    xattrs: dict[str, bytes] = field(default_factory=dict)
    offset: int = 0  # of the header in the uncompressed stream

    @property
    def display(self) -> str:
        return os.fsdecode(self.name)


def _corrupt(msg: str, entry: str | None, offset: int) -> UnsafeLayerError:
    where = (
        f"layer entry {entry!r} (tar header at offset {offset})"
        if entry
        else (f"tar header at offset {offset}")
    )
    return UnsafeLayerError(f"corrupt layer: {where}: {msg}", entry=entry)


def _number(field_: bytes, what: str, entry: str, offset: int) -> int:
    if field_ and field_[0] & 0x80:  # GNU base-256
        value = int.from_bytes(field_[1:], "big")
        if field_[0] == 0xFF:
            value -= 1 << (8 * (len(field_) - 1))
        elif field_[0] != 0x80:
            raise _corrupt(f"bad base-256 {what} field", entry, offset)
        return value
    text = field_.split(b"\0", 1)[0].strip(b" ")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise _corrupt(f"bad {what} field {text!r}", entry, offset) from None


def _parse_pax(data: bytes, entry: str, offset: int) -> dict[bytes, bytes]:
    records: dict[bytes, bytes] = {}
    pos = 0
    while pos < len(data):
        if data[pos:].strip(b"\0") == b"":
            break  # padding some writers leave
        sp = data.find(b" ", pos, pos + 20)
        try:
            length = int(data[pos:sp]) if sp > pos else -1
        except ValueError:
            length = -1
        if length <= 0 or pos + length > len(data) or data[pos + length - 1] != 0x0A:
            raise _corrupt("malformed PAX record", entry, offset)
        key, eq, value = data[sp + 1 : pos + length - 1].partition(b"=")
        if not eq or not key:
            raise _corrupt("malformed PAX record", entry, offset)
        records[key] = value
        pos += length
    return records


def _pax_time_ns(text: bytes, entry: str, offset: int) -> int:
    try:
        sign = -1 if text.startswith(b"-") else 1
        whole, _, frac = text.lstrip(b"-").partition(b".")
        ns = int(whole or b"0") * 1_000_000_000 + int((frac[:9] or b"0").ljust(9, b"0"))
        return sign * ns
    except ValueError:
        raise _corrupt(f"bad PAX mtime {text!r}", entry, offset) from None


_MAX_ID = (1 << 32) - 2  # (uid_t)-1 means "leave unchanged" to chown
_TIME_NS = 1 << 63  # Go's archive/tar refuses times whose seconds overflow int64


def _check_ranges(entry: TarEntry, shown: str, offset: int) -> None:
    """Base-256 fields and PAX records can hold any number: refuse what no file system can
    store (as Go's archive/tar does), instead of failing later in chown or utime."""
    if not (0 <= entry.uid <= _MAX_ID and 0 <= entry.gid <= _MAX_ID):
        raise _corrupt(f"uid/gid {entry.uid}/{entry.gid} out of range", shown, offset)
    if not -_TIME_NS < entry.mtime_ns // 1_000_000_000 < _TIME_NS:
        raise _corrupt("mtime out of range", shown, offset)


def _octal(field_: bytes) -> int:
    """A plain octal field (ValueError otherwise; see :func:`_fast_header`)."""
    return int(field_.rstrip(_NUL_SPACE) or b"0", 8)


def _ids(fields: bytes) -> tuple[int, int, int]:
    """(mode, uid, gid) from the 24 bytes of those fields, remembered in ``_IDS`` (the caller
    looks there first: a layer repeats a few)."""
    ids = (_octal(fields[:8]) & 0o7777, _octal(fields[8:16]), _octal(fields[16:]))
    if len(_IDS) >= _MEMO_MAX:
        _IDS.clear()
    _IDS[fields] = ids
    return ids


def _devs(fields: bytes) -> tuple[int, int]:
    """(devmajor, devminor) from the 16 bytes of those fields, remembered like :func:`_ids`."""
    devs = (_octal(fields[:8]), _octal(fields[8:]))
    if len(_DEVS) >= _MEMO_MAX:
        _DEVS.clear()
    _DEVS[fields] = devs
    return devs


def _fast_header(block: bytes, offset: int) -> TarEntry | None:
    """The header of a plain entry (no PAX or GNU long name before it) when it is the common,
    well-formed kind: checksum right (unsigned), every number plain octal, a supported type,
    size not negative. None otherwise, and :meth:`TarReader._header` then parses it the
    careful way (the same result for a good header; the exact error for a bad one).

    A number is taken here only when ``int(field.rstrip(b"\\0 "), 8)`` parses it: then the
    field is its text followed by NULs and spaces, so the careful parse (text up to the first
    NUL, spaces stripped) reads the same value. Base-256 fields, interior NULs and garbage all
    fail that parse and go the careful way."""
    name, ids, size, mtime, chksum, typeflag, linkname, magic, devs, prefix = \
        _USTAR.unpack_from(block)
    kind = _FAST_TYPES.get(typeflag)
    if kind is None:
        return None
    try:
        # The unsigned checksum, sum(block) - sum(chksum) + 256, with the byte sum done in C:
        # adler32's low half is 1 + the byte sum modulo 65521, exact when the sum is below
        # that: an ASCII block sums to at most 512 * 127, a 256-byte half to 256 * 255.
        if block.isascii():
            unsigned = (adler32(block) & 0xFFFF) + 255
        else:
            unsigned = (adler32(block[:256]) & 0xFFFF) + (adler32(block[256:]) & 0xFFFF) + 254
        if int(chksum.rstrip(_NUL_SPACE) or b"0", 8) != unsigned - sum(chksum):
            return None
        size_ = int(size.rstrip(_NUL_SPACE) or b"0", 8)
        if size_ < 0:
            return None
        mode_, uid, gid = _IDS.get(ids) or _ids(ids)
        devmajor, devminor = _DEVS.get(devs) or _devs(devs)
        entry = TarEntry(
            name.split(b"\0", 1)[0],
            kind,
            mode_,
            uid,
            gid,
            size_,
            int(mtime.rstrip(_NUL_SPACE) or b"0", 8) * 1_000_000_000,
            linkname.split(b"\0", 1)[0] if linkname[0] else b"",
            devmajor,
            devminor,
            offset=offset,
        )
    except ValueError:
        return None
    if prefix[0] and magic[:6] == b"ustar\0":  # POSIX ustar: prefix field
        prefix = prefix.split(b"\0", 1)[0]
        entry.name = prefix + b"/" + entry.name
    if kind is REGULAR and entry.name.endswith(b"/"):
        entry.type = DIRECTORY  # pre-POSIX archives mark directories with a slash
    return entry



class ReadInto(Protocol):
    """What the reader needs of a stream: ``readinto`` (files, layer streams, sockets)."""

    def readinto(self, buffer: memoryview, /) -> int | None: ...

class TarReader:
    """Iterate entries with :meth:`entries`; read the current one's data with
    :meth:`copy_to` (or let the iterator skip it)."""

    def __init__(self, stream: ReadInto) -> None:
        self._stream = stream
        self._buf = bytearray(_BUF)
        self._view = memoryview(self._buf)
        self._start = 0
        self._end = 0
        self.offset = 0  # bytes consumed from the stream
        self._remaining = 0  # data bytes of the current entry not yet consumed
        self._padding = 0
        # The entry being read, or the last one while reading a header (decoded on demand:
        # only error messages show it).
        self._current_name = b""
        self._in_header = False
        self._draining = False
        self.ended_cleanly = False  # saw the end-of-archive zero block

    @property
    def _current(self) -> str:
        return os.fsdecode(self._current_name)

    # -- buffer
    def _fill(self) -> int:
        if self._start == self._end:
            self._start = self._end = 0
        elif self._end == len(self._buf):
            n = self._end - self._start
            self._buf[:n] = self._buf[self._start : self._end]
            self._start, self._end = 0, n
        try:
            got = self._stream.readinto(self._view[self._end :]) or 0
        except UnsafeLayerError:
            raise
        except LayerError as e:  # decompression failure: say where in the archive
            raise UnsafeLayerError(
                f"{e.message} ({self._where()})", entry=self._current or None, hint=e.hint
            ) from e  # keeps the decoder's own error (its cause) for --debug
        self._end += got
        return got

    def _read_exact(self, n: int) -> bytes | None:
        """Exactly n bytes; None at a clean end of stream; error if it ends part way."""
        if n > _BUF // 2:
            chunks, need = [], n
            while need:
                k = min(need, _BUF // 2)
                part = self._read_exact(k)
                if part is None:
                    raise self._truncated()
                chunks.append(part)
                need -= k
            return b"".join(chunks)
        while self._end - self._start < n:
            if self._end == len(self._buf) and self._start == 0:
                raise AssertionError("tar reader buffer too small")
            if not self._fill():
                if self._end == self._start:
                    return None
                raise self._truncated()
        data = bytes(self._view[self._start : self._start + n])
        self._start += n
        self.offset += n
        return data

    def _where(self) -> str:
        entry = self._current
        if self._draining:
            return f"detected at the end of the layer, after layer entry {entry!r}"
        if self._in_header:
            after = f", after layer entry {entry!r}" if entry else ""
            return f"in the tar header at offset {self.offset}{after}"
        return f"in the data of layer entry {entry!r}"

    def _truncated(self) -> UnsafeLayerError:
        return UnsafeLayerError(
            f"truncated layer: the archive ends {self._where()}",
            entry=self._current or None,
            hint="the blob is incomplete; pull or build it again",
        )

    def drain(self) -> None:
        """Read what follows the end of the archive: trailers and checksums of the
        compression are verified only there."""
        self._draining = True
        self._start = self._end = 0
        while self._fill():
            self._start = self._end = 0

    # -- data of the current entry
    def copy_to(self, fd: int) -> int:
        """Write the current entry's data to fd; returns the byte count."""
        total = 0
        while self._remaining:
            if self._start == self._end and not self._fill():
                raise self._truncated()
            k = min(self._remaining, self._end - self._start)
            chunk = self._view[self._start : self._start + k]
            while chunk:
                written = os.write(fd, chunk)
                chunk = chunk[written:]
            self._start += k
            self.offset += k
            self._remaining -= k
            total += k
        self._skip_padding()
        return total

    def buffered_data(self) -> memoryview | None:
        """The current entry's whole data if the buffer already holds it (and its padding),
        consumed; else None (then :meth:`data` reads it). The fast path for small files."""
        n, pad = self._remaining, self._padding
        start = self._start
        if self._end - start < n + pad:
            return None
        self._start = start + n + pad
        self.offset += n + pad
        self._remaining = self._padding = 0
        return self._view[start : start + n]

    def data(self) -> Iterator[memoryview]:
        """The current entry's data in pieces (each valid until the next one is asked for):
        what a caller hashes without copying it."""
        while self._remaining:
            if self._start == self._end and not self._fill():
                raise self._truncated()
            k = min(self._remaining, self._end - self._start)
            piece = self._view[self._start : self._start + k]
            self._start += k
            self.offset += k
            self._remaining -= k
            yield piece
        self._skip_padding()

    def skip(self) -> None:
        self._skip(self._remaining)
        self._remaining = 0
        self._skip_padding()

    def _skip(self, n: int) -> None:
        while n:
            if self._start == self._end and not self._fill():
                raise self._truncated()
            k = min(n, self._end - self._start)
            self._start += k
            self.offset += k
            n -= k

    def _skip_padding(self) -> None:
        if self._padding:
            self._skip(self._padding)
            self._padding = 0

    # -- headers
    # The header loop with the buffered fast path inlined: it runs once per entry of every
    # layer read, and each call it saves is measurable on a 30,000-file layer.
    def entries(self) -> Iterator[TarEntry]:  # noqa: C901
        pax: dict[bytes, bytes] = {}
        long_name: bytes | None = None
        long_link: bytes | None = None
        view = self._view
        while True:
            if self._remaining or self._padding:
                n = self._remaining + self._padding
                if self._end - self._start >= n:  # data and padding already buffered
                    self._start += n
                    self.offset += n
                    self._remaining = self._padding = 0
                else:
                    self.skip()
            offset = self.offset
            self._in_header = True
            start = self._start
            if self._end - start >= BLOCKSIZE:  # the usual case: the header is buffered
                block = bytes(view[start : start + BLOCKSIZE])
                self._start = start + BLOCKSIZE
                self.offset = offset + BLOCKSIZE
            else:
                read = self._read_exact(BLOCKSIZE)
                if read is None:
                    return  # end of stream without end-of-archive blocks: tolerated, as Go/docker
                block = read
            entry = None
            if not (pax or long_name is not None or long_link is not None):
                entry = _fast_header(block, offset)
            if entry is None:
                if not any(block):
                    self.ended_cleanly = True
                    return
                entry = self._header(block, offset, pax, long_name, long_link)
            kind = entry.type
            if kind in _META_TYPES:
                if entry.size > _MAX_META:
                    raise _corrupt("oversized extended header", entry.display, offset)
                payload = self._read_exact(entry.size)
                if payload is None:
                    raise self._truncated()
                self._skip(-entry.size % BLOCKSIZE)
                if kind == b"x":
                    pax.update(_parse_pax(payload, entry.display, offset))
                elif kind == b"g":
                    _parse_pax(
                        payload, entry.display, offset
                    )  # validated, then ignored (as docker)
                elif kind == b"L":
                    long_name = payload.split(b"\0", 1)[0]
                else:
                    long_link = payload.split(b"\0", 1)[0]
                continue
            if pax or long_name is not None or long_link is not None:
                pax, long_name, long_link = {}, None, None
            self._current_name = entry.name
            self._in_header = False
            # Only regular files carry data; the size of header-only types is ignored (as Go
            # and tarfile do).
            data = entry.size if kind == REGULAR else 0
            self._remaining = data
            self._padding = -data % BLOCKSIZE
            yield entry

    def _header(
        self,
        block: bytes,
        offset: int,
        pax: dict[bytes, bytes],
        long_name: bytes | None,
        long_link: bytes | None,
    ) -> TarEntry:
        raw_name = block[0:100].split(b"\0", 1)[0]
        shown = os.fsdecode(raw_name) or self._current or None
        stored = _number(block[148:156], "checksum", shown or "", offset)
        unsigned = sum(block[:148]) + 256 + sum(block[156:])
        if stored != unsigned:  # some old writers summed signed chars
            signed = unsigned - 256 * sum(1 for b in block[:148] + block[156:] if b > 127)
            if stored != signed:
                raise _corrupt("header checksum mismatch", shown, offset)
        magic = block[257:265]
        name = raw_name
        if magic[:6] == b"ustar\0":  # POSIX ustar: prefix field
            prefix = block[345:500].split(b"\0", 1)[0]
            if prefix:
                name = prefix + b"/" + name
        typeflag = block[156:157]
        entry = TarEntry(
            name=name,
            type=REGULAR if typeflag in _REGULAR_ALIASES else typeflag,
            mode=_number(block[100:108], "mode", shown or "", offset) & 0o7777,
            uid=_number(block[108:116], "uid", shown or "", offset),
            gid=_number(block[116:124], "gid", shown or "", offset),
            size=_number(block[124:136], "size", shown or "", offset),
            mtime_ns=_number(block[136:148], "mtime", shown or "", offset) * 1_000_000_000,
            linkname=block[157:257].split(b"\0", 1)[0],
            devmajor=_number(block[329:337], "devmajor", shown or "", offset),
            devminor=_number(block[337:345], "devminor", shown or "", offset),
            offset=offset,
        )
        if typeflag in (b"x", b"g", b"L", b"K"):
            if entry.size < 0:
                raise _corrupt("negative size", shown, offset)
            return entry
        if long_name is not None:
            entry.name = long_name
        if long_link is not None:
            entry.linkname = long_link
        if pax:
            self._apply_pax(entry, pax)
        shown_name = entry.display
        if entry.size < 0:
            raise _corrupt("negative size", shown_name, offset)
        _check_ranges(entry, shown_name, offset)
        if typeflag in _REGULAR_ALIASES and entry.name.endswith(b"/"):
            entry.type = DIRECTORY  # pre-POSIX archives mark directories with a slash
        if entry.type not in (REGULAR, HARDLINK, SYMLINK, CHARDEV, BLOCKDEV, DIRECTORY, FIFO):
            what = "GNU sparse files" if entry.type == b"S" else f"type {entry.type!r}"
            raise LayerError(
                f"layer entry {shown_name!r}: unsupported tar entry ({what})",
                hint="layers hold regular files, dirs, links, devices and fifos only",
            )
        return entry

    @staticmethod
    def _apply_pax(entry: TarEntry, pax: dict[bytes, bytes]) -> None:
        shown = entry.display
        for key, value in pax.items():
            if key == b"path":
                if value:
                    entry.name = value
            elif key == b"linkpath":
                if value:
                    entry.linkname = value
            elif key in (b"size", b"uid", b"gid"):
                if value:
                    try:
                        setattr(entry, key.decode(), int(value))
                    except ValueError:
                        raise _corrupt(f"bad PAX {key.decode()}", shown, entry.offset) from None
            elif key == b"mtime":
                if value:
                    entry.mtime_ns = _pax_time_ns(value, shown, entry.offset)
            elif key.startswith(b"SCHILY.xattr."):
                entry.xattrs[key[13:].decode("utf-8", "surrogateescape")] = value
            elif key.startswith(b"LIBARCHIVE.xattr."):
                xname = urllib.parse.unquote_to_bytes(key[17:]).decode("utf-8", "surrogateescape")
                try:
                    entry.xattrs[xname] = base64.b64decode(value + b"=" * (-len(value) % 4))
                except ValueError:
                    raise _corrupt("bad LIBARCHIVE.xattr value", shown, entry.offset) from None
            elif key.startswith(b"GNU.sparse."):
                raise LayerError(
                    f"layer entry {entry.display!r}: unsupported tar entry (GNU sparse file)"
                )
            # atime, ctime, uname, gname, comment, charset, SCHILY.acl.*, ...: not kept

"""Deterministic tar stream of a directory tree.

Conventions (those of BuildKit/containerd, i.e. Go's archive/tar in PAX mode):
- depth-first walk, siblings in byte order of their names, a directory right before its
  contents; overlay whiteouts and the opaque marker before their siblings;
- ustar headers, with a PAX extended header (``dir/PaxHeaders.0/name``) only when needed:
  names or link targets over 100 bytes or not ASCII, ids/sizes/times out of octal range,
  xattrs as ``SCHILY.xattr.<name>``; no atime/ctime, no uname/gname;
- directories are ``name/``, no entry for the root itself, mtimes in whole seconds, clamped
  to ``source_date_epoch`` when given; sockets are skipped (tar cannot hold them);
- the second and later names of an inode become hardlink entries;
- the archive ends with two zero blocks and no record padding.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Protocol

from ..errors import LayerError
from . import overlay
from .idmap import IdMap

BLOCKSIZE = 512
_FS_ENCODING = sys.getfilesystemencoding()


def _fsencode(name: str) -> bytes:
    return name.encode(_FS_ENCODING, "surrogateescape")


_ZEROS = bytes(1024)
_first = itemgetter(0)
_O_NOATIME = getattr(os, "O_NOATIME", 0)
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC

REGTYPE, LNKTYPE, SYMTYPE, CHRTYPE, BLKTYPE, DIRTYPE, FIFOTYPE = (
    b"0",
    b"1",
    b"2",
    b"3",
    b"4",
    b"5",
    b"6",
)
XHDTYPE = b"x"


def _pax_record(key: bytes, value: bytes) -> bytes:
    body = b" " + key + b"=" + value + b"\n"
    n = len(body) + 1
    while len(str(n)) + len(body) != n:
        n = len(str(n)) + len(body)
    return str(n).encode() + body


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


_MAX7 = 8**7  # largest value + 1 of an 8-byte octal field
_MAX11 = 8**11  # of a 12-byte one
_MID = b"ustar\x0000" + bytes(64)  # magic, version, empty uname and gname
_PAD = bytes(167)  # prefix (unused: long names go to PAX) and padding
_TAILS: dict[bytes, tuple[bytes, int]] = {}  # typeflag -> (tail, its byte sum), no link/dev


def _byte_sum(head: bytes) -> int:
    """``sum(head)`` for the 148 bytes before a header's checksum field, in C: Adler-32's low
    half is 1 + the byte sum modulo 65521, and 148 bytes sum to at most 37740."""
    return (zlib.adler32(head) & 0xFFFF) - 1


def _tail(typeflag: bytes, linkname: bytes, devmajor: int, devminor: int) -> tuple[bytes, int]:
    """Header bytes after the checksum field, with their sum (checksum field = 8 spaces)."""
    tail = b"".join(
        (typeflag, linkname.ljust(100, b"\0"), _MID, b"%07o\0%07o\0" % (devmajor, devminor), _PAD)
    )
    return tail, sum(tail) + 8 * 0x20


def _ustar(
    name: bytes,
    typeflag: bytes,
    mode: int,
    uid: int,
    gid: int,
    size: int,
    mtime: int,
    linkname: bytes = b"",
    devmajor: int = 0,
    devminor: int = 0,
) -> bytes:
    """A ustar header block; every value must already fit its field."""
    head = name.ljust(100, b"\0") + b"%07o\0%07o\0%07o\0%011o\0%011o\0" % (
        mode,
        uid,
        gid,
        size,
        mtime,
    )
    if linkname or devmajor or devminor:
        tail, tail_sum = _tail(typeflag, linkname, devmajor, devminor)
    else:
        cached = _TAILS.get(typeflag)
        if cached is None:
            cached = _TAILS[typeflag] = _tail(typeflag, b"", 0, 0)
        tail, tail_sum = cached
    return b"%s%06o\0 %s" % (head, _byte_sum(head) + tail_sum, tail)


def _fit_name(value: bytes, key: bytes, pax: dict[bytes, bytes]) -> bytes:
    """The ustar field for a name; the full value goes to PAX when it does not fit."""
    if len(value) <= 100 and value.isascii():
        return value
    if len(value) <= 100 and not _is_utf8(value):
        return value  # raw bytes in ustar are what GNU tar does for non-UTF-8 names
    if not _is_utf8(value):
        pax[b"hdrcharset"] = b"BINARY"
    pax[key] = value
    return value.decode("ascii", "replace").encode("ascii", "replace")[:100]


def encode_header(
    name: bytes,
    typeflag: bytes,
    *,
    mode: int = 0o644,
    uid: int = 0,
    gid: int = 0,
    size: int = 0,
    mtime: int = 0,
    linkname: bytes = b"",
    devmajor: int = 0,
    devminor: int = 0,
    xattrs: dict[str, bytes] | None = None,
) -> bytes:
    """One entry's header blocks: an optional PAX header followed by the ustar header."""
    mode &= 0o7777
    if (
        not xattrs
        and len(name) <= 100
        and name.isascii()
        and (not linkname or (len(linkname) <= 100 and linkname.isascii()))
        and 0 <= uid < _MAX7
        and 0 <= gid < _MAX7
        and 0 <= size < _MAX11
        and 0 <= mtime < _MAX11
        and 0 <= devmajor < _MAX7
        and 0 <= devminor < _MAX7
    ):
        return _ustar(name, typeflag, mode, uid, gid, size, mtime, linkname, devmajor, devminor)
    pax: dict[bytes, bytes] = {}
    ustar_name = _fit_name(name, b"path", pax)
    ustar_link = _fit_name(linkname, b"linkpath", pax) if linkname else b""
    nums = []
    for key, value, limit in (
        (b"uid", uid, _MAX7),
        (b"gid", gid, _MAX7),
        (b"size", size, _MAX11),
        (b"mtime", mtime, _MAX11),
    ):
        if 0 <= value < limit:
            nums.append(value)
        else:
            pax[key] = str(value).encode()
            nums.append(0)
    if not (0 <= devmajor < _MAX7 and 0 <= devminor < _MAX7):
        raise LayerError(f"{os.fsdecode(name)}: device number {devmajor}:{devminor} too large")
    if xattrs:
        for xname, xvalue in xattrs.items():
            pax[b"SCHILY.xattr." + xname.encode("utf-8", "surrogateescape")] = xvalue
    n_uid, n_gid, n_size, n_mtime = nums
    header = _ustar(ustar_name, typeflag, mode, n_uid, n_gid, n_size, n_mtime, ustar_link, devmajor,
                    devminor)
    if not pax:
        return header
    data = b"".join(_pax_record(k, pax[k]) for k in sorted(pax))
    d, _, base = name.rstrip(b"/").rpartition(b"/")
    pax_name = ((d + b"/") if d else b"") + b"PaxHeaders.0/" + base
    pax_name = pax_name.decode("ascii", "replace").encode("ascii", "replace")[:100]
    pax_header = _ustar(pax_name, XHDTYPE, 0o644, 0, 0, len(data), 0)
    return pax_header + data + bytes(-len(data) % BLOCKSIZE) + header


class BlockSource(Protocol):
    block_size: int

    def buffer(self) -> bytearray: ...
    def emit(self, buf: bytearray, n: int) -> None: ...
    def release(self, buf: bytearray) -> None: ...


class BlockWriter:
    """Packs the tar stream into the pipeline's fixed-size buffers."""

    def __init__(self, pipeline: BlockSource) -> None:
        self._pipe = pipeline
        self._size = pipeline.block_size
        self._buf = pipeline.buffer()
        self._view = memoryview(self._buf)
        self._pos = 0
        self.total = 0

    def _flush_full(self) -> None:
        self._view.release()
        self._pipe.emit(self._buf, self._size)
        self._buf = self._pipe.buffer()
        self._view = memoryview(self._buf)
        self._pos = 0

    def write(self, data: bytes) -> None:
        n = len(data)
        self.total += n
        pos = self._pos
        if pos + n < self._size:  # the common case: a header fits
            self._buf[pos : pos + n] = data
            self._pos = pos + n
            return
        mv = memoryview(data)
        while mv:
            k = min(len(mv), self._size - self._pos)
            self._buf[self._pos : self._pos + k] = mv[:k]
            self._pos += k
            mv = mv[k:]
            if self._pos == self._size:
                self._flush_full()

    def file(self, header: bytes, fd: int, length: int, name: bytes) -> None:
        """Header, contents and padding of a regular file; small files in one readv."""
        pos = self._pos
        start = pos + len(header)
        end = start + length
        padded = end + (-length % BLOCKSIZE)
        if padded >= self._size:
            self.write(header)
            self.copy_fd(fd, length, name)
            return
        buf = self._buf
        buf[pos:start] = header
        got = os.readv(fd, [self._view[start:end]]) if length else 0
        if got != length:  # short read: let the general path finish (or report) it
            self._pos = start + got
            self.total += len(header) + got
            self.copy_fd(fd, length - got, name, padding=length)
            return
        buf[end:padded] = _ZEROS[: padded - end]
        self._pos = padded
        self.total += padded - pos

    def copy_fd(self, fd: int, length: int, name: bytes, *, padding: int | None = None) -> None:
        """Read ``length`` bytes of a file straight into the blocks, then pad to 512."""
        remaining = length
        while remaining:
            n = min(self._size - self._pos, remaining)
            got = os.readv(fd, [self._view[self._pos : self._pos + n]])
            if got == 0:
                raise LayerError(
                    f"{os.fsdecode(name)}: file shrank while it was being read",
                    hint="don't modify the tree while a layer is written",
                )
            self._pos += got
            remaining -= got
            if self._pos == self._size:
                self._flush_full()
        self.total += length
        pad = -(length if padding is None else padding) % BLOCKSIZE
        if pad:
            pos = self._pos
            if pos + pad < self._size:
                self._buf[pos : pos + pad] = _ZEROS[:pad]
                self._pos = pos + pad
                self.total += pad
            else:
                self.write(_ZEROS[:pad])

    def close(self) -> None:
        self._view.release()
        if self._pos:
            self._pipe.emit(self._buf, self._pos)
        else:
            self._pipe.release(self._buf)
        self._pos = 0


@dataclass(frozen=True, slots=True)
class TreeOptions:
    source_date_epoch: int | None = None
    overlay_upper: bool = False
    id_map: IdMap | None = None
    exclude: Callable[[str], bool] | None = None
    # A tree in OCI layer format (``.wh.`` files are whiteouts, written as they are) and the
    # owners its disk cannot hold (layers/owners.py): relative path -> container (uid, gid).
    whiteout_files: bool = False
    owners: Mapping[bytes, tuple[int, int]] | None = None


def _xattrs(target: int | bytes, name: bytes) -> dict[str, bytes]:
    """All xattrs of an open fd (cheap: no path lookup) or of a path (not followed)."""
    kw = {} if isinstance(target, int) else {"follow_symlinks": False}
    try:
        names = os.listxattr(target, **kw)
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return {}
        raise LayerError(f"{os.fsdecode(name)}: cannot list xattrs: {e.strerror}") from e
    if not names:
        return {}
    out: dict[str, bytes] = {}
    for xname in sorted(names):
        try:
            out[xname] = os.getxattr(target, xname, **kw)
        except OSError as e:
            if e.errno in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP):
                continue
            raise LayerError(
                f"{os.fsdecode(name)}: cannot read xattr {xname}: {e.strerror}"
            ) from e
    return out


def _open_at(base: bytes, dir_fd: int, name: bytes, flags: int) -> int:
    try:
        return os.open(base, flags | _O_NOATIME, dir_fd=dir_fd)
    except PermissionError:
        if not _O_NOATIME:
            raise LayerError(f"{os.fsdecode(name)}: permission denied") from None
    except OSError as e:
        raise LayerError(f"{os.fsdecode(name)}: cannot open: {e.strerror}") from e
    try:  # O_NOATIME needs ownership or CAP_FOWNER
        return os.open(base, flags, dir_fd=dir_fd)
    except OSError as e:
        raise LayerError(f"{os.fsdecode(name)}: cannot open: {e.strerror}") from e


def _reject_whiteout(rel: bytes) -> None:
    raise LayerError(
        f"{os.fsdecode(rel)}: a file named '.wh.*' cannot be stored in a layer",
        hint="OCI readers would take it for a whiteout",
    )


def _lstat_at(base: bytes, dir_fd: int, name: bytes) -> os.stat_result:
    try:
        return os.stat(base, dir_fd=dir_fd, follow_symlinks=False)
    except OSError as e:
        raise LayerError(f"{os.fsdecode(name)}: cannot stat: {e.strerror}") from e


def _open_listed(
    base: bytes, dir_fd: int, name: bytes, flags: int
) -> tuple[int, os.stat_result, int]:
    """Open a file the listing says is regular and fstat it: (fd, stat, flags to use next).

    fd is -1 (with an lstat by name) when the open fails or the entry is no longer a regular
    file; the general path then handles or reports it.
    """
    try:
        fd = os.open(base, flags, dir_fd=dir_fd)
    except OSError as e:
        if e.errno == errno.EPERM:  # O_NOATIME on files of other owners: stop asking
            flags = _READ_FLAGS
        return -1, _lstat_at(base, dir_fd, name), flags
    try:
        st = os.fstat(fd)
    except OSError as e:
        os.close(fd)
        raise LayerError(f"{os.fsdecode(name)}: cannot stat: {e.strerror}") from e
    if st.st_mode & 0o170000 != stat.S_IFREG:
        os.close(fd)
        return -1, _lstat_at(base, dir_fd, name), flags
    return fd, st, flags


def _children(
    dir_fd: int, prefix: bytes, opts: TreeOptions
) -> list[tuple[bytes, bytes, os.stat_result | None]]:
    """(tar name without dir slash, base name, lstat) of a directory's entries, in order;
    no lstat (None) for regular files in the plain case: see _open_listed."""
    plain = opts.exclude is None and not opts.overlay_upper
    reject = not opts.whiteout_files
    try:
        with os.scandir(dir_fd) as it:
            if plain:  # the common case in one pass: no exclusions, no whiteout devices
                items: list[tuple[bytes, bytes, os.stat_result | None]] = []
                for e in it:
                    base = _fsencode(e.name)
                    if reject and base.startswith(overlay.WHITEOUT_PREFIX):
                        _reject_whiteout(prefix + base)
                    # Regular files (known from d_type, no syscall) are stat'ed through
                    # their fd once open: fstat costs less than a second lookup by name.
                    st = None if e.is_file(follow_symlinks=False) else e.stat(follow_symlinks=False)
                    items.append((prefix + base, base, st))
                items.sort(key=_first)
                return items
            listed = [(_fsencode(e.name), e.stat(follow_symlinks=False)) for e in it]
    except OSError as e:
        raise LayerError(
            f"{os.fsdecode(prefix) or '.'}: cannot read directory: {e.strerror}"
        ) from e
    out = []
    for base, st in listed:
        rel = prefix + base
        if opts.exclude is not None and opts.exclude(os.fsdecode(rel)):
            continue
        if reject and base.startswith(overlay.WHITEOUT_PREFIX):
            _reject_whiteout(rel)
        if opts.overlay_upper and overlay.is_whiteout_device(st):
            out.append(((0, prefix + overlay.whiteout_name(base)), base, st))
        else:
            out.append(((1, rel), base, st))
    out.sort(key=lambda item: item[0])
    return [(key[1], base, st) for key, base, st in out]


def write_tree(root: Path, out: BlockWriter, opts: TreeOptions) -> int:
    """Write the whole tar stream of ``root`` into ``out``; returns the number of entries.

    The walk goes through directory fds (openat/fstatat/flistxattr) rather than full
    paths: it saves a path lookup per call, a good part of the per-file cost.
    """
    root_b = os.fsencode(root)
    try:
        root_fd = os.open(root_b, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise LayerError(
            f"cannot read layer source {os.fsdecode(root_b)!r}: {e.strerror}"
        ) from e
    stack = [(root_fd, iter(_children(root_fd, b"", opts)))]
    try:
        return _write_entries(root_b, stack, out, opts)
    finally:
        for fd, _ in stack:
            os.close(fd)


# One loop over every entry of a tree, with the common case (a small regular file) inlined:
# splitting it into calls per entry costs ~15% of a layer write (benchmarks/layers.py).
def _write_entries(  # noqa: C901
    root_b: bytes,
    stack: list[tuple[int, Iterator[tuple[bytes, bytes, os.stat_result | None]]]],
    out: BlockWriter,
    opts: TreeOptions,
) -> int:
    epoch = opts.source_date_epoch
    id_map = opts.id_map
    owners = opts.owners
    upper = opts.overlay_upper
    seen: dict[tuple[int, int], bytes] = {}
    count = 0
    write = out.write
    S_IFREG, S_IFDIR, S_IFLNK = stat.S_IFREG, stat.S_IFDIR, stat.S_IFLNK
    dir_flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    # Hot-loop locals: most entries of a real tree are small regular files.
    os_open, os_close, listxattr, out_file = os.open, os.close, os.listxattr, out.file
    read_flags = _READ_FLAGS | _O_NOATIME
    reg_tail, reg_sum = _tail(REGTYPE, b"", 0, 0)
    reg_sum1, adler32 = reg_sum - 1, zlib.adler32  # see _byte_sum
    while stack:
        dir_fd, children = stack[-1]
        for name, base, st in children:
            fd = -1
            if st is None:  # a regular file by its d_type
                fd, st, read_flags = _open_listed(base, dir_fd, name, read_flags)
            try:
                # st[8], the integer st_mtime, is tv_sec: st_mtime_ns // 10**9 without a bigint
                mtime: int = st[8]  # type: ignore[assignment]  # (an int: typeshed says float)
                if epoch is not None and mtime > epoch:
                    mtime = epoch
                uid, gid = st.st_uid, st.st_gid
                if id_map is not None:
                    uid, gid = id_map.to_container(uid, gid, entry=os.fsdecode(name))
                if owners is not None:
                    uid, gid = owners.get(name, (0, 0))
                mode = st.st_mode
                fmt = mode & 0o170000  # stat.S_IFMT without the call
                count += 1
                if upper and overlay.is_whiteout_device(st):
                    write(encode_header(name, REGTYPE, mode=0o600, uid=uid, gid=gid, mtime=mtime))
                    continue
                if fmt == S_IFDIR:
                    child_fd = _open_at(base, dir_fd, name, dir_flags)
                    try:
                        xattrs = _xattrs(child_fd, name)
                        opaque = upper and overlay.is_opaque(xattrs)
                        xattrs = _layer_xattrs(xattrs)
                        write(
                            encode_header(
                                name + b"/",
                                DIRTYPE,
                                mode=mode,
                                uid=uid,
                                gid=gid,
                                mtime=mtime,
                                xattrs=xattrs,
                            )
                        )
                        if opaque:
                            count += 1
                            marker = name + b"/" + overlay.OPAQUE_MARKER
                            write(
                                encode_header(
                                    marker,
                                    REGTYPE,
                                    mode=mode & 0o777,
                                    uid=uid,
                                    gid=gid,
                                    mtime=mtime,
                                )
                            )
                        stack.append((child_fd, iter(_children(child_fd, name + b"/", opts))))
                    except BaseException:
                        os.close(child_fd)
                        raise
                    break  # descend: the while loop resumes this directory's iterator later
                if st.st_nlink > 1 and fmt != stat.S_IFSOCK:
                    key = (st.st_dev, st.st_ino)
                    first = seen.get(key)
                    if first is not None:
                        write(
                            encode_header(
                                name,
                                LNKTYPE,
                                mode=mode,
                                uid=uid,
                                gid=gid,
                                mtime=mtime,
                                linkname=first,
                            )
                        )
                        continue
                    seen[key] = name
                if fmt == S_IFREG:
                    size = st.st_size
                    if fd < 0:
                        try:
                            fd = os_open(base, read_flags, dir_fd=dir_fd)
                        except OSError as e:  # errors and the O_NOATIME fallback: careful path
                            if e.errno == errno.EPERM:  # not our files: stop asking for it
                                read_flags = _READ_FLAGS
                            fd = _open_at(base, dir_fd, name, _READ_FLAGS)
                    try:
                        has_xattrs = bool(listxattr(fd))
                    except OSError:  # unsupported, or a real error _xattrs reports
                        has_xattrs = True
                    if (
                        not has_xattrs
                        and len(name) <= 100
                        and name.isascii()
                        and 0 <= uid < _MAX7
                        and 0 <= gid < _MAX7
                        and size < _MAX11
                        and 0 <= mtime < _MAX11
                    ):
                        # The common case, inlined: a plain ustar header (see _ustar).
                        head = name.ljust(100, b"\0") + b"%07o\0%07o\0%07o\0%011o\0%011o\0" % (
                            mode & 0o7777,
                            uid,
                            gid,
                            size,
                            mtime,
                        )
                        chk = (adler32(head) & 0xFFFF) + reg_sum1
                        header = b"%s%06o\0 %s" % (head, chk, reg_tail)
                    else:
                        header = encode_header(
                            name,
                            REGTYPE,
                            mode=mode,
                            uid=uid,
                            gid=gid,
                            size=size,
                            mtime=mtime,
                            xattrs=_layer_xattrs(_xattrs(fd, name)) if has_xattrs else None,
                        )
                    out_file(header, fd, size, name)
                    continue
                # Rare types: xattrs by path (an fd cannot be had without following or O_PATH).
                xattrs = _layer_xattrs(_xattrs(root_b + b"/" + name, name))
                if fmt == S_IFLNK:
                    target = os.readlink(base, dir_fd=dir_fd)
                    write(
                        encode_header(
                            name,
                            SYMTYPE,
                            mode=mode,
                            uid=uid,
                            gid=gid,
                            mtime=mtime,
                            linkname=target,
                            xattrs=xattrs,
                        )
                    )
                elif fmt in (stat.S_IFCHR, stat.S_IFBLK):
                    write(
                        encode_header(
                            name,
                            CHRTYPE if fmt == stat.S_IFCHR else BLKTYPE,
                            mode=mode,
                            uid=uid,
                            gid=gid,
                            mtime=mtime,
                            devmajor=os.major(st.st_rdev),
                            devminor=os.minor(st.st_rdev),
                            xattrs=xattrs,
                        )
                    )
                elif fmt == stat.S_IFIFO:
                    write(
                        encode_header(
                            name, FIFOTYPE, mode=mode, uid=uid, gid=gid, mtime=mtime, xattrs=xattrs
                        )
                    )
                else:  # sockets: tar cannot hold them (GNU tar and docker skip them too)
                    count -= 1
            finally:
                if fd >= 0:
                    os_close(fd)
        else:  # this directory is done
            stack.pop()
            os.close(dir_fd)
    write(_ZEROS)
    return count


def _layer_xattrs(xattrs: dict[str, bytes]) -> dict[str, bytes]:
    if not xattrs:
        return xattrs
    return {k: v for k, v in xattrs.items() if overlay.keep_xattr(k)}

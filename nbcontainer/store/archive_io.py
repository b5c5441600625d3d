"""Tar plumbing shared by the archive formats: a deterministic writer and a sequential reader
that never writes a member to disk by its own (possibly hostile) name."""

from __future__ import annotations

import io
import lzma
import os
import posixpath
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import IO, BinaryIO

from ..errors import ImageFormatError, NbcontainerError


class TarSink:
    """Writes members with fixed metadata (mode, owner, mtime) so exports are reproducible."""

    def __init__(self, fileobj: BinaryIO, mtime: int = 0):
        self._tar = tarfile.open(fileobj=fileobj, mode="w", format=tarfile.PAX_FORMAT)
        self._mtime = mtime
        self._dirs: set[str] = set()

    def _info(self, name: str, size: int, kind: bytes = tarfile.REGTYPE) -> tarfile.TarInfo:
        ti = tarfile.TarInfo(name)
        ti.size = size
        ti.type = kind
        ti.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
        ti.mtime = self._mtime
        ti.uname = ti.gname = ""
        return ti

    def _parents(self, name: str) -> None:
        parent = posixpath.dirname(name)
        if parent and parent not in self._dirs:
            self._parents(parent)
            self._dirs.add(parent)
            self._tar.addfile(self._info(parent + "/", 0, tarfile.DIRTYPE))

    def add_bytes(self, name: str, data: bytes) -> None:
        self._parents(name)
        self._tar.addfile(self._info(name, len(data)), io.BytesIO(data))

    def add_file(self, name: str, src: IO[bytes], size: int) -> None:
        self._parents(name)
        self._tar.addfile(self._info(name, size), src)

    def close(self) -> None:
        self._tar.close()


def iter_members(path: Path) -> Iterator[tuple[str, tarfile.TarInfo, tarfile.TarFile]]:
    """Regular-file members of a (possibly compressed) tar, in order, with normalized names.

    Random access ("r:*"), not stream mode: a stream skips a member by reading its claimed
    size block by block, so a 10 KiB archive whose header claims a terabyte-sized member
    would spin for hours; a seek past the end of a file costs nothing and the short read
    is reported as truncation."""
    try:
        tar = tarfile.open(path, mode="r:*")
    except tarfile.ReadError as e:  # the cause lists what each decompressor said
        raise ImageFormatError(f"{path}: not a tar archive (plain, gzip, bzip2 or xz)",
                               hint="give a file written by `docker save` or `nbcontainer "
                               "save`") from e
    except (*_READ_ERRORS, OSError) as e:  # ValueError: tarfile's parse of bad PAX records
        raise ImageFormatError(f"{path}: not a readable tar archive ({_one_line(e)})") from e
    with tar:
        try:
            for member in tar:
                name = posixpath.normpath(member.name.lstrip("./") or ".")
                if member.isfile():
                    yield name, member, tar
            _check_end(tar, path)
        except (*_READ_ERRORS, OSError) as e:
            raise ImageFormatError(f"{path}: truncated or corrupt archive ({_one_line(e)})"
                                   ) from e


def _check_end(tar: tarfile.TarFile, path: Path) -> None:
    """tarfile ends quietly at a header cut short; a complete archive ends with a zero block
    (every tar writer puts two there), so a file cut between members is caught here."""
    assert tar.fileobj is not None
    tar.fileobj.seek(tar.offset)
    if tar.fileobj.read(tarfile.BLOCKSIZE) != bytes(tarfile.BLOCKSIZE):
        raise ImageFormatError(f"{path}: truncated archive (it ends without the end-of-archive "
                               "blocks)", hint="the file was cut short; copy or save it again")


# What reading a member of a damaged archive raises (gzip/xz/bz2 streams included).
_READ_ERRORS = (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, ValueError)


@contextmanager
def reading_member(path: Path, name: str) -> Iterator[None]:
    """Errors while a member's bytes are read are the archive's fault: say so, and where."""
    try:
        yield
    except NbcontainerError:
        raise
    except _READ_ERRORS as e:
        raise ImageFormatError(f"{path}: truncated or corrupt archive at {name!r} "
                               f"({_one_line(e)})") from e


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]


def atomic_output(dest: Path) -> _AtomicFile:
    """A temp file next to ``dest``; call ``.publish()`` to rename it into place."""
    return _AtomicFile(dest)


class _AtomicFile:
    def __init__(self, dest: Path):
        self.dest = dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
        self.tmp = Path(name)
        self.file = os.fdopen(fd, "wb")

    def publish(self) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        os.chmod(self.tmp, 0o644)
        os.replace(self.tmp, self.dest)

    def __enter__(self) -> _AtomicFile:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if not self.file.closed:
            self.file.close()
        self.tmp.unlink(missing_ok=True)

"""Safe application of layers to a directory: whiteouts, opaque dirs, links, metadata.

Safety rules (each violation is an :class:`UnsafeLayerError` naming the entry, raised
before anything is written for that entry):
- names with a ``..`` component, a NUL byte, or a leading ``/`` are refused (absolute
  names are refused by default as issue 2 asks; ``strip_absolute=True`` treats them as
  relative to the root, which is what docker, containerd and GNU tar do);
- parent directories are resolved with ``openat(O_NOFOLLOW)`` from the root; symlinks on
  the way (also those planted by earlier layers) are followed as inside a chroot, and one
  that climbs above the root is refused;
- an entry never writes through what is already there: the old file, symlink or
  directory is removed first, and new files are created with ``O_EXCL|O_NOFOLLOW``;
- hardlink targets must name an existing non-directory inside the root, with no symlink
  on the way;
- whiteouts must name an entry of their own directory (``.wh..`` is refused);
- truncated or corrupt archives (tar, gzip or zstd) are errors, never a silent end.

The root entry (``./``) is skipped: a layer does not get to change the target's own mode.
Directory modes and mtimes are set after all entries, so that read-only directories can be
filled and their mtimes are not disturbed.  Without root, device nodes and ownership are
skipped and the report says so once (``warnings``), as do xattrs the kernel refuses.

Small regular files are created by worker threads (``_Writers``) while this thread reads on:
on some filesystems creating a file costs the kernel far more than its data (an ext4 without
a journal looks at each candidate inode's deletion time: ~0.5 ms per file measured on the
development machines, 6,000 of them in a Debian base), and the syscalls release the GIL. An
entry that touches a path a worker has not finished with (the same path, a directory above
pending files, a hardlink, a whiteout) first waits for every worker, so the tree and the
errors are those of a sequential extraction.
"""

from __future__ import annotations

import builtins
import errno
import logging
import os
import shutil
import stat
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import LayerError, UnsafeLayerError
from ..oci.digest import Digest
from . import overlay
from .compression import Compression, LayerStream, open_layer
from .idmap import IdMap
from .rootfs import Parts, RootDir
from .tarreader import (
    BLOCKDEV,
    CHARDEV,
    DIRECTORY,
    FIFO,
    HARDLINK,
    REGULAR,
    SYMLINK,
    TarEntry,
    TarReader,
)

log = logging.getLogger("nbcontainer.layers")

_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_XATTR_SKIP_ERRNOS = (errno.EPERM, errno.EACCES, errno.ENOTSUP, errno.EOPNOTSUPP)
# Files up to this size go to the writer threads (their data is copied out of the reader's
# buffer); larger ones are written by the reading thread, where the data is the cost.
_SMALL_FILE = 256 * 1024
_WRITERS = 2  # two measured 2.3x one on 2 cores; four no better
_IN_FLIGHT_BYTES = 16 << 20  # bound on the data held for the writers
_IN_FLIGHT_FILES = 256

LayerSource = str | os.PathLike[str] | BinaryIO | LayerStream


@dataclass
class ApplyReport:
    """What one layer did to the target."""

    entries: int = 0
    files: int = 0
    bytes: int = 0
    whiteouts: int = 0
    opaque_dirs: int = 0
    skipped_devices: list[str] = field(default_factory=list)
    ownership_skipped: int = 0
    xattrs_skipped: int = 0
    warnings: list[str] = field(default_factory=list)
    compression: Compression = Compression.NONE
    digest: Digest | None = None  # of the blob as read
    diff_id: Digest | None = None  # of the uncompressed tar
    # Without ``same_owner``: each entry's owner from its tar header (path below the target,
    # symlinks in its parents resolved), for the tree's owners record (layers/owners.py).
    owners: dict[builtins.bytes, tuple[int, int]] = field(default_factory=dict)


class _Warnings:
    """Says each kind of limitation once per apply (or per stack of layers)."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def once(self, report: ApplyReport, kind: str, message: str) -> None:
        if kind in self.seen:
            return
        self.seen.add(kind)
        report.warnings.append(message)
        log.warning("%s", message)


def _normalize(name: bytes, shown: str, *, strip_absolute: bool, what: str = "name") -> Parts:
    if b"\0" in name:
        raise UnsafeLayerError(f"layer entry {shown!r}: NUL byte in its {what}", entry=shown)
    if name.startswith(b"/"):
        if not strip_absolute:
            raise UnsafeLayerError(
                f"layer entry {shown!r}: absolute {what}",
                entry=shown,
                hint="layer entries are relative to the root (strip_absolute=True accepts them)",
            )
        name = name.lstrip(b"/")
    parts = tuple(p for p in name.split(b"/") if p not in (b"", b"."))
    if b".." in parts:
        raise UnsafeLayerError(
            f"layer entry {shown!r}: '..' in its {what} (path traversal)", entry=shown
        )
    return parts


class _Writers:
    """A few threads creating small files for ``_Applier``, with the paths still pending.

    ``pending``/``pending_dirs``: the physical paths of files handed over since the last
    ``wait_all`` and every directory above them; ``logical``: the same files by their name in
    the layer (checked before resolving a parent, which could create a directory where a
    pending file goes). Jobs run in any order, so only entries that touch none of these may
    go on meanwhile. The first job error is raised by the next ``wait``.
    """

    def __init__(self) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(_WRITERS, thread_name_prefix="nbcontainer-extract")
        self._jobs: deque[tuple[Any, int, int]] = deque()  # (future, size, its parent fd)
        self._bytes = 0
        self.pending: set[Parts] = set()
        self.pending_dirs: set[Parts] = set()
        self.logical: set[Parts] = set()

    def submit(self, path: Parts, parts: Parts, size: int, fd: int,
               job: Callable[[], None]) -> None:
        """Run ``job``, which writes ``size`` bytes at ``path`` and closes ``fd`` (it is
        closed here instead if the job never runs)."""
        while self._jobs and (self._bytes + size > _IN_FLIGHT_BYTES
                              or len(self._jobs) >= _IN_FLIGHT_FILES):
            self._wait_oldest()
        self.pending.add(path)
        self.logical.add(parts)
        for i in range(len(path) - 1, 0, -1):
            if path[:i] in self.pending_dirs:
                break
            self.pending_dirs.add(path[:i])
        self._jobs.append((self._pool.submit(job), size, fd))
        self._bytes += size

    def _wait_oldest(self) -> None:
        future, size, _ = self._jobs.popleft()
        self._bytes -= size
        future.result()

    def wait_all(self) -> None:
        while self._jobs:
            self._wait_oldest()
        self.pending.clear()
        self.pending_dirs.clear()
        self.logical.clear()

    def close(self) -> None:
        """Stop: wait for every job (none may write after the apply returns), errors
        dropped (the caller is already failing, or has waited)."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        for future, _, fd in self._jobs:
            if future.cancelled():
                os.close(fd)
        self._jobs.clear()


class _Applier:
    def __init__(
        self,
        target: Path,
        *,
        strip_absolute: bool,
        id_map: IdMap | None,
        same_owner: bool,
        warnings: _Warnings,
        record_owners: bool = False,
    ) -> None:
        self.strip_absolute = strip_absolute
        self.id_map = id_map
        self.same_owner = same_owner
        self.record_owners = record_owners
        self.is_root = os.geteuid() == 0
        self.warn = warnings
        self.report = ApplyReport()
        self.root = RootDir(target, on_mkdir=self._implicit_dir)
        self.layer_paths: set[Parts] = set()
        self.layer_dirs: set[Parts] = set()  # ancestors of layer_paths
        self.deferred: list[tuple[Parts, int, int]] = []
        self.writers: _Writers | None = None  # started by the first small file
        # Directories this layer made: nothing is in them but its own entries, so an entry
        # there that is not a repeat has nothing to clear (one stat saved per entry).
        self.made_dirs: set[Parts] = set()
        self._fresh = False  # the current entry's path is known to be free
        self._lock = threading.Lock()  # the report, updated by the writers too

    # -- entry points
    def run(self, reader: TarReader) -> None:
        try:
            for entry in reader.entries():
                shown = entry.display
                try:
                    self._entry(entry, shown, reader)
                except OSError as e:
                    raise _failed(shown, e) from e
                self.report.entries += 1
            self._settle()
            self._finish_dirs()
        finally:
            if self.writers is not None:
                self.writers.close()
            self.root.close()

    def _settle(self) -> None:
        """Wait until every file handed to the writers exists."""
        if self.writers is not None:
            self.writers.wait_all()

    def _touches_pending(self, parts: Parts) -> bool:
        w = self.writers
        if w is None or not w.pending:
            return False
        return any(parts[:i] in w.logical for i in range(1, len(parts) + 1))

    def _entry(self, entry: TarEntry, shown: str, reader: TarReader) -> None:
        self._fresh = False
        parts = _normalize(entry.name, shown, strip_absolute=self.strip_absolute)
        if not parts:
            if entry.type == DIRECTORY:
                return  # "./": the target root itself, left as it is
            raise UnsafeLayerError(f"layer entry {shown!r}: would replace the root", entry=shown)
        base = parts[-1]
        kind = entry.type
        if (base.startswith(overlay.WHITEOUT_PREFIX) or kind == HARDLINK
                or self._touches_pending(parts)):
            self._settle()
        if base.startswith(overlay.WHITEOUT_PREFIX):
            self._whiteout(parts, shown)
            return
        parent = self.root.resolve(parts[:-1], entry=shown, create=True)
        assert parent is not None
        pfd, phys = parent
        path = (*phys, base)
        w = self.writers
        if w is not None and (path in w.pending or path in w.pending_dirs):
            self._settle()  # (reached through a symlink in a parent: the same file)
        self._fresh = phys in self.made_dirs and path not in self.layer_paths
        self._remember(path)
        if not self.same_owner:
            self.report.owners[b"/".join(path)] = (entry.uid, entry.gid)
        if kind == REGULAR:
            if entry.size <= _SMALL_FILE:
                self._small_regular(entry, shown, pfd, base, reader, path, parts)
            else:
                self._regular(entry, shown, pfd, base, reader)
        elif kind == DIRECTORY:
            self._directory(entry, shown, pfd, base, path)
        elif kind == SYMLINK:
            self._symlink(entry, shown, pfd, base)
        elif kind == HARDLINK:
            self._hardlink(entry, shown, pfd, base, path)
        elif kind in (CHARDEV, BLOCKDEV, FIFO):
            self._special(entry, shown, pfd, base)

    # -- bookkeeping
    def _remember(self, path: Parts) -> None:
        self.layer_paths.add(path)
        for i in range(len(path) - 1, 0, -1):
            prefix = path[:i]
            if prefix in self.layer_dirs:
                break
            self.layer_dirs.add(prefix)

    def _implicit_dir(self, dir_fd: int, name: bytes) -> None:
        """Parents a layer does not list are created root-owned 0755, like docker does."""
        os.chmod(name, 0o755, dir_fd=dir_fd)  # whatever the umask (we just made it: no link)
        if self.id_map is not None and self.same_owner:
            uid, gid = self.id_map.to_host(0, 0, entry=os.fsdecode(name))
            os.chown(name, uid, gid, dir_fd=dir_fd, follow_symlinks=False)

    def _clear(self, pfd: int, base: bytes, *, keep_dir: bool) -> bool:
        """Remove what is at ``base``; returns True if a directory was kept."""
        if self._fresh:
            return False
        try:
            st = os.stat(base, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(st.st_mode):
            if keep_dir:
                return True
            shutil.rmtree(base, dir_fd=pfd)
            self.root.invalidate()
        else:
            os.unlink(base, dir_fd=pfd)
            if stat.S_ISLNK(st.st_mode):
                self.root.invalidate()
        return False

    # -- entry types
    def _regular(self, entry: TarEntry, shown: str, pfd: int, base: bytes,
                 reader: TarReader) -> None:
        self._clear(pfd, base, keep_dir=False)
        fd = os.open(base, _NEW_FILE, 0o600, dir_fd=pfd)
        try:
            self.report.bytes += reader.copy_to(fd)
            self._file_meta(entry, shown, fd)
        finally:
            os.close(fd)
        self.report.files += 1

    def _file_meta(self, entry: TarEntry, shown: str, fd: int) -> None:
        """A regular file's owner, mode, xattrs and mtime, once its data is written."""
        self._owner(entry, shown, fd)
        os.chmod(fd, entry.mode)
        self._xattrs(entry, shown, fd)
        os.utime(fd, ns=(entry.mtime_ns, entry.mtime_ns))

    def _small_regular(self, entry: TarEntry, shown: str, pfd: int, base: bytes,
                       reader: TarReader, path: Parts, parts: Parts) -> None:
        """``_regular`` on a writer thread: the data copied out, the parent's fd duplicated
        (the cache may close its own), the old entry removed here (that may invalidate
        the cache, which only this thread touches)."""
        self._clear(pfd, base, keep_dir=False)
        held = reader.buffered_data()
        data = bytes(held) if held is not None else b"".join(bytes(p) for p in reader.data())
        dfd = os.dup(pfd)

        def job() -> None:
            try:
                fd = os.open(base, _NEW_FILE, 0o600, dir_fd=dfd)
                try:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view):]
                    self._file_meta(entry, shown, fd)
                finally:
                    os.close(fd)
            except OSError as e:
                raise _failed(shown, e) from e
            finally:
                os.close(dfd)

        if self.writers is None:
            self.writers = _Writers()
        self.report.bytes += len(data)
        self.report.files += 1
        self.writers.submit(path, parts, len(data), dfd, job)

    def _directory(self, entry: TarEntry, shown: str, pfd: int, base: bytes,
                   path: Parts) -> None:
        if not self._clear(pfd, base, keep_dir=True):
            os.mkdir(base, 0o700, dir_fd=pfd)
            self.made_dirs.add(path)
        fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
        try:
            self._owner(entry, shown, fd)
            self._xattrs(entry, shown, fd)
        finally:
            os.close(fd)
        self.deferred.append((path, entry.mode, entry.mtime_ns))

    def _symlink(self, entry: TarEntry, shown: str, pfd: int, base: bytes) -> None:
        if b"\0" in entry.linkname:
            raise UnsafeLayerError(
                f"layer entry {shown!r}: NUL byte in its symlink target", entry=shown
            )
        if not entry.linkname:
            raise LayerError(f"layer entry {shown!r}: empty symlink target")
        self._clear(pfd, base, keep_dir=False)
        os.symlink(entry.linkname, base, dir_fd=pfd)
        self._path_meta(entry, shown, pfd, base, chmod=False)

    def _hardlink(self, entry: TarEntry, shown: str, pfd: int, base: bytes,
                  path: Parts) -> None:
        tparts = _normalize(
            entry.linkname, shown, strip_absolute=self.strip_absolute, what="hardlink target"
        )
        if not tparts:
            raise UnsafeLayerError(
                f"layer entry {shown!r}: hardlink to the root directory", entry=shown
            )
        found = self.root.resolve(tparts[:-1], entry=shown, follow=False)
        if found is None:
            raise LayerError(
                f"layer entry {shown!r}: hardlink target {os.fsdecode(entry.linkname)!r} "
                "does not exist"
            )
        tfd, tphys = found
        try:
            st = os.stat(tparts[-1], dir_fd=tfd, follow_symlinks=False)
        except FileNotFoundError:
            raise LayerError(
                f"layer entry {shown!r}: hardlink target {os.fsdecode(entry.linkname)!r} "
                "does not exist"
            ) from None
        if stat.S_ISDIR(st.st_mode):
            raise UnsafeLayerError(f"layer entry {shown!r}: hardlink to a directory", entry=shown)
        if (*tphys, tparts[-1]) == path:
            return  # a link to itself: nothing to do
        self._clear(pfd, base, keep_dir=False)
        os.link(tparts[-1], base, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)

    def _special(self, entry: TarEntry, shown: str, pfd: int, base: bytes) -> None:
        if entry.type == FIFO:
            self._clear(pfd, base, keep_dir=False)
            os.mkfifo(base, 0o600, dir_fd=pfd)
        else:
            if not self.is_root:
                self._skip_device(shown, "not running as root")
                return
            kind = stat.S_IFCHR if entry.type == CHARDEV else stat.S_IFBLK
            self._clear(pfd, base, keep_dir=False)
            try:
                os.mknod(base, kind | 0o600, os.makedev(entry.devmajor, entry.devminor), dir_fd=pfd)
            except PermissionError:
                self._skip_device(shown, "the kernel refused mknod (user namespace?)")
                return
        self._path_meta(entry, shown, pfd, base, chmod=True)

    def _skip_device(self, shown: str, why: str) -> None:
        self.report.skipped_devices.append(shown)
        self.warn.once(self.report, "devices", f"device nodes skipped ({why}), first: {shown!r}")

    # -- metadata
    def _ids(self, entry: TarEntry, shown: str) -> tuple[int, int]:
        if self.id_map is not None:
            return self.id_map.to_host(entry.uid, entry.gid, entry=shown)
        return entry.uid, entry.gid

    def _owner(self, entry: TarEntry, shown: str, fd: int) -> None:
        if not self.same_owner:
            self._skip_owner()
            return
        uid, gid = self._ids(entry, shown)
        try:
            os.chown(fd, uid, gid)
        except OSError as e:
            if e.errno not in (errno.EPERM, errno.EINVAL):
                raise
            self._skip_owner()

    def _skip_owner(self) -> None:
        with self._lock:
            self.report.ownership_skipped += 1
            if self.record_owners:
                return  # kept in the report's owners (the caller writes the tree's record)
            self.warn.once(
                self.report,
                "owner",
                "file ownership not restored (not root, or ids outside this user namespace)",
            )

    def _path_meta(self, entry: TarEntry, shown: str, pfd: int, base: bytes, *,
                   chmod: bool) -> None:
        """Metadata of something we just created and cannot open (symlink, device, fifo)."""
        if self.same_owner:
            uid, gid = self._ids(entry, shown)
            try:
                os.chown(base, uid, gid, dir_fd=pfd, follow_symlinks=False)
            except OSError as e:
                if e.errno not in (errno.EPERM, errno.EINVAL):
                    raise
                self._skip_owner()
        else:
            self._skip_owner()
        if chmod:  # not a symlink: chmod cannot follow anything here
            os.chmod(base, entry.mode, dir_fd=pfd)
        if entry.xattrs:
            self._xattrs(entry, shown, f"/proc/self/fd/{pfd}/{os.fsdecode(base)}")
        os.utime(base, ns=(entry.mtime_ns, entry.mtime_ns), dir_fd=pfd, follow_symlinks=False)

    def _xattrs(self, entry: TarEntry, shown: str, target: int | str) -> None:
        for name, value in entry.xattrs.items():
            if overlay.is_overlay_xattr(name):
                with self._lock:
                    self.report.xattrs_skipped += 1
                continue  # overlay bookkeeping would corrupt an overlay mount of the snapshot
            try:
                if isinstance(target, int):
                    os.setxattr(target, name, value)
                else:
                    os.setxattr(target, name, value, follow_symlinks=False)
            except OSError as e:
                if e.errno not in _XATTR_SKIP_ERRNOS:
                    raise
                with self._lock:
                    self.report.xattrs_skipped += 1
                    self.warn.once(
                        self.report,
                        f"xattr:{name.split('.')[0]}",
                        f"xattr {name} not restored on {shown!r} and maybe others: "
                        f"{e.strerror}",
                    )

    # -- whiteouts
    def _whiteout(self, parts: Parts, shown: str) -> None:
        base = parts[-1]
        if base == overlay.OPAQUE_MARKER:
            found = self.root.resolve(parts[:-1], entry=shown)
            if found is not None:
                self.report.opaque_dirs += 1
                self._clear_lower(found[0], found[1])
            return
        if base.startswith(overlay.WHITEOUT_PREFIX * 2):
            return  # other AUFS metadata (.wh..wh.plnk, ...): ignored, as docker does
        victim = base[len(overlay.WHITEOUT_PREFIX) :]
        if victim in (b"", b".", b".."):
            raise UnsafeLayerError(
                f"layer entry {shown!r}: whiteout points outside its directory", entry=shown
            )
        self.report.whiteouts += 1
        found = self.root.resolve(parts[:-1], entry=shown)
        if found is None:
            return
        pfd, phys = found
        path = (*phys, victim)
        if path in self.layer_paths or path in self.layer_dirs:
            return  # this layer's own entries win over its whiteouts
        self._clear(pfd, victim, keep_dir=False)

    def _clear_lower(self, dir_fd: int, phys: Parts) -> None:
        """Opaque dir: remove everything below it that this layer did not write."""
        list_fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=dir_fd)
        try:
            with os.scandir(list_fd) as it:
                children = [(os.fsencode(e.name), e.is_dir(follow_symlinks=False)) for e in it]
            for name, is_dir in children:
                path = (*phys, name)
                if path in self.layer_dirs or (path in self.layer_paths and is_dir):
                    if is_dir:
                        sub = os.open(
                            name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=list_fd
                        )
                        try:
                            self._clear_lower(sub, path)
                        finally:
                            os.close(sub)
                    continue
                if path in self.layer_paths:
                    continue
                self._clear(list_fd, name, keep_dir=False)
        finally:
            os.close(list_fd)

    # -- directories last
    def _finish_dirs(self) -> None:
        for path, mode, mtime_ns in reversed(self.deferred):
            try:
                found = self.root.resolve(
                    path[:-1], entry=os.fsdecode(b"/".join(path)), follow=False
                )
            except (UnsafeLayerError, LayerError):
                continue  # replaced by a symlink or a file later in the layer
            if found is None:
                continue
            try:
                fd = os.open(
                    path[-1],
                    os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                    dir_fd=found[0],
                )
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError as e:
                if e.errno != errno.ELOOP:
                    raise
                continue
            try:
                os.chmod(fd, mode)
                os.utime(fd, ns=(mtime_ns, mtime_ns))
            finally:
                os.close(fd)


def _failed(shown: str, e: OSError) -> LayerError:
    return LayerError(
        f"layer entry {shown!r}: {e.strerror or e}",
        hint="the target directory may be on a filesystem that cannot hold it",
    )


def apply_layer(
    target: str | os.PathLike[str],
    layer: LayerSource,
    *,
    strip_absolute: bool = False,
    id_map: IdMap | None = None,
    same_owner: bool | None = None,
    expected_diff_id: Digest | str | None = None,
    record_owners: bool = False,
    _warnings: _Warnings | None = None,
) -> ApplyReport:
    """Apply one layer (path, binary file object or :func:`open_layer` stream) onto
    ``target`` (created if missing).

    ``same_owner`` restores uid/gid (default: when running as root); ``id_map`` shifts
    container ids to host ids (rootless snapshots); ``record_owners``: owners that are not
    restored are only recorded in the report (``owners``), without a warning.  The diff_id is computed while
    reading; with ``expected_diff_id`` a mismatch raises :class:`LayerError` *after*
    extraction, so apply into a fresh snapshot and discard it on error.
    """
    target_path = Path(target)
    try:
        target_path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise LayerError(f"cannot use {str(target_path)!r} as a target: {e.strerror}") from e
    stream = layer if isinstance(layer, LayerStream) else open_layer(layer)
    applier = _Applier(
        target_path,
        strip_absolute=strip_absolute,
        id_map=id_map,
        same_owner=(os.geteuid() == 0) if same_owner is None else same_owner,
        warnings=_warnings or _Warnings(),
        record_owners=record_owners,
    )
    try:
        reader = TarReader(stream)
        applier.run(reader)
        reader.drain()
    finally:
        if not isinstance(layer, LayerStream):
            stream.close()
    report = applier.report
    report.compression = stream.compression
    report.diff_id = Digest("sha256", stream.diff_id_hex)
    report.digest = Digest("sha256", stream.digest_hex)
    if expected_diff_id is not None and Digest.parse(str(expected_diff_id)) != report.diff_id:
        raise LayerError(
            f"layer diff_id mismatch: expected {expected_diff_id}, got {report.diff_id}",
            hint="the blob does not match the image config; the extracted tree is suspect",
        )
    return report


def apply_layers(
    target: str | os.PathLike[str], layers: Iterable[LayerSource], **options: Any
) -> list[ApplyReport]:
    """Apply a stack of layers, bottom first; limitations are reported once for the stack."""
    warnings = _Warnings()
    return [apply_layer(target, layer, _warnings=warnings, **options) for layer in layers]

"""Helpers for the layer codec tests: tree snapshots and hand-made tar streams."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
from collections.abc import Callable
from pathlib import Path

Snapshot = dict[str, tuple]


def snapshot(root: Path, *, mtime: Callable[[int], int] | None = None) -> Snapshot:
    """Everything a layer must reproduce, keyed by relative path (root itself excluded):
    type, mode, owner, size, content digest, link target, xattrs, mtime (whole seconds)
    and which paths share an inode."""
    out: Snapshot = {}
    inodes: dict[tuple[int, int], list[str]] = {}
    root_b = os.fsencode(root)
    for dirpath, dirnames, filenames in os.walk(root_b):
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            rel = os.fsdecode(os.path.relpath(path, root_b))
            st = os.lstat(path)
            secs = st.st_mtime_ns // 1_000_000_000
            if mtime is not None:
                secs = mtime(secs)
            content = None
            target = None
            if stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    content = hashlib.sha256(f.read()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                target = os.readlink(path)
            try:
                names = os.listxattr(path, follow_symlinks=False)
            except OSError:
                names = []
            xattrs = tuple(sorted((n, os.getxattr(path, n, follow_symlinks=False)) for n in names))
            size = st.st_size if stat.S_ISREG(st.st_mode) else 0
            rdev = st.st_rdev if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else 0
            out[rel] = (
                stat.S_IFMT(st.st_mode),
                stat.S_IMODE(st.st_mode),
                st.st_uid,
                st.st_gid,
                size,
                content,
                target,
                xattrs,
                secs,
                rdev,
            )
            if not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1:
                inodes.setdefault((st.st_dev, st.st_ino), []).append(rel)
    out["<hardlinks>"] = tuple(sorted(tuple(sorted(g)) for g in inodes.values()))
    return out


def outside_state(base: Path, exclude: Path) -> dict[str, tuple]:
    """Every path under ``base`` except the ``exclude`` subtree, with content and times,
    plus the names next to ``base`` (nothing may appear beside the test dir either)."""
    state: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(base):
        if Path(dirpath) == exclude or exclude in Path(dirpath).parents:
            dirnames[:] = []
            continue
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            if p == exclude:
                continue
            st = os.lstat(p)
            data = p.read_bytes() if p.is_file() and not p.is_symlink() else None
            state[str(p.relative_to(base))] = (st.st_mode, st.st_size, st.st_mtime_ns, data)
    state["<siblings>"] = tuple(sorted(os.listdir(base.parent)))
    return state


class TarBuilder:
    """Hand-made tar streams with :mod:`tarfile` (an independent writer)."""

    def __init__(self, fmt: int = tarfile.PAX_FORMAT) -> None:
        self.buf = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buf, mode="w", format=fmt)

    def _info(self, name: str, kind: bytes, **kw) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.mtime = kw.pop("mtime", 1_600_000_000)
        info.mode = kw.pop("mode", 0o755 if kind == tarfile.DIRTYPE else 0o644)
        for k, v in kw.items():
            setattr(info, k, v)
        return info

    def file(self, name: str, data: bytes = b"data", **kw) -> TarBuilder:
        info = self._info(name, tarfile.REGTYPE, **kw)
        info.size = len(data)
        self.tar.addfile(info, io.BytesIO(data))
        return self

    def dir(self, name: str, **kw) -> TarBuilder:
        self.tar.addfile(self._info(name, tarfile.DIRTYPE, **kw))
        return self

    def symlink(self, name: str, target: str, **kw) -> TarBuilder:
        self.tar.addfile(self._info(name, tarfile.SYMTYPE, linkname=target, mode=0o777, **kw))
        return self

    def hardlink(self, name: str, target: str, **kw) -> TarBuilder:
        self.tar.addfile(self._info(name, tarfile.LNKTYPE, linkname=target, **kw))
        return self

    def raw(self, data: bytes) -> TarBuilder:
        """Pre-encoded header+data blocks (for what tarfile refuses to write)."""
        self.tar.fileobj.write(data)
        self.tar.offset += len(data)
        return self

    def bytes(self) -> bytes:
        self.tar.close()
        return self.buf.getvalue()

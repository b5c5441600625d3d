"""File operations that must create files owned by container ids: extracting base layers,
executing COPY plans, writing layers and deleting trees.

As real root they run in-process. Rootless, the files must belong to subordinate host ids,
which only root *inside* the sandbox's user namespace can create, so the same code runs as
``python -m nbcontainer.sandbox.fileops`` through ``Sandbox.run_in_userns``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import BuildError

Op = list[Any]  # ["mkdir"|"file"|"data"|"symlink"|"extract", rel, ...]; see apply_ops


def _owner(path: str | int, uid: int, gid: int, mode: int | None, *, link: bool = False) -> None:
    if os.geteuid() == 0:
        os.chown(path, uid, gid, follow_symlinks=not link)
    if mode is not None and not link:
        os.chmod(path, mode)  # after chown, which clears set-id bits


def apply_ops(root: str, ops: Sequence[Op]) -> None:
    """Create the entries of a COPY plan below ``root`` (an empty diff dir).

    * ``["mkdir", rel, mode, uid, gid, mtime_ns]`` (exists: metadata updated)
    * ``["file", rel, src, mode, uid, gid, mtime_ns]``: content copied from host path ``src``
    * ``["data", rel, text, mode, uid, gid, mtime_ns]``: inline content (heredocs)
    * ``["symlink", rel, target, uid, gid, mtime_ns]``
    * ``["extract", rel, archive, uid, gid]``: a local tar (uid -1 = keep the archive's)
    """
    dir_times: list[tuple[str, int]] = []
    for op in ops:
        kind, rel = op[0], op[1]
        path = os.path.join(root, rel) if rel else root
        if kind == "mkdir":
            _, _, mode, uid, gid, mtime = op
            if not os.path.isdir(path) or os.path.islink(path):
                _remove(path)
                os.mkdir(path)
            _owner(path, uid, gid, mode)
            dir_times.append((path, mtime))
        elif kind in ("file", "data"):
            _, _, src, mode, uid, gid, mtime = op
            _remove(path)
            if kind == "file":
                shutil.copyfile(src, path, follow_symlinks=True)
            else:
                with open(path, "wb") as f:
                    f.write(src.encode("utf-8", "surrogateescape"))
            _owner(path, uid, gid, mode)
            os.utime(path, ns=(mtime, mtime))
        elif kind == "symlink":
            _, _, target, uid, gid, mtime = op
            _remove(path)
            os.symlink(target, path)
            _owner(path, uid, gid, None, link=True)
            os.utime(path, ns=(mtime, mtime), follow_symlinks=False)
        elif kind == "extract":
            _, _, archive, uid, gid = op
            _extract_archive(path, archive, uid, gid)
        else:  # pragma: no cover - plans are made by copy.py
            raise ValueError(f"unknown op {kind}")
    for path, mtime in reversed(dir_times):
        os.utime(path, ns=(mtime, mtime))


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def _extract_archive(dest: str, archive: str, uid: int, gid: int) -> None:
    from ..layers import apply_layer

    os.makedirs(dest, exist_ok=True)
    with open(archive, "rb") as raw:
        head = raw.read(6)
    src: str = archive
    tmp = None
    if head.startswith(b"BZh") or head.startswith(b"\xfd7zXZ\x00"):
        import bz2
        import lzma

        opener = bz2.open if head.startswith(b"BZh") else lzma.open
        fd, tmp = tempfile.mkstemp(prefix="nbadd-", dir=os.path.dirname(dest) or ".")
        with os.fdopen(fd, "wb") as out, opener(archive, "rb") as inp:
            shutil.copyfileobj(inp, out, 1 << 20)
        src = tmp
    try:
        before = set()
        if uid >= 0:
            for dirpath, dirnames, filenames in os.walk(dest):
                before.update(os.path.join(dirpath, n) for n in dirnames + filenames)
        apply_layer(dest, src, strip_absolute=True)
        if uid >= 0:
            for dirpath, dirnames, filenames in os.walk(dest):
                for n in dirnames + filenames:
                    p = os.path.join(dirpath, n)
                    if p not in before:
                        st = os.lstat(p)
                        _owner(p, uid, gid, None, link=True)
                        if not os.path.islink(p) and st.st_mode & 0o6000:
                            os.chmod(p, st.st_mode & 0o7777)
    finally:
        if tmp:
            os.unlink(tmp)


def extract_layers(target: str, blobs: Sequence[str]) -> None:
    from ..layers import apply_layers

    apply_layers(target, list(blobs))


def write_layer_file(root: str, out: str, epoch: int | None) -> dict[str, Any]:
    """The layer of a diff/upper dir into file ``out``. Inside the user namespace the kernel
    already reports container ids, so no id map is needed on either path."""
    from ..layers import write_layer

    with open(out, "wb") as f:
        info = write_layer(root, f, source_date_epoch=epoch, overlay_upper=True)
        f.flush()
        os.fsync(f.fileno())
    return {"digest": str(info.digest), "diff_id": str(info.diff_id), "size": info.size,
            "uncompressed_size": info.uncompressed_size, "media_type": info.media_type}


class FileOps:
    """Runs the operations above with the right ids: in-process as real root (or when no
    namespace is in use), through the sandbox's user namespace when rootless."""

    def __init__(self, sandbox: Any | None) -> None:
        self.sandbox = sandbox
        self.in_process = sandbox is None or not sandbox.rootless
        self._own = False

    @classmethod
    def for_current_user(cls) -> FileOps:
        """In-process as root; otherwise through a sandbox of its own (closed by ``close``)."""
        if os.geteuid() == 0:
            return cls(None)
        from .runner import Sandbox

        ops = cls(Sandbox(fork_server=False))
        ops._own = True
        return ops

    def close(self) -> None:
        if self._own and self.sandbox is not None:
            self.sandbox.close()

    def _call(self, args: list[str]) -> None:
        assert self.sandbox is not None
        code = self.sandbox.run_in_userns(
            [sys.executable, "-m", "nbcontainer.sandbox.fileops", *args])
        if code != 0:
            raise BuildError(f"file operation {args[0]} failed in the user namespace "
                             f"(exit status {code})")

    def extract(self, target: Path, blobs: Sequence[Path]) -> None:
        if self.in_process:
            extract_layers(str(target), [str(b) for b in blobs])
        else:
            self._call(["extract", str(target), *map(str, blobs)])

    def apply(self, root: Path, ops: Sequence[Op]) -> None:
        if self.in_process:
            apply_ops(str(root), ops)
            return
        with tempfile.NamedTemporaryFile("w", suffix=".json", dir=root.parent,
                                         delete=False) as f:
            json.dump(list(ops), f)
        try:
            self._call(["copy", str(root), f.name])
        finally:
            os.unlink(f.name)

    def write_layer(self, root: Path, out: Path, epoch: int | None) -> dict[str, Any]:
        if self.in_process:
            return write_layer_file(str(root), str(out), epoch)
        self._call(["layer", str(root), str(out), "-" if epoch is None else str(epoch)])
        with open(f"{out}.json") as f:
            info = json.load(f)
        os.unlink(f"{out}.json")
        return info

    def remove(self, path: Path) -> None:
        if not os.path.lexists(path):
            return
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
            return
        except PermissionError:
            if self.in_process:
                raise
        except FileNotFoundError:
            return
        assert self.sandbox is not None
        self.sandbox.run_in_userns(["rm", "-rf", "--", str(path)])


def main(argv: Sequence[str]) -> int:
    cmd, *rest = argv
    if cmd == "extract":
        extract_layers(rest[0], rest[1:])
    elif cmd == "copy":
        with open(rest[1]) as f:
            apply_ops(rest[0], json.load(f))
    elif cmd == "layer":
        info = write_layer_file(rest[0], rest[1], None if rest[2] == "-" else int(rest[2]))
        with open(f"{rest[1]}.json", "w") as f:
            json.dump(info, f)
    else:
        print(f"unknown command {cmd}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except Exception as exc:  # reported to the builder as a failing status
        print(f"nsexec: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)

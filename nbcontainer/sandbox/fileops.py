"""File operations that must create files owned by container ids: extracting base layers,
executing COPY plans, writing layers and deleting trees.

As real root they run in-process. Rootless, the files must belong to subordinate host ids,
which only root *inside* the sandbox's user namespace can create, so the same code runs as
``python -m nbcontainer.sandbox.fileops`` through ``Executor.run_in_userns``: the request
(``messages.FileOpsRequest``) goes in on stdin and the answer (a ``LayerRecord`` for a
layer) comes back on stdout, both through anonymous memory files.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import BuildError
from ..layers.info import LayerInfo
from ..layers.owners import owners_path, read_owners, write_owners
from ..oci.digest import Digest
from . import messages
from .vfs import force_remove

if TYPE_CHECKING:
    from .executor import Executor
    from .messages import CopyOp as Op
    from .messages import FileOpsRequest, LayerRecord
else:
    Op = tuple  # the checker sees messages.CopyOp; plans may build them as lists


def _owner(path: str | int, uid: int, gid: int, mode: int | None, *, link: bool = False) -> None:
    if os.geteuid() == 0:
        os.chown(path, uid, gid, follow_symlinks=not link)
    if mode is not None and not link:
        os.chmod(path, mode)  # after chown, which clears set-id bits


def apply_ops(root: str, ops: Sequence[Op],
              owners: dict[bytes, tuple[int, int]] | None = None) -> None:
    """Create the entries of a COPY plan below ``root`` (an empty diff dir); the kinds of
    op are defined in ``messages`` (``CopyOp``). A ``mkdir`` of an existing directory
    updates its metadata; an ``extract`` with uid -1 keeps the archive's owners.
    ``owners`` collects the owners of archive entries (for a tree's owners record)."""
    dir_times: list[tuple[str, int]] = []
    for op in ops:
        path = os.path.join(root, op[1]) if op[1] else root
        if op[0] == "mkdir":
            _, _, mode, uid, gid, mtime = op
            if not os.path.isdir(path) or os.path.islink(path):
                _remove(path)
                os.mkdir(path)
            _owner(path, uid, gid, mode)
            dir_times.append((path, mtime))
        elif op[0] == "file" or op[0] == "data":
            _put_file(path, op[0] == "file", *op[2:])
        elif op[0] == "symlink":
            _, _, target, uid, gid, mtime = op
            _remove(path)
            os.symlink(target, path)
            _owner(path, uid, gid, None, link=True)
            os.utime(path, ns=(mtime, mtime), follow_symlinks=False)
        elif op[0] == "link":  # another name of a file this plan created earlier
            _remove(path)
            os.link(os.path.join(root, op[2]), path)
        elif op[0] == "extract":
            _extract_archive(path, op[2], op[3], op[4], owners,
                             os.fsencode(op[1] + "/") if op[1] else b"")
        else:  # pragma: no cover - plans are made by the builder
            raise ValueError(f"unknown op {op[0]}")
    for path, mtime in reversed(dir_times):
        os.utime(path, ns=(mtime, mtime))


def _put_file(path: str, from_host: bool, src: str, mode: int, uid: int, gid: int,
              mtime: int) -> None:
    """A regular file whose content is host file ``src`` or (heredocs) the text ``src``."""
    _remove(path)
    if from_host:
        shutil.copyfile(src, path, follow_symlinks=True)
    else:
        with open(path, "wb") as f:
            f.write(src.encode("utf-8", "surrogateescape"))
    _owner(path, uid, gid, mode)
    os.utime(path, ns=(mtime, mtime))


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def _entries(root: str) -> Iterator[str]:
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            yield os.path.join(dirpath, name)


def _extract_archive(dest: str, archive: str, uid: int, gid: int,
                     owners: dict[bytes, tuple[int, int]] | None = None,
                     prefix: bytes = b"") -> None:
    from ..layers import apply_layer

    os.makedirs(dest, exist_ok=True)
    src, tmp = _decompressed(dest, archive)
    try:
        before = set(_entries(dest)) if uid >= 0 else set()
        report = apply_layer(dest, src, strip_absolute=True, record_owners=owners is not None)
        if owners is not None:
            for rel, ids in report.owners.items():
                owners[prefix + rel] = ids if uid < 0 else (uid, gid)
        if uid < 0:
            return
        for p in _entries(dest):
            if p not in before:
                st = os.lstat(p)
                _owner(p, uid, gid, None, link=True)
                if not os.path.islink(p) and st.st_mode & 0o6000:
                    os.chmod(p, st.st_mode & 0o7777)
    finally:
        if tmp:
            os.unlink(tmp)


def _decompressed(dest: str, archive: str) -> tuple[str, str | None]:
    """``archive`` as a file ``apply_layer`` reads (it knows gzip and zstd, not bzip2 or
    xz); the second value is a temporary file to delete afterwards."""
    with open(archive, "rb") as raw:
        head = raw.read(6)
    if not (head.startswith(b"BZh") or head.startswith(b"\xfd7zXZ\x00")):
        return archive, None
    import bz2
    import lzma

    opener = bz2.open if head.startswith(b"BZh") else lzma.open
    fd, tmp = tempfile.mkstemp(prefix="nbadd-", dir=os.path.dirname(dest) or ".")
    with os.fdopen(fd, "wb") as out, opener(archive, "rb") as inp:
        shutil.copyfileobj(inp, out, 1 << 20)
    return tmp, tmp


def extract_layers(target: str, blobs: Sequence[str]) -> None:
    from ..layers import apply_layers

    apply_layers(target, list(blobs))


def write_layer_file(root: str, out: str, epoch: int | None, *, layer_format: bool = False,
                     owners: Mapping[bytes, tuple[int, int]] | None = None) -> LayerInfo:
    """The layer of a diff/upper dir into file ``out``. Inside the user namespace the kernel
    already reports container ids, so no id map is needed on either path. ``layer_format``:
    a diff dir of tree copies (``.wh.`` files already); ``owners``: from a record."""
    from ..layers import write_layer

    with open(out, "wb") as f:
        info = write_layer(root, f, source_date_epoch=epoch, overlay_upper=not layer_format,
                           whiteout_files=layer_format, owners=owners)
        f.flush()
        os.fsync(f.fileno())
    return info


def layer_record(info: LayerInfo) -> LayerRecord:
    return {"digest": str(info.digest), "diff_id": str(info.diff_id), "size": info.size,
            "uncompressed_size": info.uncompressed_size, "media_type": info.media_type}


def layer_info(record: LayerRecord) -> LayerInfo:
    return LayerInfo(Digest.parse(record["digest"]), Digest.parse(record["diff_id"]),
                     record["size"], record["uncompressed_size"], record["media_type"])


class FileOps:
    """Runs the operations above with the right ids: in-process as real root (or when no
    namespace is in use), through the executor's user namespace when rootless.

    When the executor keeps ownership in records (no namespace, or a single-id map), every
    file belongs to the caller: operations run in-process, extraction and COPY write the
    owners record of their tree, and layers take their owners from it. The executor is
    asked lazily, so merely opening a build probes nothing."""

    def __init__(self, sandbox: Executor | None) -> None:
        self.sandbox = sandbox
        self._own = False

    @property
    def in_process(self) -> bool:
        return self.sandbox is None or not self.sandbox.rootless

    @property
    def records(self) -> bool:
        return self.sandbox is not None and self.sandbox.records

    @property
    def vfs(self) -> bool:
        return self.sandbox is not None and self.sandbox.vfs

    @classmethod
    def for_current_user(cls) -> FileOps:
        """In-process as root; otherwise through an executor of its own (closed by
        ``close``)."""
        if os.geteuid() == 0:
            return cls(None)
        from .factory import open_executor

        ops = cls(open_executor(warm=False))
        ops._own = True
        return ops

    def close(self) -> None:
        if self._own and self.sandbox is not None:
            self.sandbox.close()

    def _call(self, request: FileOpsRequest) -> bytes:
        """Run ``request`` in the user namespace; its answer (stdout)."""
        assert self.sandbox is not None
        with _memfile(messages.encode(request)) as stdin, _memfile() as stdout:
            code = self.sandbox.run_in_userns(
                [sys.executable, "-m", "nbcontainer.sandbox.fileops"], stdin=stdin,
                stdout=stdout)
            if code != 0:
                raise BuildError(f"file operation {request['op']} failed in the user "
                                 f"namespace (exit status {code})",
                                 hint="its error message is printed above")
            os.lseek(stdout, 0, os.SEEK_SET)
            return _read_all(stdout)

    def extract(self, target: Path, blobs: Sequence[Path]) -> None:
        if self.records:
            from ..layers import apply_layers

            owners: dict[bytes, tuple[int, int]] = {}
            for report in apply_layers(str(target), [str(b) for b in blobs], same_owner=False,
                                      record_owners=True):
                owners.update(report.owners)
            write_owners(target, owners)
        elif self.in_process:
            extract_layers(str(target), [str(b) for b in blobs])
        else:
            self._call({"op": "extract", "target": str(target), "blobs": [str(b) for b in blobs]})

    def apply(self, root: Path, ops: Sequence[Op]) -> None:
        if self.records:
            archived: dict[bytes, tuple[int, int]] = {}
            apply_ops(str(root), ops, archived)
            write_owners(root, {**plan_owners(ops), **archived})
        elif self.in_process:
            apply_ops(str(root), ops)
        else:
            self._call({"op": "copy", "root": str(root), "ops": list(ops)})

    def write_layer(self, root: Path, out: Path, epoch: int | None) -> LayerInfo:
        if self.records or self.vfs:
            owners = read_owners(root) if self.records else None
            return write_layer_file(str(root), str(out), epoch, layer_format=self.vfs,
                                    owners=owners)
        if self.in_process:
            return write_layer_file(str(root), str(out), epoch)
        answer = self._call({"op": "layer", "root": str(root), "out": str(out), "epoch": epoch})
        return layer_info(messages.decode_layer(answer))

    def remove(self, path: Path) -> None:
        if not os.path.lexists(path):
            return
        owners_path(path).unlink(missing_ok=True)
        if self.records:
            force_remove(path)
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


def plan_owners(ops: Sequence[Op]) -> dict[bytes, tuple[int, int]]:
    """The owners a COPY plan gives its entries (the record of its diff dir)."""
    owners: dict[bytes, tuple[int, int]] = {}
    for op in ops:
        if op[0] == "extract":
            continue  # an archive's entries are recorded as it is extracted
        if op[0] == "link":  # another name of an inode: its owner
            owners[os.fsencode(op[1])] = owners.get(os.fsencode(op[2]), (0, 0))
            continue
        uid, gid = (op[4], op[5]) if op[0] in ("file", "data") else (op[3], op[4])
        owners[os.fsencode(op[1])] = (uid, gid)
    return owners


class _memfile:
    """An anonymous in-memory file (memfd), optionally holding ``data``, closed on exit."""

    def __init__(self, data: bytes = b"") -> None:
        self.fd = os.memfd_create("nbcontainer-fileops", os.MFD_CLOEXEC)
        if data:
            os.write(self.fd, data)
            os.lseek(self.fd, 0, os.SEEK_SET)

    def __enter__(self) -> int:
        return self.fd

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def serve_request(request: FileOpsRequest) -> bytes:
    """Do one request in this process; the answer to write back."""
    if request["op"] == "extract":
        extract_layers(request["target"], request["blobs"])
    elif request["op"] == "copy":
        apply_ops(request["root"], request["ops"])
    elif request["op"] == "layer":
        info = write_layer_file(request["root"], request["out"], request["epoch"])
        return messages.encode(layer_record(info))
    return b""


def main() -> int:
    """The user-namespace side: a request on stdin, the answer on stdout."""
    answer = serve_request(messages.decode_fileops(sys.stdin.buffer.read()))
    sys.stdout.buffer.write(answer)
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as exc:  # reported to the builder as a failing status
        print(f"fileops: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)

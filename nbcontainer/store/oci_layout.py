"""OCI image layouts: a directory (``oci-dir``) or a tar of one (``oci-archive``).

Export writes ``oci-layout``, ``index.json`` and ``blobs/<alg>/<hex>``; each image's entry in
``index.json`` carries ``org.opencontainers.image.ref.name`` (the tag, as skopeo's
``oci:DIR:TAG`` expects) and ``io.containerd.image.name`` (the full name, containerd's
convention) so a later import restores the full reference.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ..errors import DigestMismatch, ImageFormatError, ReferenceFormatError
from ..oci import canonical, validate
from ..oci import mediatypes as mt
from ..oci.descriptor import Descriptor, frozen_map
from ..oci.digest import Digest
from ..oci.manifest import Index
from ..oci.reference import Reference
from .archive_io import TarSink, atomic_output, iter_members, reading_member
from .store import Store

LAYOUT_FILE = "oci-layout"
LAYOUT_BODY = b'{"imageLayoutVersion":"1.0.0"}'
REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"


@dataclass(frozen=True)
class ExportItem:
    """One image to export: the digest in the store and the name it is exported under."""

    digest: Digest
    ref: Reference | None


def _index_entry(store: Store, item: ExportItem) -> Descriptor:
    parsed = store.read_manifest(item.digest)
    size = store.blobs.size(item.digest)
    annotations: dict[str, str] = {}
    if item.ref is not None and item.ref.tag:
        annotations[REF_NAME] = item.ref.tag
        annotations[CONTAINERD_NAME] = str(item.ref)
    platform = None
    if parsed.media_type in mt.MANIFEST_TYPES:
        platform = store.read_config(parsed).platform  # type: ignore[arg-type]
    return Descriptor(parsed.media_type, item.digest, size,
                      annotations=frozen_map(annotations), platform=platform)


def layout_index(store: Store, items: Iterable[ExportItem]) -> bytes:
    entries = [_index_entry(store, it) for it in items]
    return Index(tuple(entries)).to_bytes()


def export_dir(store: Store, items: list[ExportItem], dest: Path) -> None:
    """Write (or add to) an OCI layout directory. Blobs are hardlinked when possible."""
    dest.mkdir(parents=True, exist_ok=True)
    (dest / LAYOUT_FILE).write_bytes(LAYOUT_BODY)
    for item in items:
        for dig in store.blobs_of(item.digest):
            target = dest / "blobs" / dig.algorithm / dig.hex
            if target.exists():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            src = store.blobs.path(dig)
            tmp = target.with_name(f".{dig.hex}.tmp")
            try:
                os.link(src, tmp)
            except OSError:
                shutil.copyfile(src, tmp)
            os.replace(tmp, target)
    existing: list[Descriptor] = []
    index_path = dest / "index.json"
    if index_path.exists():  # keep entries of other images already in the layout
        old = Index.from_dict(canonical.loads(index_path.read_bytes(), str(index_path)))
        names = {it.ref.tag for it in items if it.ref is not None}
        existing = [d for d in old.manifests if d.ref_name not in names]
    entries = existing + [_index_entry(store, it) for it in items]
    tmp_index = dest / ".index.json.tmp"
    tmp_index.write_bytes(Index(tuple(entries)).to_bytes())
    os.replace(tmp_index, index_path)


def export_archive(store: Store, items: list[ExportItem], dest: Path, *, mtime: int = 0) -> None:
    """Write an oci-archive tar atomically (no half-written file on failure)."""
    with atomic_output(dest) as out:
        sink = TarSink(out.file, mtime)
        sink.add_bytes(LAYOUT_FILE, LAYOUT_BODY)
        sink.add_bytes("index.json", layout_index(store, items))
        written: set[Digest] = set()
        for item in items:
            for dig in store.blobs_of(item.digest):
                if dig in written:
                    continue
                written.add(dig)
                with store.blobs.open(dig) as f:
                    sink.add_file(f"blobs/{dig.algorithm}/{dig.hex}", f, store.blobs.size(dig))
        sink.close()
        out.publish()


# ---------------------------------------------------------------------------- import
def _entry_tag(desc: Descriptor) -> str | None:
    """The full reference an index.json entry names, if any."""
    for key in (CONTAINERD_NAME, REF_NAME):
        name = desc.annotations.get(key)
        if not name:
            continue
        try:
            ref = Reference.parse(name)
        except ReferenceFormatError:
            continue
        # a bare tag ("latest") parses as docker.io/library/latest: only trust full names
        if key == REF_NAME and "/" not in name and ":" not in name:
            continue
        return str(ref)
    return None


_CORRUPT = "the archive is corrupt or was written by a broken tool; nothing from it was tagged"


def check_layout_file(data: bytes | None, where: str) -> None:
    """``oci-layout``: ``{"imageLayoutVersion": "1.0.0"}`` (any 1.x is read)."""
    if data is None:
        return  # docker save before Docker 25 and some tools write none
    doc = validate.obj(canonical.loads(data, where), where)
    version = validate.string(doc, "imageLayoutVersion", where, need=True)
    if not (version or "").startswith("1."):
        raise ImageFormatError(f"{where}: unsupported imageLayoutVersion {version!r}",
                               hint="OCI image layouts of version 1.x are supported")


def import_index(store: Store, index_bytes: bytes, where: str) -> list[tuple[Digest, list[str]]]:
    """Register each image an ``index.json`` lists (its blobs must already be stored). All of
    them are checked before the first is tagged: a bad archive leaves no tag behind."""
    index = Index.from_dict(canonical.loads(index_bytes, where), where=where)
    todo: list[tuple[Descriptor, bytes, list[str]]] = []
    for i, desc in enumerate(index.manifests):
        if not (desc.is_manifest or desc.is_index):
            continue
        entry = f"{where}.manifests[{i}]"
        if not store.blobs.has(desc.digest):
            raise ImageFormatError(f"{entry}: manifest {desc.digest} is listed but missing")
        data = store.blobs.read(desc.digest)
        if len(data) != desc.size:
            raise ImageFormatError(f"{entry}: manifest {desc.digest} is {len(data)} bytes, "
                                   f"the index says {desc.size}")
        with validate.context(f"{entry} ({desc.digest})", _CORRUPT):
            store.check_image(data, desc.media_type)
        tag = _entry_tag(desc)
        todo.append((desc, data, [tag] if tag else []))
    out: list[tuple[Digest, list[str]]] = []
    for desc, data, tags in todo:
        store.add_image(data, tags=tags, media_type=desc.media_type)
        out.append((desc.digest, tags))
    return out


def import_dir(store: Store, src: Path) -> list[tuple[Digest, list[str]]]:
    if not (src / LAYOUT_FILE).is_file() or not (src / "index.json").is_file():
        raise ImageFormatError(
            f"{src} is not an OCI image layout (needs oci-layout and index.json)",
        )
    check_layout_file((src / LAYOUT_FILE).read_bytes(), str(src / LAYOUT_FILE))
    with store.operation():
        blob_root = src / "blobs"
        for alg_dir in sorted(blob_root.iterdir()) if blob_root.is_dir() else ():
            if not alg_dir.is_dir() or alg_dir.is_symlink():
                continue  # not a blobs/<algorithm> directory: nothing the index can name
            for p in sorted(alg_dir.iterdir()):
                dig = blob_member_digest(f"blobs/{alg_dir.name}/{p.name}")
                if dig is None:
                    continue
                if not p.is_file() or p.is_symlink():
                    raise ImageFormatError(f"{p}: blob is not a regular file")
                with open(p, "rb") as f:
                    _put_blob(store, f, dig, None, str(p))
        return import_index(store, (src / "index.json").read_bytes(), str(src / "index.json"))


def blob_member_digest(name: str) -> Digest | None:
    parts = name.split("/")
    if len(parts) == 3 and parts[0] == "blobs":
        try:
            return Digest.parse(f"{parts[1]}:{parts[2]}")
        except ReferenceFormatError:
            return None
    return None


def _put_blob(store: Store, f: IO[bytes], dig: Digest | None, size: int | None,
              where: str) -> Digest:
    """One blob of an archive or layout into the store, verified against its name."""
    try:
        with store.blobs.writer(dig, size) as w:
            w.copy_from(f)
            return w.commit()
    except DigestMismatch as e:
        raise DigestMismatch(f"{where}: {e.message}", hint="the archive is corrupt or was "
                             "modified; nothing from it was tagged") from None


# What an archive may hold in memory (index.json, manifest.json, small JSON members); the
# rest streams into the store.
MAX_METADATA = 64 << 20


def import_archive_members(store: Store, path: Path) -> dict[str, bytes | Digest]:
    """Stream every member of an archive into the store.

    ``blobs/<alg>/<hex>`` members are verified against their names; other regular files are
    kept in memory when small (JSON metadata) or stored as blobs under their computed digest
    (legacy ``layer.tar``). Returns name → bytes or digest. Nothing is ever written to disk by
    member name, so hostile names cannot escape anywhere.
    """
    found: dict[str, bytes | Digest] = {}
    in_memory = 0
    for name, member, tar in iter_members(path):
        f = tar.extractfile(member)
        if f is None:
            continue
        where = f"{path}:{name}"
        with reading_member(path, name):
            dig = blob_member_digest(name)
            if dig is not None:
                if not store.blobs.has(dig):
                    _put_blob(store, f, dig, member.size, where)
                found[name] = dig
            elif member.size <= 8 << 20 and (name.endswith(".json") or "/" not in name):
                in_memory += member.size
                if in_memory > MAX_METADATA:
                    raise ImageFormatError(f"{path}: more than {MAX_METADATA} bytes of "
                                           "metadata files; refused")
                found[name] = f.read()
            else:
                found[name] = _put_blob(store, f, None, member.size, where)
    check_layout_file(_bytes(found.get(LAYOUT_FILE)), f"{path}:{LAYOUT_FILE}")
    return found


def _bytes(value: bytes | Digest | None) -> bytes | None:
    return value if isinstance(value, bytes) else None


def import_archive(store: Store, path: Path) -> list[tuple[Digest, list[str]]]:
    with store.operation():
        found = import_archive_members(store, path)
        index = found.get("index.json")
        if not isinstance(index, bytes):
            raise ImageFormatError(f"{path}: not an OCI archive (no index.json)")
        return import_index(store, index, f"{path}:index.json")

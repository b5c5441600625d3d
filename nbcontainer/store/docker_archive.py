"""``docker save`` archives (``docker-archive``), written the way Docker 25+ writes them.

The tar holds an OCI layout whose layers are *uncompressed* (``blobs/sha256/<diff_id>``), plus
the legacy ``manifest.json`` and ``repositories`` that ``docker load``, ``podman load`` and
skopeo's ``docker-archive:`` read. Import accepts that and the older per-layer-directory form.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from ..errors import ImageFormatError, ReferenceFormatError
from ..layers import open_layer
from ..oci import canonical, validate
from ..oci import mediatypes as mt
from ..oci.config import ImageConfig
from ..oci.descriptor import Descriptor
from ..oci.digest import Digest
from ..oci.manifest import Index, Manifest
from ..oci.reference import Reference
from .archive_io import TarSink, atomic_output
from .oci_layout import (
    _CORRUPT,
    CONTAINERD_NAME,
    LAYOUT_BODY,
    LAYOUT_FILE,
    REF_NAME,
    import_archive_members,
    import_index,
)
from .store import Store, StoredImage

_SPOOL = 64 << 20


def _uncompressed(store: Store, desc: Descriptor) -> tempfile.SpooledTemporaryFile[bytes]:
    """docker-archive layers are plain tars; the codec knows gzip/zstd/plain by magic."""
    spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL)
    with store.blobs.open(desc.digest) as raw, open_layer(raw) as tar:
        while chunk := tar.read(1 << 20):
            spool.write(chunk)
    spool.seek(0)
    return spool


def export_archive(
    store: Store, images: list[tuple[StoredImage, list[Reference]]], dest: Path, *, mtime: int = 0
) -> None:
    with atomic_output(dest) as out:
        sink = TarSink(out.file, mtime)
        sink.add_bytes(LAYOUT_FILE, LAYOUT_BODY)
        legacy: list[dict[str, Any]] = []
        repositories: dict[str, dict[str, str]] = {}
        index_entries: list[Descriptor] = []
        written: set[Digest] = set()
        for image, refs in images:
            config_bytes = store.blobs.read(image.manifest.config.digest)
            cfg_dig = image.manifest.config.digest
            if cfg_dig not in written:
                sink.add_bytes(f"blobs/{cfg_dig.algorithm}/{cfg_dig.hex}", config_bytes)
                written.add(cfg_dig)
            layer_descs: list[Descriptor] = []
            for desc, diff_id in zip(image.manifest.layers, image.config.diff_ids, strict=False):
                with _uncompressed(store, desc) as spool:
                    size = spool.seek(0, 2)
                    spool.seek(0)
                    if diff_id not in written:
                        sink.add_file(f"blobs/{diff_id.algorithm}/{diff_id.hex}", spool, size)
                        written.add(diff_id)
                layer_descs.append(Descriptor(mt.OCI_LAYER, diff_id, size))
            manifest = Manifest(
                Descriptor(mt.OCI_CONFIG, cfg_dig, len(config_bytes)), tuple(layer_descs)
            )
            mbytes = manifest.to_bytes()
            mdig = Digest.of(mbytes)
            if mdig not in written:
                sink.add_bytes(f"blobs/{mdig.algorithm}/{mdig.hex}", mbytes)
                written.add(mdig)
            layer_paths = [f"blobs/{d.digest.algorithm}/{d.digest.hex}" for d in layer_descs]
            legacy.append({
                "Config": f"blobs/{cfg_dig.algorithm}/{cfg_dig.hex}",
                "RepoTags": [r.familiar for r in refs] or None,
                "Layers": layer_paths,
            })
            for r in refs:
                if layer_descs:
                    repositories.setdefault(r.familiar_repository, {})[r.tag or "latest"] = (
                        layer_descs[-1].digest.hex
                    )
            if refs:
                for r in refs:
                    ann = {CONTAINERD_NAME: str(r), REF_NAME: r.tag or "latest"}
                    index_entries.append(Descriptor(mt.OCI_MANIFEST, mdig, len(mbytes),
                                                    annotations=ann))
            else:
                index_entries.append(Descriptor(mt.OCI_MANIFEST, mdig, len(mbytes)))
        sink.add_bytes("index.json", Index(tuple(index_entries)).to_bytes())
        sink.add_bytes("manifest.json", json.dumps(legacy, separators=(",", ":")).encode())
        sink.add_bytes("repositories", json.dumps(repositories, separators=(",", ":")).encode())
        sink.close()
        out.publish()


def _layer_media_type(store: Store, digest: Digest) -> str:
    with store.blobs.open(digest) as f:
        magic = f.read(4)
    if magic[:2] == b"\x1f\x8b":
        return mt.OCI_LAYER_GZIP
    if magic == b"\x28\xb5\x2f\xfd":
        return mt.OCI_LAYER_ZSTD
    return mt.OCI_LAYER


def import_archive(store: Store, path: Path) -> list[tuple[Digest, list[str]]]:
    """Load a docker-save tar (or an OCI archive, which ``docker load`` also accepts)."""
    with store.operation():
        found = import_archive_members(store, path)
        legacy = found.get("manifest.json")
        if isinstance(legacy, bytes):
            return _import_legacy(store, legacy, found, path)
        index = found.get("index.json")
        if isinstance(index, bytes):
            return import_index(store, index, f"{path}:index.json")
        raise ImageFormatError(
            f"{path}: neither a docker-save archive (manifest.json) nor an OCI archive (index.json)"
        )


def _import_legacy(
    store: Store, legacy_bytes: bytes, found: dict[str, bytes | Digest], path: Path
) -> list[tuple[Digest, list[str]]]:
    """``manifest.json``: ``[{"Config": name, "RepoTags": [..] | null, "Layers": [names]}]``.
    Every image is checked before the first is tagged."""
    where = f"{path}:manifest.json"
    entries = canonical.loads(legacy_bytes, where)
    if not isinstance(entries, list):
        raise validate.expected(where, "a list of images", entries)
    todo = [_legacy_image(store, entry, found, f"{where}[{i}]")
            for i, entry in enumerate(entries)]
    out: list[tuple[Digest, list[str]]] = []
    for manifest_bytes, tags in todo:
        digest = store.add_image(manifest_bytes, tags=tags)
        out.append((digest, tags))
    return out


def _member(found: dict[str, bytes | Digest], name: str, where: str, what: str) -> bytes | Digest:
    value = found.get(name)
    if value is None:
        raise ImageFormatError(f"{where}: {what} {name!r} is not in the archive")
    return value


def _legacy_image(store: Store, entry: object, found: dict[str, bytes | Digest], where: str
                  ) -> tuple[bytes, list[str]]:
    """One entry of ``manifest.json`` as an OCI manifest (blobs stored, checked) and its tags."""
    entry = validate.obj(entry, where)
    config_name = validate.string(entry, "Config", where, need=True)
    assert config_name is not None
    cfg = _member(found, config_name, where, "config")
    cfg_bytes = store.blobs.read(cfg) if isinstance(cfg, Digest) else cfg
    with validate.context(f"{where}: config {config_name!r}", _CORRUPT):
        config = ImageConfig.from_bytes(cfg_bytes)
    cfg_dig = store.blobs.put(cfg_bytes)
    layers: list[Descriptor] = []
    for j, lpath in enumerate(validate.string_list(entry, "Layers", where) or ()):
        dig = _member(found, lpath, f"{where}.Layers[{j}]", "layer")
        if isinstance(dig, bytes):
            dig = store.blobs.put(dig)
        media_type = _layer_media_type(store, dig)
        if media_type == mt.OCI_LAYER and j < len(config.diff_ids) and config.diff_ids[j] != dig:
            raise ImageFormatError(
                f"{where}.Layers[{j}]: layer {lpath!r} is {dig}, but the config says "
                f"{config.diff_ids[j]}", hint="the archive is corrupt or was modified",
            )
        layers.append(Descriptor(media_type, dig, store.blobs.size(dig)))
    manifest = Manifest(Descriptor(mt.OCI_CONFIG, cfg_dig, len(cfg_bytes)), tuple(layers))
    tags = []
    for k, text in enumerate(validate.string_list(entry, "RepoTags", where) or ()):
        try:
            tags.append(str(Reference.parse(text)))
        except ReferenceFormatError as e:
            raise ImageFormatError(f"{where}.RepoTags[{k}]: {e.message}", hint=e.hint) from None
    data = manifest.to_bytes()
    with validate.context(where, _CORRUPT):
        store.check_image(data)
    return data, tags

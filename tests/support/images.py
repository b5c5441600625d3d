"""Tiny hand-made images: tar layers built with the stdlib (so store and registry tests do not
depend on nbcontainer's own layer writer), configs, manifests, images in a store, OCI layouts."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import zstandard

from nbcontainer.oci import ContainerConfig, Descriptor, History, ImageConfig, Manifest
from nbcontainer.oci import mediatypes as mt
from nbcontainer.oci.digest import Digest
from nbcontainer.store import Store


def tar_layer(files: dict[str, bytes]) -> bytes:
    """A tar of regular files (mode 0644, mtime 0)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def tar_bytes(files: dict[str, bytes | None]) -> bytes:
    """A tar with the given files (None = directory)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(files.items()):
            ti = tarfile.TarInfo(name)
            ti.mtime = 0
            if data is None:
                ti.type = tarfile.DIRTYPE
                ti.mode = 0o755
                tar.addfile(ti)
            else:
                ti.size = len(data)
                ti.mode = 0o644
                tar.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def make_image(
    store: Store,
    layers: list[dict[str, bytes | None]],
    *,
    tag: str | None = None,
    cmd: tuple[str, ...] = ("/bin/sh",),
    arch: str = "amd64",
    created: str = "2024-01-01T00:00:00Z",
) -> Digest:
    """An image of gzip layers (one per dict) in ``store``, tagged ``tag``; its digest."""
    descs, diff_ids, history = [], [], []
    for i, files in enumerate(layers):
        raw = tar_bytes(files)
        gz = gzip.compress(raw, mtime=0)
        descs.append(Descriptor(mt.OCI_LAYER_GZIP, store.blobs.put(gz), len(gz)))
        diff_ids.append(Digest.of(raw))
        history.append(History(created=created, created_by=f"layer {i}"))
    cfg = ImageConfig(architecture=arch, os="linux", created=created,
                      config=ContainerConfig(cmd=cmd, env=("PATH=/usr/bin:/bin",)),
                      diff_ids=tuple(diff_ids), history=tuple(history))
    cb = cfg.to_bytes()
    manifest = Manifest(Descriptor(mt.OCI_CONFIG, store.blobs.put(cb), len(cb)), tuple(descs))
    return store.add_image(manifest.to_bytes(), tags=[tag] if tag else [])


def compress(data: bytes, how: str) -> bytes:
    if how == "gzip":
        return gzip.compress(data, mtime=0)
    if how == "zstd":
        return zstandard.ZstdCompressor().compress(data)
    return data


def _layer_type(how: str, docker: bool) -> str:
    if docker:
        return mt.DOCKER_LAYER_GZIP
    return {"gzip": mt.OCI_LAYER_GZIP, "zstd": mt.OCI_LAYER_ZSTD, "": mt.OCI_LAYER}[how]


def image_blobs(
    layers: list[dict[str, bytes]], *, compression: str = "gzip", docker: bool = False,
    arch: str = "amd64", raw_layers: list[bytes] | None = None,
) -> tuple[bytes, dict[Digest, bytes]]:
    """(manifest bytes, {digest: blob}) of an image with the given files per layer."""
    blobs: dict[Digest, bytes] = {}
    descs, diff_ids = [], []
    tars = raw_layers if raw_layers is not None else [tar_layer(f) for f in layers]
    for tar in tars:
        data = compress(tar, compression)
        d = Digest.of(data)
        blobs[d] = data
        diff_ids.append(str(Digest.of(tar)))
        descs.append({"mediaType": _layer_type(compression, docker), "digest": str(d),
                      "size": len(data)})
    config = json.dumps({
        "architecture": arch, "os": "linux",
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/usr/bin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": "test"} for _ in tars],
    }, sort_keys=True).encode()
    cd = Digest.of(config)
    blobs[cd] = config
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": mt.DOCKER_MANIFEST if docker else mt.OCI_MANIFEST,
        "config": {"mediaType": mt.DOCKER_CONFIG if docker else mt.OCI_CONFIG,
                   "digest": str(cd), "size": len(config)},
        "layers": descs,
    }, indent=2).encode()
    return manifest, blobs


def store_image(store: Store, name: str, layers: list[dict[str, bytes]], **kw) -> Digest:
    manifest, blobs = image_blobs(layers, **kw)
    for d, data in blobs.items():
        store.blobs.put(data, d)
    return store.add_image(manifest, tags=[name])


def store_index(store: Store, name: str, arches: list[str], *, docker: bool = False) -> Digest:
    entries = []
    for arch in arches:
        manifest, blobs = image_blobs([{f"etc/{arch}": arch.encode()}], arch=arch, docker=docker)
        for d, data in blobs.items():
            store.blobs.put(data, d)
        md = store.blobs.put(manifest)
        entries.append({"mediaType": mt.DOCKER_MANIFEST if docker else mt.OCI_MANIFEST,
                        "digest": str(md), "size": len(manifest),
                        "platform": {"architecture": arch, "os": "linux"}})
    index = json.dumps({"schemaVersion": 2,
                        "mediaType": mt.DOCKER_MANIFEST_LIST if docker else mt.OCI_INDEX,
                        "manifests": entries}).encode()
    return store.add_image(index, tags=[name])


def write_layout(root: Path, tag: str, manifests: list[tuple[bytes, dict[Digest, bytes], str]],
                 *, index: bool = False) -> None:
    """An OCI layout with one tag: one manifest, or (``index``) an image index of several
    (each entry: manifest bytes, blobs, arch)."""
    (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')

    def put(data: bytes) -> Digest:
        d = Digest.of(data)
        (root / "blobs" / "sha256" / d.hex).write_bytes(data)
        return d

    entries = []
    for mbytes, blobs, arch in manifests:
        for data in blobs.values():
            put(data)
        md = put(mbytes)
        mtype = json.loads(mbytes)["mediaType"]
        entries.append({"mediaType": mtype, "digest": str(md), "size": len(mbytes),
                        "platform": {"architecture": arch, "os": "linux"}})
    if index:
        idx = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX,
                          "manifests": entries}).encode()
        top = {"mediaType": mt.OCI_INDEX, "digest": str(put(idx)), "size": len(idx)}
    else:
        top = {k: v for k, v in entries[0].items() if k != "platform"}
    top["annotations"] = {"org.opencontainers.image.ref.name": tag}
    (root / "index.json").write_text(json.dumps(
        {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [top]}))

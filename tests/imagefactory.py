"""Test helper: small hand-made images in a store (tar layers built with the stdlib, so store
tests do not depend on nbcontainer's own layer writer)."""

from __future__ import annotations

import gzip
import io
import tarfile

from nbcontainer.oci import ContainerConfig, Descriptor, History, ImageConfig, Manifest, mediatypes
from nbcontainer.oci.digest import Digest
from nbcontainer.store import Store


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
    descs, diff_ids, history = [], [], []
    for i, files in enumerate(layers):
        raw = tar_bytes(files)
        gz = gzip.compress(raw, mtime=0)
        descs.append(Descriptor(mediatypes.OCI_LAYER_GZIP, store.blobs.put(gz), len(gz)))
        diff_ids.append(Digest.of(raw))
        history.append(History(created=created, created_by=f"layer {i}"))
    cfg = ImageConfig(architecture=arch, os="linux", created=created,
                      config=ContainerConfig(cmd=cmd, env=("PATH=/usr/bin:/bin",)),
                      diff_ids=tuple(diff_ids), history=tuple(history))
    cb = cfg.to_bytes()
    manifest = Manifest(Descriptor(mediatypes.OCI_CONFIG, store.blobs.put(cb), len(cb)), tuple(descs))
    return store.add_image(manifest.to_bytes(), tags=[tag] if tag else [])

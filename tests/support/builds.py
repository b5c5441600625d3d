"""Reading what a build made: context files written, an image flattened the way podman/umoci
would, a directory as a comparable tree, the members of an image's layers, and which steps
ran or came from the cache."""

from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
from pathlib import Path

from nbcontainer.image import Image
from nbcontainer.progress import Collector


def write(ctx: Path, files: dict[str, str | bytes]) -> None:
    for name, data in files.items():
        p = ctx / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            p.write_bytes(data)
        else:
            p.write_text(data)


def flatten(img: Image, dest: Path) -> Path:
    from nbcontainer.layers import apply_layers

    apply_layers(dest, [img.store.blobs.path(layer.digest) for layer in img.manifest.layers])
    return dest


def tree(root: Path) -> dict[str, tuple]:
    """path → (type, mode, uid, gid, size or link target, content) of a flattened tree."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("l", 0, st.st_uid, st.st_gid, os.readlink(p), None)
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("d", stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, 0, None)
            else:
                out[rel] = ("f", stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_size,
                            p.read_bytes() if st.st_size < 4096 else None)
    return out


def layer_members(img: Image) -> list[tuple[tarfile.TarInfo, bytes]]:
    out = []
    for layer in img.manifest.layers:
        raw = img.store.blobs.path(layer.digest).read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        with tarfile.open(fileobj=io.BytesIO(raw)) as tf:
            for m in tf.getmembers():
                data = tf.extractfile(m).read() if m.isfile() else b""  # type: ignore[union-attr]
                out.append((m, data))
    return out


def statuses(events: Collector) -> list[str]:
    """'run'/'cached' per numbered step after FROM."""
    out = {}
    for e in events.events:
        if e.kind == "cached":
            out[e.id] = "cached"
        elif e.kind == "done" and e.id not in out:
            out[e.id] = "run"
    return [v for k, v in sorted(out.items(), key=lambda kv: int(kv[0][1:]))][1:]

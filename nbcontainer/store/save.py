"""``docker save``: images out of the store into a docker-archive, an oci-archive or an OCI
layout directory, each under the name it was asked by (else its first tag)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import NbcontainerError, StoreError
from ..oci.reference import Reference
from .store import Store

if TYPE_CHECKING:  # the archive formats load only when something is saved
    from .oci_layout import ExportItem

SAVE_FORMATS = ("docker-archive", "oci-archive", "oci-dir")


def export_items(store: Store, names: Sequence[str]) -> list[ExportItem]:
    """What to write for each name: its digest and the reference to record (a tag the name
    is, else the image's first tag, else none)."""
    from .oci_layout import ExportItem

    items = []
    for name in names:
        digest = store.resolve_digest(name)
        ref = None
        try:
            ref = Reference.parse(name)
            if ref.digest is not None or str(ref) not in store.refs.read().tags:
                ref = None
        except NbcontainerError:
            ref = None
        if ref is None:
            tags = store.refs.read().tags_of(str(digest))
            ref = Reference.parse(tags[0]) if tags else None
        items.append(ExportItem(digest, ref))
    if not items:
        raise StoreError("nothing to save", hint="name at least one image")
    return items


def save(store: Store, names: Sequence[str], output: str | Path, *,
         format: str = "docker-archive", mtime: int = 0) -> Path:
    """Write the images ``names`` to ``output``; ``mtime`` stamps the archive's members."""
    from . import docker_archive, oci_layout

    if format not in SAVE_FORMATS:
        raise NbcontainerError(f"unknown save format {format!r}",
                               hint=f"choose one of {', '.join(SAVE_FORMATS)}")
    items = export_items(store, names)
    dest = Path(output)
    if format == "oci-dir":
        oci_layout.export_dir(store, items, dest)
    elif format == "oci-archive":
        oci_layout.export_archive(store, items, dest, mtime=mtime)
    else:
        pairs = [(store.image_by_digest(it.digest), [it.ref] if it.ref else [])
                 for it in items]
        docker_archive.export_archive(store, pairs, dest, mtime=mtime)
    return dest

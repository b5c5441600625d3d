"""Digests of existing layer blobs without extracting them (import, load, fsck)."""

from __future__ import annotations

import os
from typing import BinaryIO

from ..errors import LayerError
from ..oci.digest import Digest
from .compression import open_layer
from .info import LayerInfo
from .tarreader import TarReader


def layer_info(src: str | os.PathLike[str] | BinaryIO, *, check_tar: bool = True) -> LayerInfo:
    """digest, diff_id, sizes and media type of a blob, in one pass.

    With ``check_tar`` the tar structure is parsed too (every header checked), so a
    corrupt or truncated layer fails here rather than at extraction time.
    """
    with open_layer(src) as stream:
        if check_tar:
            reader = TarReader(stream)
            for _ in reader.entries():
                pass
            reader.drain()
        else:
            stream.drain()
        return LayerInfo(
            digest=Digest("sha256", stream.digest_hex),
            diff_id=Digest("sha256", stream.diff_id_hex),
            size=stream.compressed_size,
            uncompressed_size=stream.uncompressed_size,
            media_type=stream.compression.media_type,
        )


def diff_id_of(src: str | os.PathLike[str] | BinaryIO) -> Digest:
    """The diff_id (sha256 of the uncompressed tar) of a layer blob."""
    return layer_info(src, check_tar=False).diff_id


def verify_layer(
    src: str | os.PathLike[str] | BinaryIO,
    *,
    digest: Digest | str | None = None,
    diff_id: Digest | str | None = None,
) -> LayerInfo:
    """Check a blob against its descriptor digest and/or config diff_id."""
    info = layer_info(src)
    for label, want, got in (("digest", digest, info.digest), ("diff_id", diff_id, info.diff_id)):
        if want is not None and Digest.parse(str(want)) != got:
            raise LayerError(
                f"layer {label} mismatch: expected {want}, got {got}",
                hint="the blob is corrupt or not the layer the manifest names",
            )
    return info

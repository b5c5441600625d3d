"""What a written or inspected layer is: the descriptor facts the image model needs."""

from __future__ import annotations

from dataclasses import dataclass

from ..oci.digest import Digest
from .compression import Compression


@dataclass(frozen=True, slots=True)
class LayerInfo:
    digest: Digest  # of the blob as stored/pushed (compressed)
    diff_id: Digest  # of the uncompressed tar (the image config's rootfs.diff_ids)
    size: int  # compressed bytes
    uncompressed_size: int
    media_type: str

    @property
    def compression(self) -> Compression:
        return Compression.from_media_type(self.media_type)

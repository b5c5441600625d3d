"""The local content store: content-addressed blobs, images and tags, import/export.

The archive formats (``store.oci_layout``, ``store.docker_archive``) are imported by name when
needed: they pull in the layer codec, which a pull or push never uses (CLI start-up time).
``fsck``/``prune`` (and the build area they sweep) load when first used, for the same reason.
"""

from typing import TYPE_CHECKING

from ..lazy import exports
from .blobs import BlobStore, BlobWriter
from .store import ImageRecord, Store, StoredImage, default_home, select_platform

if TYPE_CHECKING:
    from .gc import FsckReport, PruneReport, fsck, prune

__all__ = [
    "BlobStore", "BlobWriter", "FsckReport", "ImageRecord", "PruneReport", "Store",
    "StoredImage", "default_home", "fsck", "prune",
    "select_platform",
]
__getattr__ = exports(__name__, {"FsckReport": "gc", "PruneReport": "gc", "fsck": "gc", "prune": "gc"})

"""The local content store: content-addressed blobs, images and tags, import/export.

The archive formats (``store.oci_layout``, ``store.docker_archive``) are imported by name when
needed: they pull in the layer codec, which a pull or push never uses (CLI start-up time).
"""

from .blobs import BlobStore, BlobWriter
from .gc import FsckReport, PruneReport, fsck, prune
from .store import ImageRecord, Store, StoredImage, default_home, select_platform

__all__ = [
    "BlobStore", "BlobWriter", "FsckReport", "ImageRecord", "PruneReport", "Store",
    "StoredImage", "default_home", "fsck", "prune",
    "select_platform",
]

"""The local content store: content-addressed blobs, images and tags, import/export."""

from .blobs import BlobStore, BlobWriter
from .gc import FsckReport, PruneReport, fsck, prune
from .store import ImageRecord, Store, StoredImage, default_home, select_platform

__all__ = [
    "BlobStore", "BlobWriter", "FsckReport", "ImageRecord", "PruneReport", "Store",
    "StoredImage", "default_home", "fsck", "prune", "select_platform",
]

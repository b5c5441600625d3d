"""The local content store: content-addressed blobs, images and tags, import/export."""

from . import docker_archive, oci_layout
from .blobs import BlobStore, BlobWriter
from .gc import FsckReport, PruneReport, fsck, prune
from .store import ImageRecord, Store, StoredImage, default_home, select_platform

__all__ = [
    "BlobStore", "BlobWriter", "FsckReport", "ImageRecord", "PruneReport", "Store",
    "StoredImage", "default_home", "docker_archive", "fsck", "oci_layout", "prune",
    "select_platform",
]

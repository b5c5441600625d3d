"""The image model every other package speaks: references, digests, descriptors, manifests,
indexes, configs and platforms. Standard library only."""

from . import mediatypes
from .config import ContainerConfig, Healthcheck, History, ImageConfig
from .descriptor import EMPTY_DESCRIPTOR, Descriptor
from .digest import Digest
from .manifest import Index, Manifest
from .manifest import parse as parse_manifest
from .platform import Platform, best_match
from .reference import Reference

__all__ = [
    "EMPTY_DESCRIPTOR", "ContainerConfig", "Descriptor", "Digest", "Healthcheck", "History",
    "ImageConfig", "Index", "Manifest", "Platform", "Reference", "best_match", "mediatypes",
    "parse_manifest",
]

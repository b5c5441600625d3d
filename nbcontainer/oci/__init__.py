"""The image model every other package speaks: references, digests, descriptors, manifests,
indexes, configs and platforms. Standard library only.

The names below are imported on first use (``lazy.py``): listing images needs digests,
references and manifests, not the config model."""

from typing import TYPE_CHECKING

from ..lazy import exports

if TYPE_CHECKING:
    from . import mediatypes  # (a submodule: ``from . import`` imports it by itself)
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

_exported = exports(__name__, {
    "ContainerConfig": "config", "Healthcheck": "config", "History": "config",
    "ImageConfig": "config", "EMPTY_DESCRIPTOR": "descriptor", "Descriptor": "descriptor",
    "Digest": "digest", "Index": "manifest", "Manifest": "manifest", "Platform": "platform",
    "best_match": "platform", "Reference": "reference"})


def __getattr__(name: str) -> object:
    if name == "parse_manifest":  # (``manifest.parse`` under another name)
        from .manifest import parse

        globals()[name] = parse
        return parse
    return _exported(name)

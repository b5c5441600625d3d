"""What a build leaves in the store: the image (config + manifest), the index of a
multi-platform build, and the provenance statement attached to each image manifest."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..dockerfile import BuildPlan
from ..oci import mediatypes as mt
from ..oci.descriptor import Descriptor
from ..oci.digest import Digest
from ..oci.manifest import Index, Manifest
from ..oci.platform import Platform
from ..store import Store
from ..timestamps import rfc3339
from .session import BuildSession, Target
from .solver import BuildResult
from .sources.context import BuildContext
from .state import ImageState


def export_image(store: Store, state: ImageState, tags: Sequence[str], *,
                 config_extra: Mapping[str, Any] | None = None) -> Digest:
    """The image of ``state`` as an OCI manifest in the store, tagged ``tags``.
    ``config_extra``: top-level config keys (the inline build cache)."""
    cfg = state.image_config()
    if config_extra:
        cfg = cfg.evolve(extra={**cfg.extra, **config_extra})
    cfg_bytes = cfg.to_bytes()
    cfg_digest = store.blobs.put(cfg_bytes)
    manifest = Manifest(Descriptor(mt.OCI_CONFIG, cfg_digest, len(cfg_bytes)),
                        tuple(lr.descriptor for lr in state.layers))
    return store.add_image(manifest.to_bytes(), tags=list(tags))


def export_index(store: Store, children: Sequence[tuple[Platform, Digest]],
                 tags: Sequence[str]) -> Digest:
    """An OCI image index over per-platform manifests already in the store (each descriptor
    carries its platform, as BuildKit's exporter writes it); the tags point at the index."""
    manifests = []
    for plat, digest in children:
        size = len(store.blobs.read(digest))
        manifests.append(Descriptor(mt.OCI_MANIFEST, digest, size, platform=plat))
    return store.add_image(Index(tuple(manifests)).to_bytes(), tags=list(tags))


@dataclass(frozen=True)
class BuildInputs:
    """What the user gave a build, as provenance records it."""

    dockerfile_name: str
    dockerfile_text: str
    context: BuildContext
    build_args: Mapping[str, str]
    target: str | None
    tags: Sequence[str]


def attach_provenance(session: BuildSession, inputs: BuildInputs, plan: BuildPlan,
                      target: Target, result: BuildResult, manifest_digest: Digest,
                      started: str, mode: str) -> Digest:
    """Attach the provenance of one just-exported platform manifest; the artifact digest."""
    from . import provenance

    store = session.store
    data = store.blobs.read(manifest_digest)
    subject = Descriptor(mt.OCI_MANIFEST, manifest_digest, len(data))
    record = provenance.BuildRecord(
        dockerfile_name=inputs.dockerfile_name, dockerfile_text=inputs.dockerfile_text,
        context=inputs.context, plan=plan, target=inputs.target, platform=target.platform,
        build_args=inputs.build_args, bases=result.bases,
        secret_ids=tuple(session.options.secrets), ssh_ids=tuple(session.options.ssh),
        epoch=target.epoch, started=started, finished=rfc3339(target.epoch),
        tags=tuple(inputs.tags))
    doc = provenance.statement(subject, record, mode)
    # (the context digest hashes through the stat cache: keep what it learnt for next time)
    inputs.context.stat_cache.save()
    return provenance.attach(store, subject, doc)

"""Pull an image into the store: manifest, then config and layers concurrently, verified.

Every blob streams into a :class:`BlobWriter`, which hashes while writing and publishes only
when digest and size match; blobs already in the store are skipped. Manifests are stored with
the exact bytes the registry served, so the digest is preserved. Tags are written last, only
once everything the image needs is in the store: an interrupted pull leaves at most complete,
untagged blobs (``prune`` removes them) and never a half image behind a tag.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass

from ..errors import NbcontainerError, RegistryError
from ..oci import mediatypes as mt
from ..oci.descriptor import Descriptor
from ..oci.digest import Digest
from ..oci.manifest import Index, Manifest
from ..oci.manifest import parse as parse_manifest
from ..oci.platform import Platform, best_match
from ..oci.reference import Reference
from ..progress import Action, Kind, ProgressEvent, ProgressFn, Reason, null_progress
from ..store import Store
from .blobinfo import BlobLocations
from .client import AUTO, Cancel, RegistryClient, env_jobs
from .credentials import Credential
from .errors import TransportError
from .hosts import RegistrySettings, api_host
from .mirrors import pull_endpoints
from .transfer import BlobProgress, run_all

log = logging.getLogger("nbcontainer.registry")


@dataclass(frozen=True)
class PullResult:
    digest: Digest  # what the store now holds under the tag (platform manifest, or index)
    remote_digest: Digest  # what the reference resolved to on the registry
    reference: Reference
    media_type: str
    downloaded: int  # blobs fetched (0 = already up to date)
    endpoint: str  # registry host (or mirror) that served it


def _resolve_client(
    ref: Reference, settings: RegistrySettings, client: RegistryClient | None, **kw: object,
) -> tuple[RegistryClient, bytes, str, Digest]:
    """Try mirrors (docker.io only) then the registry; the first that serves the manifest
    serves the blobs."""
    if client is not None:
        data, media_type, digest = client.get_manifest(ref.path, ref.identifier)
        return client, data, media_type, digest
    endpoints = pull_endpoints(ref.domain, api_host(ref.domain), settings)
    last: Exception | None = None
    for ep in endpoints:
        c = RegistryClient(ref.domain, settings=settings, endpoint=ep, **kw)  # type: ignore[arg-type]
        try:
            data, media_type, digest = c.get_manifest(ref.path, ref.identifier)
            return c, data, media_type, digest
        except (RegistryError, OSError) as exc:
            c.close()
            if not ep.mirror:
                raise
            log.info("mirror %s failed for %s: %s", ep, ref, exc)
            last = exc
    assert last is not None
    raise last


def _choose(index: Index, wanted: Platform, ref: Reference) -> Descriptor:
    candidates = [m for m in index.manifests if m.platform is not None and
                  (m.is_manifest or m.media_type not in mt.INDEX_TYPES)]
    i = best_match(wanted, [m.platform for m in candidates if m.platform])
    if i is None:
        have = ", ".join(sorted({str(m.platform) for m in candidates
                                 if m.platform and m.platform.os != "unknown"})) or "none"
        raise RegistryError(
            f"{ref.familiar} has no image for platform {wanted} (it has: {have})",
            hint="choose one of those with --platform")
    return candidates[i]


def _check_platform(store: Store, c: RegistryClient, ref: Reference, manifest: Manifest,
                    wanted: Platform) -> None:
    """A single-platform image pulled with an explicit --platform must match it (Docker
    refuses too); the config is small, so look before fetching layers."""
    cfg = manifest.config
    if store.blobs.has(cfg.digest):
        data = store.blobs.read(cfg.digest)
    else:
        data = c.get_blob(ref.path, cfg.digest)
        store.blobs.put(data, cfg.digest)  # verified; the blob loop then skips it
    try:
        doc = json.loads(data)
        have = Platform.normalized(doc.get("os", ""), doc.get("architecture", ""),
                                   doc.get("variant", ""))
    except (ValueError, AttributeError):
        return  # not an image config (an artifact): nothing to compare
    if have.os and not wanted.matches(have):
        raise RegistryError(
            f"{ref.familiar} is a single-platform image for {have}, not {wanted}",
            hint="pull without --platform, or choose a tag built for that platform")


def pull(
    store: Store, ref: str | Reference, platform: Platform | str | None = None,
    all_platforms: bool = False, progress: ProgressFn = null_progress, *,
    client: RegistryClient | None = None, jobs: int | None = None,
    tls_verify: bool | None = None, credential: Credential | str | None = AUTO,
    settings: RegistrySettings | None = None, tags: list[str] | None = None,
) -> Digest:
    """Pull ``ref`` into ``store``; returns the digest the store holds it under (the platform
    manifest, or the index with ``all_platforms``). See :func:`pull_image` for details."""
    return pull_image(store, ref, platform, all_platforms, progress, client=client, jobs=jobs,
                      tls_verify=tls_verify, credential=credential, settings=settings,
                      tags=tags).digest


def pull_image(
    store: Store, ref: str | Reference, platform: Platform | str | None = None,
    all_platforms: bool = False, progress: ProgressFn = null_progress, *,
    client: RegistryClient | None = None, jobs: int | None = None,
    tls_verify: bool | None = None, credential: Credential | str | None = AUTO,
    settings: RegistrySettings | None = None, tags: list[str] | None = None,
) -> PullResult:
    reference = ref if isinstance(ref, Reference) else Reference.parse(ref)
    explicit = platform is not None
    wanted = Platform.parse(platform) if isinstance(platform, str) else (platform or Platform.host())
    settings = settings or (client.settings if client else RegistrySettings.load())
    jobs = jobs or env_jobs()
    own_client = client is None
    c, data, media_type, top_digest = _resolve_client(
        reference, settings, client, credential=credential, tls_verify=tls_verify,
        pool_size=jobs + 2)
    try:
        return _pull(store, c, reference, data, media_type, top_digest, wanted, all_platforms,
                     progress, jobs, tags, explicit)
    finally:
        if own_client:
            c.close()


def _pull(
    store: Store, c: RegistryClient, ref: Reference, data: bytes, media_type: str,
    top_digest: Digest, wanted: Platform, all_platforms: bool, progress: ProgressFn,
    jobs: int, tags: list[str] | None, explicit_platform: bool = False,
) -> PullResult:
    repo = ref.path
    parsed = parse_manifest(data, media_type)
    if isinstance(parsed, Manifest) and explicit_platform:
        _check_platform(store, c, ref, parsed, wanted)
    # (digest, bytes, media type) of every manifest to store, children before parents.
    manifests: list[tuple[Digest, bytes, str]] = []
    images: list[Manifest] = []
    if isinstance(parsed, Index):
        if all_platforms:
            for child in parsed.manifests:
                cdata, ctype, cdig = c.get_manifest(repo, str(child.digest))
                cparsed = parse_manifest(cdata, ctype or child.media_type)
                if isinstance(cparsed, Index):
                    raise RegistryError(f"{ref.familiar}: nested indexes are not supported")
                manifests.append((cdig, cdata, cparsed.media_type))
                images.append(cparsed)
            manifests.append((top_digest, data, parsed.media_type))
        else:
            child = _choose(parsed, wanted, ref)
            cdata, ctype, cdig = c.get_manifest(repo, str(child.digest))
            cparsed = parse_manifest(cdata, ctype or child.media_type)
            if not isinstance(cparsed, Manifest):
                raise RegistryError(f"{ref.familiar}: nested indexes are not supported")
            manifests.append((cdig, cdata, cparsed.media_type))
            images.append(cparsed)
    else:
        manifests.append((top_digest, data, parsed.media_type))
        images.append(parsed)
    final_digest, final_bytes, final_type = manifests[-1]

    blobs: dict[Digest, Descriptor] = {}
    for m in images:
        for desc in (m.config, *m.layers):
            blobs.setdefault(desc.digest, desc)
    if ref.tag and not tags:
        tags = [str(ref.without_digest())]
    tags = tags or []
    locations = BlobLocations(store.home)
    cancel = Cancel()
    counter = {"downloaded": 0}
    lock = threading.Lock()

    def fetch(desc: Descriptor, cancel: threading.Event) -> None:
        if store.blobs.has(desc.digest):
            progress(ProgressEvent(Kind.SKIPPED, str(desc.digest), action=Action.PULL,
                                   reason=Reason.EXISTS, current=desc.size, total=desc.size))
            return
        if desc.data is not None and len(desc.data) == desc.size:
            store.blobs.put(desc.data, desc.digest)  # inline data (the empty config)
            return
        bp = BlobProgress(progress, str(desc.digest), desc.size, Action.PULL)
        with store.blobs.writer(desc.digest, desc.size) as w:
            c.download_blob(repo, desc.digest, desc.size, w, bp.position, cancel)  # type: ignore[arg-type]
            w.commit()
        with lock:
            counter["downloaded"] += 1
        bp.done()

    with store.operation():
        # Large blobs first: the longest transfer starts earliest.
        order = sorted(blobs.values(), key=lambda d: -d.size)
        try:
            run_all(jobs, order, fetch, cancel)
        except Exception as exc:
            progress(ProgressEvent(Kind.ERROR, str(ref), action=Action.PULL,
                                   error=getattr(exc, "message", None) or str(exc)))
            raise
        for digest, mbytes, _ in manifests[:-1]:
            store.blobs.put(mbytes, digest)
        stored = store.add_image(final_bytes, tags=tags, media_type=final_type)
        # Build provenance attached to what was pulled (OCI referrers), best effort: the
        # image is complete without it.
        from .referrers import pull_referrers

        try:
            pull_referrers(store, c, repo, [d for d, _, _ in manifests])
        except (NbcontainerError, OSError) as exc:
            log.info("not pulling the referrers of %s: %s", ref, exc)
    if stored != final_digest:
        raise RegistryError(f"stored manifest digest {stored} differs from {final_digest}")
    if not c.endpoint.mirror:
        for digest in blobs:
            locations.record(digest, ref.domain, repo)
    # The whole pull: ``text`` is the digest the name resolved to, ``source`` the name as
    # users write it, ``current`` the number of blobs downloaded (0: it was up to date).
    progress(ProgressEvent(Kind.DONE, str(ref), action=Action.PULL, text=str(top_digest),
                           source=ref.familiar, current=counter["downloaded"]))
    return PullResult(stored, top_digest, ref, final_type, counter["downloaded"], c.host)


__all__ = ["PullResult", "TransportError", "pull", "pull_image"]

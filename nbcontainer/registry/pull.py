"""Pull an image into the store: manifest, then config and layers concurrently, verified.

Every blob streams into a :class:`BlobWriter`, which hashes while writing and publishes only
when digest and size match; blobs already in the store are skipped. Manifests are stored with
the exact bytes the registry served, so the digest is preserved. Tags are written last, only
once everything the image needs is in the store: an interrupted pull leaves at most complete,
untagged blobs (``prune`` removes them) and never a half image behind a tag.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from ..errors import ImageFormatError, NbcontainerError, RegistryError
from ..oci import mediatypes as mt
from ..oci import validate
from ..oci.config import ImageConfig
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
# Image configs are read whole into memory; real ones are kilobytes (40 history entries:
# ~10 KiB). Twice containerd's manifest limit leaves room for any real one.
MAX_CONFIG_BYTES = 8 << 20


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


_INVALID_HINT = ("the image on the registry is corrupt or was written by a broken tool; "
                 "nothing was tagged (`nbcontainer prune` removes what was downloaded)")


def _parse(ref: Reference, data: bytes, media_type: str | None, what: str) -> Manifest | Index:
    """A manifest or index from the registry, strictly; errors say which image it was."""
    with validate.context(f"{ref.familiar}: invalid {what}", _INVALID_HINT):
        return parse_manifest(data, media_type)


def _check_config(store: Store, ref: Reference, manifest: Manifest) -> ImageConfig | None:
    """The (stored) image config of a manifest, validated; None for an artifact."""
    with validate.context(f"{ref.familiar}: invalid image config {manifest.config.digest}",
                          _INVALID_HINT):
        return store.check_config(manifest)


def _check_platform(store: Store, c: RegistryClient, ref: Reference, manifest: Manifest,
                    wanted: Platform) -> None:
    """A single-platform image pulled with an explicit --platform must match it (Docker
    refuses too); the config is small, so look before fetching layers."""
    cfg = manifest.config
    if cfg.media_type not in mt.CONFIG_TYPES:
        return  # not an image config (an artifact): nothing to compare
    if not store.blobs.has(cfg.digest):
        _fetch_config(store, c, ref, cfg)
    config = _check_config(store, ref, manifest)
    have = config.platform if config is not None else None
    if have is not None and have.os and not wanted.matches(have):
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


def _manifests(c: RegistryClient, ref: Reference, parsed: Manifest | Index, data: bytes,
               top_digest: Digest, wanted: Platform, all_platforms: bool,
               ) -> tuple[list[tuple[Digest, bytes, str]], list[Manifest]]:
    """(digest, bytes, media type) of every manifest to store, children before parents, and
    the image manifests among them: the one for ``wanted``, or every one of an index."""
    if isinstance(parsed, Manifest):
        return [(top_digest, data, parsed.media_type)], [parsed]
    children = list(parsed.manifests) if all_platforms else [_choose(parsed, wanted, ref)]
    manifests: list[tuple[Digest, bytes, str]] = []
    images: list[Manifest] = []
    for child in children:
        cdata, ctype, cdig = c.get_manifest(ref.path, str(child.digest))
        if len(cdata) != child.size:
            raise ImageFormatError(
                f"{ref.familiar}: manifest {child.digest} is {len(cdata)} bytes, the index "
                f"says {child.size}", hint=_INVALID_HINT)
        cparsed = _parse(ref, cdata, child.media_type, f"manifest {child.digest}")
        if not isinstance(cparsed, Manifest):
            raise RegistryError(f"{ref.familiar}: nested indexes are not supported")
        manifests.append((cdig, cdata, cparsed.media_type))
        images.append(cparsed)
    if all_platforms:
        manifests.append((top_digest, data, parsed.media_type))
    return manifests, images


def _blob_plan(ref: Reference, images: list[Manifest]
               ) -> tuple[dict[Digest, Descriptor], dict[Digest, list[Manifest]]]:
    """Every blob the images need (once each) and which manifests each config belongs to."""
    blobs: dict[Digest, Descriptor] = {}
    config_of: dict[Digest, list[Manifest]] = {}
    for m in images:
        config_of.setdefault(m.config.digest, []).append(m)
        for desc in (m.config, *m.layers):
            if blobs.setdefault(desc.digest, desc).size != desc.size:
                raise ImageFormatError(
                    f"{ref.familiar}: blob {desc.digest} is listed with two sizes "
                    f"({blobs[desc.digest].size} and {desc.size})", hint=_INVALID_HINT)
    return blobs, config_of


def _fetch_config(store: Store, c: RegistryClient, ref: Reference, desc: Descriptor,
                  cancel: threading.Event | None = None) -> None:
    if desc.size > MAX_CONFIG_BYTES:
        raise ImageFormatError(
            f"{ref.familiar}: config {desc.digest} is {desc.size} bytes; refused (more than "
            f"{MAX_CONFIG_BYTES})", hint=_INVALID_HINT)
    with store.blobs.writer(desc.digest, desc.size) as w:
        c.download_blob(ref.path, desc.digest, desc.size, w, None, cancel)  # type: ignore[arg-type]
        w.commit()


class _Fetcher:
    """One blob into the store (skipped when there, verified by its writer); an image config
    is checked as soon as it is in, so a bad one stops the pull before the layers land."""

    def __init__(self, store: Store, c: RegistryClient, ref: Reference, progress: ProgressFn,
                 config_of: dict[Digest, list[Manifest]]) -> None:
        self.store, self.c, self.ref, self.progress = store, c, ref, progress
        self.config_of = config_of
        self.downloaded = 0
        self._lock = threading.Lock()

    def __call__(self, desc: Descriptor, cancel: threading.Event) -> None:
        self._fetch(desc, cancel)
        for m in self.config_of.get(desc.digest, ()):
            _check_config(self.store, self.ref, m)

    def _fetch(self, desc: Descriptor, cancel: threading.Event) -> None:
        store = self.store
        if store.blobs.has(desc.digest):
            self.progress(ProgressEvent(Kind.SKIPPED, str(desc.digest), action=Action.PULL,
                                        reason=Reason.EXISTS, current=desc.size,
                                        total=desc.size))
            return
        if desc.data is not None:
            store.blobs.put(desc.data, desc.digest)  # inline data (the empty config)
            return
        if desc.digest in self.config_of:
            _fetch_config(store, self.c, self.ref, desc, cancel)
        else:
            bp = BlobProgress(self.progress, str(desc.digest), desc.size, Action.PULL)
            with store.blobs.writer(desc.digest, desc.size) as w:
                self.c.download_blob(self.ref.path, desc.digest, desc.size, w,  # type: ignore[arg-type]
                                     bp.position, cancel)
                w.commit()
            bp.done()
        with self._lock:
            self.downloaded += 1


def _pull(
    store: Store, c: RegistryClient, ref: Reference, data: bytes, media_type: str,
    top_digest: Digest, wanted: Platform, all_platforms: bool, progress: ProgressFn,
    jobs: int, tags: list[str] | None, explicit_platform: bool = False,
) -> PullResult:
    repo = ref.path
    parsed = _parse(ref, data, media_type, "manifest" if media_type not in mt.INDEX_TYPES
                    else "index")
    if isinstance(parsed, Manifest) and explicit_platform:
        _check_platform(store, c, ref, parsed, wanted)
    manifests, images = _manifests(c, ref, parsed, data, top_digest, wanted, all_platforms)
    final_digest, final_bytes, final_type = manifests[-1]
    blobs, config_of = _blob_plan(ref, images)
    if ref.tag and not tags:
        tags = [str(ref.without_digest())]
    tags = tags or []
    locations = BlobLocations(store.home)
    fetch = _Fetcher(store, c, ref, progress, config_of)

    with store.operation():
        # Configs first (small, and checked before the layers matter), then large blobs
        # first: the longest transfer starts earliest.
        order = sorted(blobs.values(), key=lambda d: (d.digest not in config_of, -d.size))
        try:
            run_all(jobs, order, fetch, Cancel())
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
                           source=ref.familiar, current=fetch.downloaded))
    return PullResult(stored, top_digest, ref, final_type, fetch.downloaded, c.host)


__all__ = ["PullResult", "TransportError", "pull", "pull_image"]

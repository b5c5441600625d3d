"""Push an image from the store: blobs first (skipped, mounted or uploaded concurrently),
manifests last, so a registry never holds a manifest whose blobs are missing.

The manifest bytes pushed are the stored bytes, so the digest a later pull sees is the digest
the store already had. A multi-platform image pushes every child manifest by digest and then
the index under the tag.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

from ..errors import ReferenceFormatError, RegistryError
from ..oci.descriptor import Descriptor
from ..oci.digest import Digest
from ..oci.manifest import Index, Manifest
from ..oci.manifest import parse as parse_manifest
from ..oci.reference import Reference
from ..progress import Action, Kind, ProgressEvent, ProgressFn, Reason, null_progress
from ..store import Store
from .blobinfo import BlobLocations
from .client import AUTO, Cancel, RegistryClient, env_jobs
from .credentials import Credential
from .hosts import RegistrySettings
from .transfer import BlobProgress, run_all


@dataclass(frozen=True)
class PushResult:
    digest: Digest
    reference: Reference
    media_type: str
    size: int  # of the top manifest, as docker prints it
    uploaded: int
    mounted: int
    skipped: int


def _collect(store: Store, digest: Digest) -> tuple[list[tuple[Digest, bytes, str]], list[Manifest]]:
    """Manifests to push (children first) and the image manifests whose blobs go up."""
    data = store.blobs.read(digest)
    parsed = parse_manifest(data)
    if isinstance(parsed, Manifest):
        return [(digest, data, parsed.media_type)], [parsed]
    manifests: list[tuple[Digest, bytes, str]] = []
    images: list[Manifest] = []
    assert isinstance(parsed, Index)
    for child in parsed.manifests:
        if not store.blobs.has(child.digest):
            raise RegistryError(
                f"image {digest.short} is incomplete: manifest {child.digest.short} is missing",
                hint="pull it again with --all-platforms before pushing the whole index")
        sub, imgs = _collect(store, child.digest)
        manifests += sub
        images += imgs
    manifests.append((digest, data, parsed.media_type))
    return manifests, images


def push(
    store: Store, image_name: str, dest_ref: str | Reference | None = None,
    progress: ProgressFn = null_progress, digestfile: str | os.PathLike[str] | None = None, *,
    client: RegistryClient | None = None, jobs: int | None = None,
    tls_verify: bool | None = None, credential: Credential | str | None = AUTO,
    settings: RegistrySettings | None = None,
) -> Digest:
    """Push the stored image ``image_name`` to ``dest_ref`` (default: its own name); returns
    the manifest (or index) digest, also written to ``digestfile`` when given."""
    return push_image(store, image_name, dest_ref, progress, digestfile, client=client,
                      jobs=jobs, tls_verify=tls_verify, credential=credential,
                      settings=settings).digest


def push_image(
    store: Store, image_name: str, dest_ref: str | Reference | None = None,
    progress: ProgressFn = null_progress, digestfile: str | os.PathLike[str] | None = None, *,
    client: RegistryClient | None = None, jobs: int | None = None,
    tls_verify: bool | None = None, credential: Credential | str | None = AUTO,
    settings: RegistrySettings | None = None,
) -> PushResult:
    digest = store.resolve_digest(image_name)
    if dest_ref is None:
        try:
            dest = Reference.parse(image_name)
        except ReferenceFormatError:
            raise RegistryError(f"{image_name!r} is not a name to push to",
                                hint="give a destination, e.g. registry.example.com/team/app:1")
        if dest.digest is not None and dest.tag is None and "@" not in image_name:
            raise RegistryError(f"{image_name!r} is not a name to push to")
    else:
        dest = dest_ref if isinstance(dest_ref, Reference) else Reference.parse(dest_ref)
    manifests, images = _collect(store, digest)
    if dest.digest is not None and dest.digest != digest:
        raise RegistryError(f"cannot push {digest.short} as {dest}: the digests differ")
    jobs = jobs or env_jobs()
    own = client is None
    c = client or RegistryClient(dest.domain, credential=credential, tls_verify=tls_verify,
                                 settings=settings, pool_size=jobs + 2)
    try:
        return _push(store, c, dest, digest, manifests, images, progress, jobs, digestfile)
    finally:
        if own:
            c.close()


def _push(
    store: Store, c: RegistryClient, dest: Reference, digest: Digest,
    manifests: list[tuple[Digest, bytes, str]], images: list[Manifest],
    progress: ProgressFn, jobs: int, digestfile: str | os.PathLike[str] | None,
) -> PushResult:
    repo = dest.path
    blobs: dict[Digest, Descriptor] = {}
    for m in images:
        for desc in (m.config, *m.layers):
            blobs.setdefault(desc.digest, desc)
    missing = [d for d in blobs if not store.blobs.has(d)]
    if missing:
        raise RegistryError(
            f"image {digest.short} is incomplete in the store: blob {missing[0].short} is missing",
            hint="pull or build it again (`nbcontainer fsck` checks the store)")
    locations = BlobLocations(store.home)
    counts = {"uploaded": 0, "mounted": 0, "skipped": 0}
    lock = threading.Lock()

    def count(kind: str) -> None:
        with lock:
            counts[kind] += 1

    def send(desc: Descriptor, cancel: threading.Event) -> None:
        did = str(desc.digest)
        size = store.blobs.size(desc.digest)
        if c.head_blob(repo, desc.digest, push=True) is not None:
            progress(ProgressEvent(Kind.SKIPPED, did, action=Action.PUSH, reason=Reason.EXISTS,
                                   current=size, total=size))
            count("skipped")
            return
        for source in locations.mount_sources(desc.digest, dest.domain, repo)[:3]:
            if c.mount_blob(repo, desc.digest, source):
                progress(ProgressEvent(Kind.SKIPPED, did, action=Action.PUSH,
                                       reason=Reason.MOUNTED, source=source, current=size,
                                       total=size))
                count("mounted")
                return
        bp = BlobProgress(progress, did, size, Action.PUSH)
        how = c.upload_blob(repo, desc.digest, size, lambda: store.blobs.open(desc.digest),
                            on_position=bp.position, cancel=cancel)
        count(how)
        if how == "uploaded":
            bp.done()
        else:  # a cross-repository mount the registry offered when the upload started
            progress(ProgressEvent(Kind.SKIPPED, did, action=Action.PUSH,
                                   reason=Reason.MOUNTED, current=size, total=size))

    cancel = Cancel()
    c.ping()
    try:
        run_all(jobs, sorted(blobs.values(), key=lambda d: -d.size), send, cancel)
        for mdig, mbytes, mtype in manifests[:-1]:
            c.put_manifest(repo, str(mdig), mbytes, mtype)
        _, top_bytes, top_type = manifests[-1]
        target = dest.tag if dest.tag else str(digest)
        pushed = c.put_manifest(repo, target, top_bytes, top_type)
    except Exception as exc:
        progress(ProgressEvent(Kind.ERROR, str(dest), action=Action.PUSH,
                               error=getattr(exc, "message", None) or str(exc)))
        raise
    if pushed != digest:
        raise RegistryError(f"pushed manifest digest {pushed} differs from the stored {digest}")
    for d in blobs:
        locations.record(d, dest.domain, repo)
    # Then what refers to them (build provenance): subjects must exist before their referrers.
    from .referrers import push_referrers

    attached = push_referrers(store, c, repo, [mdig for mdig, _, _ in manifests])
    # The whole push: ``text`` is what the tag now names, ``source`` the tag (or digest)
    # pushed, ``current`` the number of attached artifacts (referrers) pushed with it.
    progress(ProgressEvent(Kind.DONE, str(dest), action=Action.PUSH, text=str(digest),
                           source=target, total=len(top_bytes), current=len(attached)))
    if digestfile is not None:
        Path(digestfile).write_text(str(digest))
    return PushResult(digest, dest, top_type, len(top_bytes), counts["uploaded"],
                      counts["mounted"], counts["skipped"])

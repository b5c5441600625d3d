"""OCI 1.1 referrers on a registry: push and pull the artifacts whose ``subject`` is an image
(build provenance), as the distribution spec 1.1 describes.

Listing: ``GET /v2/<name>/referrers/<digest>`` where the registry has the referrers API; a 404
(distribution 2.8 has no such route) falls back to the *referrers tag schema*: the tag
``<alg>-<hex>`` (``sha256-…``) names an OCI index whose entries are the referrers.

Pushing an artifact: its blobs, then its manifest by digest. A registry that processed the
``subject`` answers with an ``OCI-Subject`` header; otherwise the client maintains the tag
index itself: fetch it (a 404 starts an empty one, anything but an OCI index is an error),
append a descriptor for the artifact (its artifactType, else its config's media type, and the
manifest's annotations) unless already listed, and push it back under the same tag.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from ..errors import RegistryError
from ..oci import mediatypes as mt
from ..oci.descriptor import Descriptor
from ..oci.digest import Digest
from ..oci.manifest import Index, Manifest
from ..oci.manifest import parse as parse_manifest
from ..store import Store
from ..store.store import referrer_descriptor
from .auth import repo_scope
from .client import RegistryClient
from .errors import RegistryResponseError

log = logging.getLogger("nbcontainer.registry")

# What ``pull`` brings along: build provenance (in-toto statements). Signatures and other
# artifact kinds stay on the registry until something here knows what to do with them.
PULL_ARTIFACT_TYPES = frozenset({"application/vnd.in-toto+json"})
MAX_ARTIFACT_BYTES = 16 << 20  # statements are kilobytes; fetched whole, in memory


def tag_for(digest: Digest) -> str:
    """The referrers tag schema: ``<alg>-<ref>``, truncated to a tag's 128 characters."""
    return f"{digest.algorithm}-{digest.hex}"[:128]


def _tag_index(c: RegistryClient, repo: str, digest: Digest) -> Index | None:
    """The tag schema's index for ``digest`` (None: no such tag)."""
    try:
        data, media_type, _ = c.get_manifest(repo, tag_for(digest))
    except RegistryResponseError as exc:
        if exc.not_found:
            return None
        raise
    parsed = parse_manifest(data, media_type)
    if not isinstance(parsed, Index) or parsed.media_type != mt.OCI_INDEX:
        raise RegistryError(
            f"{repo}:{tag_for(digest)} is not an OCI index, so it is not a referrers list",
            hint="the tag is reserved for the referrers tag schema; delete or rename it")
    return parsed


def list_referrers(c: RegistryClient, repo: str, digest: Digest,
                   artifact_type: str | None = None) -> list[Descriptor]:
    """The referrers of ``digest`` in ``repo``: the referrers API, else the tag schema."""
    query = f"?artifactType={artifact_type}" if artifact_type else ""
    try:
        resp = c.request("GET", f"/v2/{repo}/referrers/{digest}{query}",
                         scopes=(repo_scope(repo, "pull"),), headers={"Accept": mt.OCI_INDEX},
                         action=f"listing referrers of {repo}@{digest.short}", repo=repo)
        parsed = parse_manifest(resp.data, mt.OCI_INDEX)
        found = list(parsed.manifests) if isinstance(parsed, Index) else []
    except RegistryResponseError as exc:
        if exc.status not in (404, 405, 400):  # 404: no referrers API (distribution 2.8)
            raise
        index = _tag_index(c, repo, digest)
        found = list(index.manifests) if index is not None else []
    # The server may ignore the filter (it says so with OCI-Filters-Applied); filter anyway.
    return [d for d in found if artifact_type is None or d.artifact_type == artifact_type]


def _put_artifact(c: RegistryClient, repo: str, digest: Digest, data: bytes,
                  media_type: str) -> bool:
    """PUT an artifact manifest by digest; True when the registry processed its subject."""
    resp = c.request(
        "PUT", f"/v2/{repo}/manifests/{digest}", scopes=(repo_scope(repo, "pull", "push"),),
        headers={"Content-Type": media_type}, body=data, ok=(200, 201, 202),
        action=f"pushing artifact {repo}@{digest.short}", repo=repo)
    resp.close()
    return bool(resp.header("OCI-Subject"))


def _push_blob(store: Store, c: RegistryClient, repo: str, desc: Descriptor) -> None:
    if c.head_blob(repo, desc.digest, push=True) is not None:
        return
    size = store.blobs.size(desc.digest)
    c.upload_blob(repo, desc.digest, size, lambda: store.blobs.open(desc.digest))


def push_referrers(store: Store, c: RegistryClient, repo: str,
                   subjects: Iterable[Digest]) -> list[Digest]:
    """Push every artifact the store holds for ``subjects`` (and theirs, recursively) after
    the subjects themselves; returns the artifact digests pushed."""
    pushed: list[Digest] = []
    todo = list(subjects)
    seen: set[Digest] = set()
    while todo:
        subject = todo.pop(0)
        if subject in seen:
            continue
        seen.add(subject)
        untracked: list[Descriptor] = []
        for desc in store.referrers(subject):
            data = store.blobs.read(desc.digest)
            manifest = parse_manifest(data)
            if not isinstance(manifest, Manifest):
                continue
            for blob in (manifest.config, *manifest.layers):
                _push_blob(store, c, repo, blob)
            if not _put_artifact(c, repo, desc.digest, data, manifest.media_type):
                untracked.append(referrer_descriptor(manifest, desc.digest, len(data)))
            pushed.append(desc.digest)
            todo.append(desc.digest)
        if untracked:
            _update_tag_index(c, repo, subject, untracked)
    return pushed


def _update_tag_index(c: RegistryClient, repo: str, subject: Digest,
                      new: Sequence[Descriptor]) -> None:
    index = _tag_index(c, repo, subject)
    entries = list(index.manifests) if index is not None else []
    have = {d.digest for d in entries}
    added = [d for d in new if d.digest not in have]
    if not added:
        return
    updated = Index(tuple(entries + added), media_type=mt.OCI_INDEX)
    c.put_manifest(repo, tag_for(subject), updated.to_bytes(), mt.OCI_INDEX)


def pull_referrers(store: Store, c: RegistryClient, repo: str, subjects: Iterable[Digest],
                   artifact_types: frozenset[str] = PULL_ARTIFACT_TYPES) -> list[Digest]:
    """Fetch the artifacts the registry lists for ``subjects`` (of ``artifact_types``) into
    the store, verified; returns their digests. The caller holds ``store.operation()``."""
    got: list[Digest] = []
    for subject in subjects:
        for desc in list_referrers(c, repo, subject):
            if desc.artifact_type not in artifact_types:
                continue
            if store.blobs.has(desc.digest):
                data = store.blobs.read(desc.digest)
            else:
                data, media_type, _ = c.get_manifest(repo, str(desc.digest))
                if Digest.of(data) != desc.digest:
                    raise RegistryError(f"referrer {desc.digest} of {repo} does not match "
                                        "its digest")
            manifest = parse_manifest(data)
            if not isinstance(manifest, Manifest) or manifest.subject is None or \
                    manifest.subject.digest != subject:
                log.info("skipping referrer %s of %s: its subject differs", desc.digest, subject)
                continue
            if sum(b.size for b in manifest.layers) > MAX_ARTIFACT_BYTES:
                log.info("skipping referrer %s of %s: too large", desc.digest, subject)
                continue
            for blob in (manifest.config, *manifest.layers):
                if store.blobs.has(blob.digest):
                    continue
                if blob.data is not None and len(blob.data) == blob.size:
                    store.blobs.put(blob.data, blob.digest)
                else:
                    store.blobs.put(c.get_blob(repo, blob.digest), blob.digest)
            got.append(store.add_referrer(data))
    return got

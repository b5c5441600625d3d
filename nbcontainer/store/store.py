"""The local content store: blobs, images and tags under one directory.

Location: ``$NBCONTAINER_HOME``, else ``$XDG_DATA_HOME/nbcontainer`` (``~/.local/share``).
Readers and writers run concurrently; ``prune`` takes the gc lock exclusively so it never
deletes a blob that a running import or build has written but not yet tagged.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from ..errors import ImageFormatError, ImageNotFound, ReferenceFormatError, StoreError
from ..oci import mediatypes as mt
from ..oci import validate
from ..oci.descriptor import Descriptor
from ..oci.digest import Digest
from ..oci.manifest import Index, Manifest
from ..oci.manifest import parse as parse_manifest
from ..oci.platform import Platform, best_match
from ..oci.reference import Reference
from . import locks
from .blobs import BlobStore
from .referrers import ReferrersDB
from .refs import RefDB, now

if TYPE_CHECKING:
    from ..oci.config import ImageConfig

_MAX_NESTING = 4  # index → index → manifest is the deepest real images go


def default_home() -> Path:
    env = os.environ.get("NBCONTAINER_HOME")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "nbcontainer"


@dataclass(frozen=True)
class StoredImage:
    """One platform-specific image in the store."""

    digest: Digest  # of the manifest
    manifest: Manifest
    config: ImageConfig
    tags: tuple[str, ...] = ()
    index_digest: Digest | None = None  # set when reached through an index

    @property
    def id(self) -> Digest:
        """Docker's image id: the digest of the config."""
        return self.manifest.config.digest

    @property
    def size(self) -> int:
        return sum(layer.size for layer in self.manifest.layers)


@dataclass(frozen=True)
class ImageRecord:
    """A row of ``images``: a manifest or index the store holds, with its tags."""

    digest: Digest
    media_type: str
    tags: tuple[str, ...]
    created: str | None
    added: float
    config_digest: Digest | None
    size: int


class Store:
    def __init__(self, home: Path | str | None = None):
        self.home = Path(home) if home is not None else default_home()
        self.home.mkdir(parents=True, exist_ok=True)
        self.blobs = BlobStore(self.home / "blobs")
        self.refs = RefDB(self.home / "refs.json")
        self.referrers_db = ReferrersDB(self.home / "referrers.json")
        self.gc_lock = self.home / "gc.lock"
        self.quarantine_dir = self.home / "quarantine"

    def __repr__(self) -> str:
        return f"Store({str(self.home)!r})"

    # ------------------------------------------------------------------ transactions
    @contextmanager
    def operation(self) -> Iterator[Store]:
        """Hold off ``prune`` while blobs are written and then referenced."""
        with locks.shared(self.gc_lock):
            yield self

    # ------------------------------------------------------------------ writing
    def put_json_blob(self, data: bytes) -> Digest:
        return self.blobs.put(data)

    def add_image(
        self, manifest_bytes: bytes, *, tags: list[str] | tuple[str, ...] = (),
        media_type: str | None = None,
    ) -> Digest:
        """Register a manifest or index whose blobs are already stored; tag it. Nothing is
        stored or tagged unless :meth:`check_image` passes."""
        parsed, cfg = self.check_image(manifest_bytes, media_type)
        record: dict[str, Any] = {"mediaType": parsed.media_type, "added": now()}
        if isinstance(parsed, Manifest):
            record["config"] = str(parsed.config.digest)
            record["size"] = sum(layer.size for layer in parsed.layers) + parsed.config.size
            record["created"] = cfg.created if cfg is not None else None
        else:
            record["size"] = sum(m.size for m in parsed.manifests)
        refs = [Reference.parse(t) for t in tags]
        digest = self.blobs.put(manifest_bytes)
        with self.refs.update() as data:
            old = data.images.get(str(digest))
            if old:
                record["added"] = old.get("added", record["added"])
            data.images[str(digest)] = record
            for ref in refs:
                data.tags[str(ref.without_digest())] = str(digest)
        return digest

    def check_image(self, manifest_bytes: bytes, media_type: str | None = None, depth: int = 0
                    ) -> tuple[Manifest | Index, ImageConfig | None]:
        """Everything :meth:`add_image` checks, registering nothing: the manifest or index
        (strictly), its blobs and their sizes, an image manifest's config, and the stored
        manifests an index lists (recursively). Importers check every image of an archive
        first, so a bad one leaves no tag behind."""
        parsed = parse_manifest(manifest_bytes, media_type)
        self._check_complete(parsed)
        if isinstance(parsed, Manifest):
            return parsed, self.check_config(parsed)
        if depth >= _MAX_NESTING:
            raise ImageFormatError(f"index: indexes nested more than {_MAX_NESTING} deep")
        for i, child in enumerate(parsed.manifests):
            if (child.is_manifest or child.is_index) and child.data is None:
                with validate.context(f"index.manifests[{i}] ({child.digest})"):
                    self.check_image(self.blobs.read(child.digest), child.media_type, depth + 1)
        return parsed, None

    def _check_complete(self, parsed: Manifest | Index) -> None:
        """Every blob the manifest names is stored, with the size the manifest says."""
        if isinstance(parsed, Manifest):
            needed = [("manifest.config", parsed.config)]
            needed += [(f"manifest.layers[{i}]", d) for i, d in enumerate(parsed.layers)]
        else:
            needed = [(f"index.manifests[{i}]", d) for i, d in enumerate(parsed.manifests)]
        missing = [str(d.digest) for _, d in needed if d.data is None and not self.blobs.has(d.digest)]
        if missing:
            raise StoreError(
                f"cannot register image: {len(missing)} referenced blob(s) missing, first {missing[0]}",
                hint="store the config and layers before the manifest",
            )
        for where, d in needed:
            if d.data is None and (actual := self.blobs.size(d.digest)) != d.size:
                raise ImageFormatError(
                    f"{where}: blob {d.digest} is {actual} bytes, the descriptor says {d.size}",
                    hint="the manifest does not describe its content; it is corrupt or was "
                    "altered")

    def check_config(self, manifest: Manifest, where: str = "config") -> ImageConfig | None:
        """The image config of an image manifest, read strictly and checked against the
        manifest (one diff_id per layer, as containerd requires); None for an artifact whose
        config is not an image config."""
        if manifest.config.media_type not in mt.CONFIG_TYPES:
            return None
        desc = manifest.config
        data = desc.data if desc.data is not None else self.blobs.read(desc.digest)
        from ..oci.config import ImageConfig  # (listing images needs no config model)

        cfg = ImageConfig.from_bytes(data, where)
        if len(cfg.diff_ids) != len(manifest.layers):
            raise ImageFormatError(
                f"{where}.rootfs.diff_ids: {len(cfg.diff_ids)} diff_ids for "
                f"{len(manifest.layers)} layers in the manifest",
                hint="an image config lists one diff_id per layer; the image is corrupt")
        return cfg

    def add_referrer(self, manifest_bytes: bytes) -> Digest:
        """Register an artifact manifest (blobs already stored) under its ``subject``: it is
        found by :meth:`referrers` and kept exactly as long as the subject is."""
        parsed = parse_manifest(manifest_bytes)
        if not isinstance(parsed, Manifest) or parsed.subject is None:
            raise StoreError("a referrer must be an image manifest with a subject",
                             hint="set the manifest's subject to the image it describes")
        self._check_complete(parsed)
        digest = self.blobs.put(manifest_bytes)
        desc = referrer_descriptor(parsed, digest, len(manifest_bytes)).to_dict()
        with self.referrers_db.update() as data:
            entries = data.setdefault(str(parsed.subject.digest), [])
            if all(e.get("digest") != str(digest) for e in entries):
                entries.append(desc)
        return digest

    def referrers(self, digest: Digest, artifact_type: str | None = None) -> list[Descriptor]:
        """Artifact manifests whose subject is ``digest`` (as the referrers API lists them:
        artifactType and the manifest's annotations on each descriptor), oldest first."""
        out = []
        for entry in self.referrers_db.read().get(str(digest), []):
            desc = Descriptor.from_dict(entry, "referrer")
            if artifact_type is not None and desc.artifact_type != artifact_type:
                continue
            if self.blobs.has(desc.digest):
                out.append(desc)
        return out

    def tag(self, source: str, target: str) -> Digest:
        digest = self.resolve_digest(source)
        ref = Reference.parse(target)
        if ref.digest is not None:
            raise ReferenceFormatError(f"cannot tag with a digest: {target!r}", hint="give name:tag")
        with self.refs.update() as data:
            data.tags[str(ref)] = str(digest)
        return digest

    def untag(self, name: str) -> Digest:
        ref = Reference.parse(name)
        with self.refs.update() as data:
            digest = data.tags.pop(str(ref.without_digest()), None)
        if digest is None:
            raise ImageNotFound(f"no such image: {name}", hint="`nbcontainer images` lists tags")
        return Digest.parse(digest)

    def remove(self, name: str, *, force: bool = False) -> list[str]:
        """Like ``docker rmi``: untag; drop the image once no tag is left. Returns what happened."""
        events: list[str] = []
        ref = self._maybe_ref(name)
        data = self.refs.read()
        if ref is not None and str(ref) in data.tags and ref.digest is None:
            digest = self.untag(name)
            events.append(f"Untagged: {ref.familiar}")
            data = self.refs.read()
            if data.tags_of(str(digest)):
                return events
        else:
            digest = self.resolve_digest(name)
            tags = data.tags_of(str(digest))
            if len(tags) > 1 and not force:
                raise StoreError(
                    f"image {digest.short} is referenced by {len(tags)} tags: {', '.join(tags)}",
                    hint="remove it by tag, or use --force",
                )
        with self.refs.update() as data:
            for t in data.tags_of(str(digest)):
                del data.tags[t]
                events.append(f"Untagged: {Reference.parse(t).familiar}")
            data.images.pop(str(digest), None)
        events.append(f"Deleted: {digest}")
        return events

    # ------------------------------------------------------------------ reading
    def list_images(self) -> list[ImageRecord]:
        data = self.refs.read()
        out = []
        for dig, rec in data.images.items():
            out.append(
                ImageRecord(
                    digest=Digest.parse(dig),
                    media_type=rec.get("mediaType", ""),
                    tags=tuple(data.tags_of(dig)),
                    created=rec.get("created"),
                    added=rec.get("added", 0.0),
                    config_digest=Digest.parse(rec["config"]) if rec.get("config") else None,
                    size=rec.get("size", 0),
                )
            )
        out.sort(key=lambda r: r.added, reverse=True)
        return out

    def _maybe_ref(self, name: str) -> Reference | None:
        try:
            return Reference.parse(name)
        except ReferenceFormatError:
            return None

    def resolve_digest(self, name: str) -> Digest:
        """Find a manifest/index digest by tag, full digest, ``repo@digest`` or short id."""
        data = self.refs.read()
        text = name.strip()
        # full digest or name@digest
        candidate = text.rpartition("@")[2] if "@" in text else text
        try:
            dig = Digest.parse(candidate)
        except ReferenceFormatError:
            dig = None
        if dig is not None:
            if str(dig) in data.images:
                return dig
            for d, rec in data.images.items():  # an image id (config digest)
                if rec.get("config") == str(dig):
                    return Digest.parse(d)
            raise ImageNotFound(f"no such image: {name}")
        ref = self._maybe_ref(text)
        if ref is not None and str(ref) in data.tags:
            return Digest.parse(data.tags[str(ref)])
        # short id: a hex prefix of an image id or manifest digest, as docker accepts
        prefix = text.removeprefix("sha256:").lower()
        if 4 <= len(prefix) <= 64 and all(c in "0123456789abcdef" for c in prefix):
            hits = {
                d for d, rec in data.images.items()
                if d.removeprefix("sha256:").startswith(prefix)
                or (rec.get("config") or "").removeprefix("sha256:").startswith(prefix)
            }
            if len(hits) == 1:
                return Digest.parse(hits.pop())
            if len(hits) > 1:
                raise StoreError(f"short id {text!r} is ambiguous ({len(hits)} images)",
                                 hint="give more characters of the id")
        if ref is None:
            Reference.parse(text)  # not a name, not an id: raise the reference's own error
        raise ImageNotFound(
            f"no such image: {name}", hint="`nbcontainer images` lists what the store holds"
        )

    def read_manifest(self, digest: Digest) -> Manifest | Index:
        return parse_manifest(self.blobs.read(digest))

    def read_config(self, manifest: Manifest) -> ImageConfig:
        from ..oci.config import ImageConfig

        return ImageConfig.from_bytes(self.blobs.read(manifest.config.digest))

    def image(self, name: str, platform: Platform | None = None) -> StoredImage:
        """The platform-specific image behind a name (an index resolves to ``platform``,
        by default the host's)."""
        digest = self.resolve_digest(name)
        return self.image_by_digest(digest, platform)

    def has_image(self, digest: Digest) -> bool:
        """Whether the image (or index) ``digest`` is recorded and every blob it names, all
        the way down, is here."""
        if str(digest) not in self.refs.read().images:
            return False
        try:
            return self._complete(digest)
        except (StoreError, ImageFormatError):
            return False

    def _complete(self, digest: Digest) -> bool:
        if not self.blobs.has(digest):
            return False
        parsed = self.read_manifest(digest)
        if isinstance(parsed, Index):
            return all(self._complete(m.digest) for m in parsed.manifests if m.is_manifest)
        return all(d.data is not None or self.blobs.has(d.digest)
                   for d in (parsed.config, *parsed.layers))

    def image_by_digest(self, digest: Digest, platform: Platform | None = None) -> StoredImage:
        parsed = self.read_manifest(digest)
        index_digest = None
        if isinstance(parsed, Index):
            index_digest = digest
            child = select_platform(parsed, platform or Platform.host())
            digest, parsed = child.digest, self.read_manifest(child.digest)
            if not isinstance(parsed, Manifest):
                raise ImageFormatError(f"nested index {digest} is not supported here")
        tags = tuple(self.refs.read().tags_of(str(index_digest or digest)))
        return StoredImage(digest, parsed, self.read_config(parsed), tags, index_digest)

    def open_layer(self, desc: Descriptor) -> BinaryIO:
        return self.blobs.open(desc.digest)

    def blobs_of(self, digest: Digest) -> list[Digest]:
        """The closure of a manifest or index: itself, children, configs, layers (in order,
        children before their parents' manifests are irrelevant: callers only copy)."""
        out: list[Digest] = []
        seen: set[Digest] = set()
        stack = [digest]
        while stack:
            dig = stack.pop()
            if dig in seen:
                continue
            seen.add(dig)
            out.append(dig)
            if not self.blobs.has(dig):
                continue
            try:
                parsed = self.read_manifest(dig)
            except ImageFormatError:
                continue
            if isinstance(parsed, Manifest):
                for desc in (parsed.config, *parsed.layers):
                    if desc.digest not in seen:
                        seen.add(desc.digest)
                        out.append(desc.digest)
            else:
                stack.extend(m.digest for m in parsed.manifests if m.is_manifest or m.is_index)
        return out

    def referenced_blobs(self) -> set[Digest]:
        """Every blob reachable from a recorded image (manifests, configs, layers, children)."""
        keep: set[Digest] = set()
        for d in self.refs.read().images:
            keep.update(self.blobs_of(Digest.parse(d)))
        # Artifacts live as long as their subject (which may itself be an artifact).
        pending = self.referrers_db.read()
        while True:
            alive = [s for s in pending if Digest.parse(s) in keep]
            if not alive:
                return keep
            for subject in alive:
                for entry in pending.pop(subject):
                    keep.update(self.blobs_of(Digest.parse(entry["digest"])))


def referrer_descriptor(manifest: Manifest, digest: Digest, size: int) -> Descriptor:
    """How a referrers list names an artifact (distribution spec 1.1): its artifactType (else
    its config's media type) and a copy of the manifest's annotations."""
    return Descriptor(manifest.media_type, digest, size, annotations=manifest.annotations,
                      artifact_type=manifest.artifact_type or manifest.config.media_type)


def select_platform(index: Index, wanted: Platform) -> Descriptor:
    candidates = [m for m in index.manifests if m.is_manifest and m.platform is not None]
    i = best_match(wanted, [m.platform for m in candidates if m.platform])
    if i is None:
        have = ", ".join(str(m.platform) for m in candidates) or "none"
        raise StoreError(
            f"no image for platform {wanted} in the index (it has: {have})",
            hint="choose one of those with --platform",
        )
    return candidates[i]


def index_media_type_for(manifest_type: str) -> str:
    return mt.DOCKER_MANIFEST_LIST if manifest_type == mt.DOCKER_MANIFEST else mt.OCI_INDEX

"""The build cache in a registry: ``--cache-to`` / ``--cache-from`` (buildx's registry and
inline caches), so an empty store (another machine, a JupyterHub pod, CI) builds fully cached.

What is exported is the local cache index's own currency: step key → :class:`ImageState`
(keys chain and never hold times, absolute paths or secret values, see :mod:`.cache`).

``type=registry,ref=R[,mode=min|max]``
    An OCI image manifest pushed to ``R`` (distribution 2.8 accepts it; no index, no
    referrers API needed)::

        {"mediaType": "application/vnd.oci.image.manifest.v1+json",
         "artifactType": "application/vnd.nbcontainer.buildcache.v1+json",
         "config": {"mediaType": "application/vnd.nbcontainer.buildcache.config.v1+json", ...},
         "layers": [every layer blob the entries name, base layers included]}

    The config blob holds the entries: ``{"version": 1, "mode": ..., "entries": {key:
    ImageState JSON}}`` (BuildKit also keeps its cache config in the manifest's config).
    ``mode=min`` (the default, as in BuildKit) exports the steps of the target stage and of
    the stages it is built ``FROM``, i.e. the steps whose layers make up the result;
    ``mode=max`` exports every stage's steps, so the ``COPY --from`` sources hit as well.

``type=inline`` (or the build arg ``BUILDKIT_INLINE_CACHE=1``)
    The ``mode=min`` entries are embedded in the image config under the top-level key
    ``nbcontainer.buildcache.v1`` (not a label: labels reach the running container). The
    config bytes, hence the image digest, change only when inline cache is asked for; the
    entries name only the image's own layers, so the image is its own cache.

``--cache-from REF`` / ``type=registry,ref=REF``
    ``REF`` may be a cache artifact or a plain image (then its inline cache is used). The
    entries are read once, before the build; :meth:`RemoteCache.get` is consulted by
    ``BuildSession.cached`` after the local index. A hit counts when the source serves every
    layer blob the store lacks; the step shows ``CACHED`` like a local hit and the entry is
    copied to the local index. Blobs are fetched lazily, as BuildKit does: only when they are
    read (a snapshot is extracted for a step that runs, the image is exported, the cache is
    re-exported), verified by digest, through the registry client. So a ``mode=max`` hit on
    a builder stage that only a cached ``COPY --from`` uses downloads none of its layers.
    A missing or unreachable cache is a warning in the progress output, never a build
    failure (BuildKit's rule); a failed ``--cache-to`` push fails the build unless
    ``ignore-error=true`` (buildx's rule); a blob that can't be fetched after its hit is a
    build error (the step it came from is no longer re-runnable in place).

Only steps run in a stage are exported (not ``COPY --link``'s parent-free entries). Imported
entries are as trusted as the registry they come from (BuildKit's model too): blobs are
verified by digest, states are parsed strictly, a malformed entry is a miss.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import BuildError, NbcontainerError
from ..oci import mediatypes as mt
from ..oci.descriptor import Descriptor
from ..oci.digest import Digest
from ..oci.reference import Reference
from .state import ImageState

if TYPE_CHECKING:
    from ..dockerfile import BuildPlan
    from ..oci.platform import Platform
    from ..store import Store
    from .reporter import StepReporter
    from .session import BuildSession
    from .solver import BuildResult

ARTIFACT_TYPE = "application/vnd.nbcontainer.buildcache.v1+json"
CONFIG_TYPE = "application/vnd.nbcontainer.buildcache.config.v1+json"
INLINE_KEY = "nbcontainer.buildcache.v1"
VERSION = 1

# buildx/BuildKit attributes that change how BuildKit encodes its own cache; accepted so
# a buildx command line works unchanged, and ignored (our format has one encoding).
_IGNORED_ATTRS = frozenset({"image-manifest", "oci-mediatypes", "compression",
                            "compression-level", "force-compression", "store", "name"})
_HINT = "use type=registry,ref=REGISTRY/REPO:TAG[,mode=min|max] or type=inline"


@dataclass(frozen=True)
class CacheSpec:
    """One ``--cache-to`` / ``--cache-from`` value."""

    type: str  # "registry" | "inline"
    ref: Reference | None = None
    mode: str = "min"
    ignore_error: bool = False

    def __str__(self) -> str:
        return f"type={self.type}" + (f",ref={self.ref}" if self.ref else "")


def parse_spec(spec: str, *, export: bool) -> CacheSpec:
    """buildx syntax: ``type=registry,ref=R,mode=max``; ``--cache-from`` also takes a bare
    ref. A malformed value is a :class:`BuildError` (before any work is done)."""
    flag = "--cache-to" if export else "--cache-from"
    where = f"{flag} {spec!r}"
    attrs = _attributes(spec, flag, export)
    kind = attrs.pop("type", "registry")
    if kind not in ("registry", "inline"):
        raise BuildError(f"{where}: cache type {kind!r} is not supported",
                         hint="only type=registry and type=inline are (no local/gha/s3)")
    if kind == "inline" and not export:
        raise BuildError(f"{where}: inline cache is read from an image",
                         hint="use --cache-from IMAGE (or type=registry,ref=IMAGE)")
    mode = attrs.pop("mode", "min").lower()
    if mode not in ("min", "max"):
        raise BuildError(f"{where}: mode must be min or max, not {mode!r}")
    if kind == "inline" and mode == "max":
        raise BuildError(f"{where}: inline cache only supports mode=min",
                         hint="use type=registry,ref=...,mode=max for every stage's steps")
    ignore = attrs.pop("ignore-error", "false").lower()
    if ignore not in ("true", "false", "1", "0"):
        raise BuildError(f"{where}: ignore-error must be true or false")
    raw_ref = attrs.pop("ref", None)
    unknown = sorted(set(attrs) - _IGNORED_ATTRS)
    if unknown:
        raise BuildError(f"{where}: unknown attribute {unknown[0]!r}", hint=_HINT)
    ref = _cache_ref(raw_ref, kind, where, export)
    return CacheSpec(kind, ref, mode, ignore in ("true", "1"))


def _attributes(spec: str, flag: str, export: bool) -> dict[str, str]:
    """``k=v,k=v`` → dict (keys lower-cased); a bare ``--cache-from`` value is a ref."""
    text = spec.strip()
    if not text:
        raise BuildError(f"{flag}: empty value", hint=_HINT)
    if "=" not in text.split(",")[0]:
        if export:
            raise BuildError(f"{flag} {spec!r}: expected type=...", hint=_HINT)
        text = f"type=registry,ref={text}"
    attrs: dict[str, str] = {}
    for part in text.split(","):
        k, sep, v = part.partition("=")
        k = k.strip().lower()
        if not sep or not k:
            raise BuildError(f"{flag} {spec!r}: {part!r} is not key=value", hint=_HINT)
        if k in attrs:
            raise BuildError(f"{flag} {spec!r}: {k} is given twice", hint=_HINT)
        attrs[k] = v.strip()
    return attrs


def _cache_ref(raw: str | None, kind: str, where: str, export: bool) -> Reference | None:
    """The ``ref=`` of a registry cache (a tag to push to when exporting); inline has none."""
    if kind != "registry":
        if raw:
            raise BuildError(f"{where}: type=inline takes no ref",
                             hint="push the image; others use --cache-from IMAGE")
        return None
    if not raw:
        raise BuildError(f"{where}: type=registry needs ref=REGISTRY/REPO:TAG", hint=_HINT)
    try:
        ref = Reference.parse(raw)
    except NbcontainerError as exc:
        raise BuildError(f"{where}: {exc.message}", hint=_HINT) from None
    if export and ref.tag is None:
        raise BuildError(f"{where}: the cache needs a tag to be pushed to",
                         hint="e.g. ref=registry.example.com/app:buildcache")
    return ref


@dataclass
class CacheOptions:
    """The parsed ``--cache-from``/``--cache-to`` of one build."""

    sources: list[CacheSpec] = field(default_factory=list)
    exports: list[CacheSpec] = field(default_factory=list)
    _collected: dict[str, dict[str, ImageState]] = field(default_factory=dict)  # mode → entries

    @classmethod
    def parse(cls, cache_from: Sequence[str] | str = (), cache_to: Sequence[str] | str = (),
              build_args: Mapping[str, str] | None = None) -> CacheOptions:
        cache_from = [cache_from] if isinstance(cache_from, str) else list(cache_from)
        cache_to = [cache_to] if isinstance(cache_to, str) else list(cache_to)
        opts = cls([parse_spec(s, export=False) for s in cache_from],
                   [parse_spec(s, export=True) for s in cache_to])
        inline = (build_args or {}).get("BUILDKIT_INLINE_CACHE", "")
        if inline.lower() in ("1", "true") and not any(s.type == "inline"
                                                       for s in opts.exports):
            opts.exports.append(CacheSpec("inline"))
        return opts

    def load(self, store: Store, reporter: StepReporter, platform: Platform, *,
             no_cache: bool = False) -> RemoteCache | None:
        """Import every ``--cache-from`` (warnings for the unusable ones); an index picks
        ``platform``'s cache."""
        if not self.sources or no_cache:
            return None
        cache = RemoteCache(store, reporter, platform)
        for spec in self.sources:
            assert spec.ref is not None
            cache.add(spec.ref)
        return cache

    def collect(self, result: BuildResult, plan: BuildPlan) -> dict[str, Any] | None:
        """After each solve (one per platform): keep its entries for :meth:`export`;
        returns the image config keys of an inline cache (None without one)."""
        for spec in self.exports:
            if spec.type == "registry":
                self._collected.setdefault(spec.mode, {}).update(
                    stage_entries(result, plan, spec.mode))
        if any(spec.type == "inline" for spec in self.exports):
            return {INLINE_KEY: cache_document(stage_entries(result, plan, "min"), "min")}
        return None

    def export(self, session: BuildSession) -> None:
        """Push the registry caches (each a numbered ``[internal]`` step)."""
        for spec in self.exports:
            if spec.type != "registry":
                continue
            assert spec.ref is not None
            step = session.reporter.internal(f"exporting cache to {spec.ref}")
            entries = self._collected.get(spec.mode, {})
            try:
                # hits whose blobs are still remote
                session.fetch_layers([lr.blob for st in entries.values() for lr in st.layers])
                digest = push_cache(session.store, entries, spec.ref, spec.mode)
            except NbcontainerError as exc:
                if not spec.ignore_error:
                    step.error(exc)
                    raise BuildError(f"exporting cache to {spec.ref}: {exc.message}",
                                     hint=exc.hint) from None
                step.warn(f"exporting cache to {spec.ref} failed: {exc.message} "
                          "(ignore-error=true)")
            else:
                step.output(f"cache manifest {digest}\n".encode())
            step.done()


# ---------------------------------------------------------------------- export


def stage_entries(result: BuildResult, plan: BuildPlan, mode: str) -> dict[str, ImageState]:
    """The entries recorded by the build: every stage's (max), or those of the target stage
    and of the stages it is built ``FROM`` (min, the steps whose layers make the result)."""
    recorded = result.stage_entries
    if mode == "max":
        indexes: Iterable[int] = sorted(recorded)
    else:
        chain: list[int] = []
        i: int | None = plan.target
        while i is not None and i not in chain:
            chain.append(i)
            i = plan.stages[i].base_stage
        indexes = reversed(chain)
    out: dict[str, ImageState] = {}
    for i in indexes:
        out.update(recorded.get(i, {}))
    return out


def cache_document(entries: Mapping[str, ImageState], mode: str) -> dict[str, Any]:
    return {"version": VERSION, "mode": mode,
            "entries": {k: json.loads(s.to_json()) for k, s in sorted(entries.items())}}


def cache_manifest(entries: Mapping[str, ImageState], mode: str) -> tuple[bytes, Any]:
    """(config bytes, manifest) of the cache artifact for ``entries``."""
    from ..oci.manifest import Manifest

    config = json.dumps(cache_document(entries, mode), sort_keys=True,
                        separators=(",", ":")).encode()
    layers: dict[Digest, Descriptor] = {}
    for key in sorted(entries):
        for lr in entries[key].layers:
            layers.setdefault(lr.blob, lr.descriptor)
    manifest = Manifest(Descriptor(CONFIG_TYPE, Digest.of(config), len(config)),
                        tuple(layers.values()), artifact_type=ARTIFACT_TYPE)
    return config, manifest


def push_cache(store: Store, entries: Mapping[str, ImageState], ref: Reference,
               mode: str) -> Digest:
    """Push the artifact through the registry's push path (skip, mount or upload each blob
    concurrently; the manifest last, so the registry never holds a dangling one)."""
    from ..registry import RegistryClient
    from ..registry.client import env_jobs
    from ..registry.push import _push  # the image push's blob loop, reused as it is

    config, manifest = cache_manifest(entries, mode)
    store.blobs.put(config)  # _push uploads from the store
    data = manifest.to_bytes()
    digest = Digest.of(data)
    jobs = env_jobs()
    with RegistryClient(ref.domain, pool_size=jobs + 2) as client:
        _push(store, client, ref, digest, [(digest, data, manifest.media_type)], [manifest],
              _quiet, jobs, None)
    return digest


def _quiet(event: Any) -> None:
    """Per-blob push events would interleave with the build's numbered steps."""


# ---------------------------------------------------------------------- import


@dataclass
class _Source:
    ref: Reference
    client: Any  # RegistryClient
    entries: dict[str, Any]
    blobs: dict[Digest, int]  # blob → size, what this repository serves


class RemoteCache:
    """Entries imported from ``--cache-from`` sources, in the order given."""

    def __init__(self, store: Store, reporter: StepReporter, platform: Platform) -> None:
        self.store = store
        self.reporter = reporter
        self.platform = platform
        self.sources: list[_Source] = []
        self._locks: dict[Digest, threading.Lock] = {}
        self._where: dict[Digest, _Source] = {}  # blob of a hit → the source that serves it
        self._lock = threading.Lock()

    def close(self) -> None:
        for src in self.sources:
            src.client.close()
        self.sources = []

    # -------------------------------------------------------------- loading
    def add(self, ref: Reference) -> bool:
        """Read the cache at ``ref``; False (and a warning) when it can't be used."""
        from ..registry import RegistryClient
        from ..registry.client import env_jobs
        step = self.reporter.internal(f"importing cache manifest from {ref}")
        client = RegistryClient(ref.domain, pool_size=env_jobs() + 2)
        try:
            entries, blobs = self._read(client, ref)
        except (NbcontainerError, OSError, ValueError, KeyError, TypeError) as exc:
            client.close()
            msg = getattr(exc, "message", None) or str(exc)
            step.warn(f"cache {ref} not used: {msg}")
            step.done()
            return False
        self.sources.append(_Source(ref, client, entries, blobs))
        step.output(f"{len(entries)} cache entries\n".encode())
        step.done()
        return True

    def _read(self, client: Any, ref: Reference) -> tuple[dict[str, Any], dict[Digest, int]]:
        from ..oci.manifest import Index, Manifest
        from ..oci.manifest import parse as parse_manifest

        repo = ref.path
        data, media_type, _ = client.get_manifest(repo, ref.identifier)
        parsed = parse_manifest(data, media_type)
        if isinstance(parsed, Index):
            child = _choose(parsed, self.platform)
            data, media_type, _ = client.get_manifest(repo, str(child.digest))
            parsed = parse_manifest(data, media_type)
        if not isinstance(parsed, Manifest):
            raise BuildError("nested indexes are not supported")
        blobs = {d.digest: d.size for d in parsed.layers}
        try:
            doc = json.loads(client.get_blob(repo, parsed.config.digest))
        except (ValueError, RecursionError):  # a registry's blob, not ours: anything can be
            raise BuildError(f"{ref}: the cache config is not valid JSON") from None
        if parsed.artifact_type == ARTIFACT_TYPE or parsed.config.media_type == CONFIG_TYPE:
            return _entries(doc), blobs
        if parsed.config.media_type in mt.CONFIG_TYPES:
            if not isinstance(doc, dict) or INLINE_KEY not in doc:
                raise BuildError("the image has no inline cache",
                                 hint="build it with --cache-to type=inline")
            return _entries(doc[INLINE_KEY]), blobs
        raise BuildError(f"not a build cache (config type {parsed.config.media_type})")

    # -------------------------------------------------------------- lookups
    def get(self, key: str) -> ImageState | None:
        """The state for ``key`` if a source has it and serves every layer blob the store
        lacks, else None (a miss). The blobs are not fetched here: :meth:`ensure` does, when
        the builder reads them (so a mode=max hit on a builder stage whose result only a
        cached ``COPY --from`` used never downloads that stage's layers)."""
        for src in self.sources:
            raw = src.entries.get(key)
            if raw is None:
                continue
            try:
                state = ImageState.from_json(json.dumps(raw))
            except (ValueError, KeyError, TypeError, NbcontainerError):
                continue  # malformed entry: a miss, the step runs
            missing = [lr for lr in state.layers if not self.store.blobs.has(lr.blob)]
            if any(lr.blob not in src.blobs for lr in missing):
                continue  # names a blob this repository doesn't serve
            with self._lock:
                for lr in missing:
                    self._where.setdefault(lr.blob, src)
            return state
        return None

    def ensure(self, blobs: Sequence[Digest]) -> None:
        """Fetch the blobs a hit named that the store lacks: concurrently, largest first, with
        the pull's worker pool (the first error stops all); verified by digest."""
        todo: list[tuple[_Source, Digest]] = []
        for digest in dict.fromkeys(blobs):
            if self.store.blobs.has(digest):
                continue
            with self._lock:
                src = self._where.get(digest)
            src = src or next((s for s in self.sources if digest in s.blobs), None)
            if src is not None:
                todo.append((src, digest))
        if not todo:
            return
        try:
            if len(todo) == 1:
                self._fetch(*todo[0])
            else:
                from ..registry.client import Cancel, env_jobs
                from ..registry.transfer import run_all

                todo.sort(key=lambda t: -t[0].blobs[t[1]])
                run_all(env_jobs(), todo, lambda t, cancel: self._fetch(*t, cancel), Cancel())
        except (NbcontainerError, OSError) as exc:
            src, digest = todo[0]
            msg = getattr(exc, "message", None) or str(exc)
            raise BuildError(f"fetching cached layers from {src.ref} failed: {msg}",
                             hint="re-run the build; --no-cache (or no --cache-from) builds "
                                  "without the registry cache") from None

    def _fetch(self, src: _Source, digest: Digest,
               cancel: threading.Event | None = None) -> None:
        """One blob into the store, verified; concurrent stages fetch a blob once."""
        with self._lock:
            lock = self._locks.setdefault(digest, threading.Lock())
        size = src.blobs[digest]
        with lock:
            if self.store.blobs.has(digest):
                return
            with self.store.blobs.writer(digest, size) as w:
                src.client.download_blob(src.ref.path, digest, size, w, None, cancel)
                w.commit()


def _entries(doc: Any) -> dict[str, Any]:
    if not isinstance(doc, dict) or doc.get("version") != VERSION or \
            not isinstance(doc.get("entries"), dict):
        raise BuildError(f"unsupported build cache format (want version {VERSION})")
    return dict(doc["entries"])


def _choose(index: Any, wanted: Any) -> Descriptor:
    from ..oci.platform import best_match

    candidates = [m for m in index.manifests if m.platform is not None]
    i = best_match(wanted, [m.platform for m in candidates])
    if i is None:
        raise BuildError(f"no cache for platform {wanted}")
    return candidates[i]

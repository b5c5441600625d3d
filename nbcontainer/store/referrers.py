"""The store's referrers index (``referrers.json``): subject digest → artifact manifests.

The OCI image spec 1.1 lets a manifest point at another one through ``subject`` (a signature,
an SBOM, a build provenance statement). A registry answers "what refers to X" with the
referrers API; the store answers it from this small file, kept like ``refs.json``: read
freely, rewritten atomically under an exclusive file lock. Artifacts are not images: they are
not listed by ``images`` and live exactly as long as their subject (see ``gc.prune``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import StoreError
from ..oci.digest import Digest
from ..oci.manifest import Manifest
from . import locks
from .refs import write_json_atomic

if TYPE_CHECKING:
    from .store import Store

# Build provenance (an in-toto statement with a SLSA predicate) as attached by the builder.
IN_TOTO = "application/vnd.in-toto+json"
STATEMENT_V1 = "https://in-toto.io/Statement/v1"
SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"
PREDICATE_ANNOTATION = "in-toto.io/predicate-type"


class ReferrersDB:
    """``{"version": 1, "referrers": {subject digest: [descriptor dict, …]}}``."""

    def __init__(self, path: Path):
        self.path = path
        self.lock_path = path.with_suffix(".lock")

    def read(self) -> dict[str, list[dict[str, Any]]]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        try:
            doc = json.loads(raw)
            return {k: list(v) for k, v in dict(doc.get("referrers", {})).items()}
        except (ValueError, AttributeError, TypeError) as e:
            raise StoreError(
                f"the store's referrers index {self.path} is corrupt: {e}",
                hint="delete it; images are unaffected, only their attached artifacts are "
                     "forgotten (pull or build them again)",
            ) from None

    @contextmanager
    def update(self) -> Iterator[dict[str, list[dict[str, Any]]]]:
        """Read-modify-write under an exclusive lock; written atomically on success only."""
        with locks.exclusive(self.lock_path):
            data = self.read()
            yield data
            self._write({k: v for k, v in data.items() if v})

    def _write(self, data: dict[str, list[dict[str, Any]]]) -> None:
        write_json_atomic(self.path, {"version": 1, "referrers": data})


def statements(store: Store, digest: Digest) -> list[tuple[Digest, dict[str, Any]]]:
    """Every in-toto statement attached to the manifest ``digest``: (artifact digest, doc)."""
    out = []
    for desc in store.referrers(digest, IN_TOTO):
        try:
            manifest = store.read_manifest(desc.digest)
        except Exception:  # noqa: BLE001 - a damaged artifact is fsck's business
            continue
        if not isinstance(manifest, Manifest):
            continue
        for layer in manifest.layers:
            if layer.media_type == IN_TOTO and store.blobs.has(layer.digest):
                try:
                    doc = json.loads(store.blobs.read(layer.digest))
                except (ValueError, RecursionError):
                    continue
                if isinstance(doc, dict):
                    out.append((desc.digest, doc))
    return out


def _obj(value: Any) -> Mapping[str, Any]:
    """A statement pulled from a registry is anyone's JSON: a field that is not an object
    reads as an empty one."""
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def summary(artifact: Digest, doc: Any) -> dict[str, Any]:
    """What ``inspect`` shows of a statement: type, Dockerfile, context, bases, build args.
    Fields of the wrong type show as empty (the statement came from outside)."""
    doc = _obj(doc)
    out: dict[str, Any] = {"Digest": str(artifact), "ArtifactType": IN_TOTO,
                           "PredicateType": _text(doc.get("predicateType"))}
    pred = doc.get("predicate")
    if doc.get("predicateType") != SLSA_PROVENANCE_V1 or not isinstance(pred, Mapping):
        return out
    bdef = _obj(pred.get("buildDefinition"))
    ext = _obj(bdef.get("externalParameters"))
    cfg = _obj(ext.get("configSource"))
    req = _obj(ext.get("request"))
    run = _obj(pred.get("runDetails"))
    meta = _obj(run.get("metadata"))

    def sha(d: Any) -> str:
        hexd = _text(_obj(_obj(d).get("digest")).get("sha256"))
        return f"sha256:{hexd}" if hexd else ""

    deps = bdef.get("resolvedDependencies")
    out.update({
        "BuildType": _text(bdef.get("buildType")),
        "Builder": _text(_obj(run.get("builder")).get("id")),
        "Mode": _text(_obj(meta.get("nbcontainer")).get("mode")),
        "Dockerfile": {"Path": _text(cfg.get("path")), "Digest": sha(cfg)},
        "Context": {"Digest": sha(ext.get("context"))},
        "Target": _text(req.get("target")),
        "Platform": _text(req.get("platform")),
        "BuildArgs": {k: v for k, v in _obj(req.get("args")).items() if isinstance(v, str)},
        "BaseImages": [{"Name": _text(_obj(d).get("uri")), "Digest": sha(d)}
                       for d in (deps if isinstance(deps, list) else [])],
        "StartedOn": _text(meta.get("startedOn")),
        "FinishedOn": _text(meta.get("finishedOn")),
    })
    return out

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
                    out.append((desc.digest, json.loads(store.blobs.read(layer.digest))))
                except ValueError:
                    continue
    return out


def summary(artifact: Digest, doc: Mapping[str, Any]) -> dict[str, Any]:
    """What ``inspect`` shows of a statement: type, Dockerfile, context, bases, build args."""
    out: dict[str, Any] = {"Digest": str(artifact), "ArtifactType": IN_TOTO,
                           "PredicateType": doc.get("predicateType", "")}
    pred = doc.get("predicate") or {}
    if doc.get("predicateType") != SLSA_PROVENANCE_V1 or not isinstance(pred, Mapping):
        return out
    bdef = pred.get("buildDefinition") or {}
    ext = bdef.get("externalParameters") or {}
    cfg = ext.get("configSource") or {}
    req = ext.get("request") or {}
    run = pred.get("runDetails") or {}

    def sha(d: Any) -> str:
        hexd = ((d or {}).get("digest") or {}).get("sha256")
        return f"sha256:{hexd}" if hexd else ""

    out.update({
        "BuildType": bdef.get("buildType", ""),
        "Builder": (run.get("builder") or {}).get("id", ""),
        "Mode": ((run.get("metadata") or {}).get("nbcontainer") or {}).get("mode", ""),
        "Dockerfile": {"Path": cfg.get("path", ""), "Digest": sha(cfg)},
        "Context": {"Digest": sha(ext.get("context"))},
        "Target": req.get("target", ""),
        "Platform": req.get("platform", ""),
        "BuildArgs": dict(req.get("args") or {}),
        "BaseImages": [{"Name": d.get("uri", ""), "Digest": sha(d)}
                       for d in bdef.get("resolvedDependencies") or []],
        "StartedOn": (run.get("metadata") or {}).get("startedOn", ""),
        "FinishedOn": (run.get("metadata") or {}).get("finishedOn", ""),
    })
    return out

"""Build provenance: an in-toto Statement (SLSA provenance v1) attached to the image it
describes as an OCI 1.1 referrer artifact.

What BuildKit/buildx do with ``--provenance``, in the OCI referrers model rather than as an
extra entry of an image index: the statement is the one layer of an artifact manifest
(``artifactType: application/vnd.in-toto+json``, empty config) whose ``subject`` is the image
manifest, so registries list it through the referrers API (or the ``sha256-<hex>`` tag schema)
and the store keeps it exactly as long as the image.

Modes as buildx's: ``min`` (the default of ``--provenance``) records the Dockerfile's digest,
the context's digest, target, platform, build args and the base images' digests; ``max`` adds
the Dockerfile text, per-stage details and the ids (never the values) of secrets and ssh
sockets. Secret values never reach the statement: ``--secret`` values are not build args, and
proxy build args (which may carry credentials, and which BuildKit keeps out of history) are
dropped. With ``SOURCE_DATE_EPOCH`` the statement is byte-for-byte reproducible.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from .. import __version__
from ..dockerfile import BuildPlan
from ..errors import BuildError, ReferenceFormatError
from ..oci import canonical
from ..oci import mediatypes as mt
from ..oci.descriptor import EMPTY_DESCRIPTOR, EMPTY_JSON, Descriptor
from ..oci.digest import Digest
from ..oci.manifest import Manifest
from ..oci.platform import Platform
from ..oci.reference import Reference
from ..store import Store
from ..store.referrers import (
    IN_TOTO,
    PREDICATE_ANNOTATION,
    SLSA_PROVENANCE_V1,
    STATEMENT_V1,
)
from .sources.context import BuildContext

BUILD_TYPE = "https://nbcontainer.dev/provenance/dockerfile/v1"
BUILDER_ID = "https://nbcontainer.dev/builder"
MODES = ("min", "max")

# BuildKit's "predefined proxy args": usable without ARG, never in history, cache keys or
# provenance (a proxy URL often carries user:password).
PROXY_ARGS = frozenset(n for a in ("HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY",
                                   "ALL_PROXY") for n in (a, a.lower()))


def parse_mode(value: bool | str | None) -> str | None:
    """``--provenance`` values as buildx takes them → ``"min"``, ``"max"`` or None (off):
    ``true``/``1``/``mode=min``/``min``, ``mode=max``/``max``, ``false``/``0``."""
    if value is None or value is False:
        return None
    if value is True:
        return "min"
    text = str(value).strip()
    low = text.lower()
    if low in ("", "true", "1", "yes", "on"):
        return "min"
    if low in ("false", "0", "no", "off"):
        return None
    if low in MODES:
        return low
    mode = "min"
    for part in text.split(","):
        key, sep, val = part.partition("=")
        key, val = key.strip().lower(), val.strip().lower()
        if key == "mode" and sep and val in MODES:
            mode = val
        elif key == "disabled" and sep:
            if val in ("true", "1"):
                return None
        elif key == "version" and val == "v1":
            pass  # SLSA provenance v1 is what is written (buildx's v0.2 is not)
        else:
            raise BuildError(f"invalid --provenance value {text!r}",
                             hint="use true, false, mode=min or mode=max (version=v1 only)")
    return mode


@dataclass
class BuildRecord:
    """What a build knew, collected by ``build()`` for the statement."""

    dockerfile_name: str
    dockerfile_text: str
    context: BuildContext
    plan: BuildPlan
    target: str | None
    platform: Platform
    build_args: Mapping[str, str]
    bases: Mapping[tuple[str, str], Any]  # (name, platform) → StoredImage
    secret_ids: Sequence[str] = ()
    ssh_ids: Sequence[str] = ()
    epoch: int | None = None
    started: str = ""
    finished: str = ""
    tags: Sequence[str] = field(default_factory=tuple)


def context_digest(ctx: BuildContext) -> str:
    """sha256 hex over what COPY/ADD could see (after .dockerignore): every path, its type,
    permission bits and content digest or link target. Times and owners are left out, as in
    BuildKit's content checksums: a fresh checkout of the same tree gives the same digest."""
    from .copyplan import context_items

    h = hashlib.sha256()
    for item in context_items(ctx, "", None):
        if not item.rel:
            continue  # the context root itself
        value = item.digest if item.kind == "file" else item.host if item.kind == "symlink" else ""
        h.update(f"{item.rel}\0{item.kind}\0{item.mode:o}\0{value}\n".encode())
    return h.hexdigest()


def _purl(name: str, platform: Platform) -> str:
    """A package URL for an image reference, as BuildKit names materials and subjects."""
    try:
        ref = Reference.parse(name)
    except ReferenceFormatError:
        return name
    version = f"@{ref.tag}" if ref.tag else f"@{ref.digest}" if ref.digest else ""
    return f"pkg:docker/{ref.familiar_repository}{version}?platform={quote(str(platform), safe='')}"


def _bases(record: BuildRecord) -> list[dict[str, Any]]:
    """resolvedDependencies: the images the build read (FROM and COPY --from), each with the
    digest its name resolved to (the index's when it came through one)."""
    plan = record.plan
    target = str(record.platform)
    stage_bases = {s.base_name for s in plan.stages}
    used: set[tuple[str, str]] = set()
    for i in plan.reachable:
        st = plan.stages[i]
        used.add((st.base_name, _norm(st.platform) if st.platform else target))
    out = []
    for (name, plat) in sorted(record.bases):
        if (name, plat) not in used and (name in stage_bases or plat != target):
            continue  # a base of a stage (or platform) this build did not use
        stored = record.bases[(name, plat)]
        top: Digest = stored.index_digest or stored.digest
        dep: dict[str, Any] = {"uri": _purl(name, Platform.parse(plat)),
                               "digest": {top.algorithm: top.hex}}
        if stored.index_digest is not None:
            dep["annotations"] = {"manifest": str(stored.digest)}
        out.append(dep)
    return out


def _norm(platform: str) -> str:
    try:
        return str(Platform.parse(platform))
    except Exception:  # noqa: BLE001 - an odd string names itself
        return platform


def _args(build_args: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in sorted(build_args.items()) if k not in PROXY_ARGS}


def _stages(plan: BuildPlan) -> list[dict[str, Any]]:
    out = []
    for i in plan.order:
        st = plan.stages[i]
        out.append({"index": st.index, "name": st.name, "base": st.base_name,
                    "platform": st.platform or str(plan.target_platform),
                    "instructions": [ins.original.strip() for ins in st.raw_instructions]})
    return out


def statement(subject: Descriptor, record: BuildRecord, mode: str = "min",
              subject_name: str | None = None) -> dict[str, Any]:
    """The in-toto Statement v1 (SLSA provenance v1 predicate) for one image manifest."""
    if mode not in MODES:
        raise BuildError(f"unknown provenance mode {mode!r}", hint="use min or max")
    dockerfile = record.dockerfile_text.encode()
    request: dict[str, Any] = {"frontend": "dockerfile",
                               "platform": str(record.platform),
                               "args": _args(record.build_args)}
    if record.target:
        request["target"] = record.target
    external: dict[str, Any] = {
        # a Dockerfile outside the context is named by its file name only (no host paths)
        "configSource": {"path": record.dockerfile_name if not
                         record.dockerfile_name.startswith("/") else
                         record.dockerfile_name.rsplit("/", 1)[-1],
                         "digest": {"sha256": hashlib.sha256(dockerfile).hexdigest()}},
        "context": {"digest": {"sha256": context_digest(record.context)}},
        "request": request,
    }
    if mode == "max":
        request["secrets"] = [{"id": s} for s in sorted(record.secret_ids)]
        request["ssh"] = [{"id": s} for s in sorted(record.ssh_ids)]
    build_def: dict[str, Any] = {
        "buildType": BUILD_TYPE,
        "externalParameters": external,
        "resolvedDependencies": _bases(record),
    }
    if mode == "max":
        build_def["internalParameters"] = {
            "buildConfig": {"dockerfile": record.dockerfile_text,
                            "stages": _stages(record.plan),
                            "targetStage": record.plan.target_stage.index},
        }
    name = subject_name or (_purl(record.tags[0], record.platform) if record.tags else "_")
    if record.epoch is not None:
        # Reproducible: the same inputs give the same id, as the same image gets one digest.
        seed = canonical.dumps([str(subject.digest), build_def])
        invocation = hashlib.sha256(seed).hexdigest()[:32]
    else:
        invocation = uuid.uuid4().hex
    return {
        "_type": STATEMENT_V1,
        "subject": [{"name": name,
                     "digest": {subject.digest.algorithm: subject.digest.hex}}],
        "predicateType": SLSA_PROVENANCE_V1,
        "predicate": {
            "buildDefinition": build_def,
            "runDetails": {
                "builder": {"id": f"{BUILDER_ID}@v{__version__}",
                            "version": {"nbcontainer": __version__}},
                "metadata": {"invocationId": invocation, "startedOn": record.started,
                             "finishedOn": record.finished,
                             "nbcontainer": {"mode": mode}},
            },
        },
    }


def attach(store: Store, subject: Descriptor, doc: Mapping[str, Any]) -> Digest:
    """Store ``doc`` as an in-toto referrer artifact of ``subject``; the artifact manifest's
    digest. Call once per platform manifest (a multi-platform build gets one each)."""
    body = canonical.dumps(doc)
    predicate = str(doc.get("predicateType", ""))
    layer_digest = store.blobs.put(body)
    store.blobs.put(EMPTY_JSON)
    manifest = Manifest(
        EMPTY_DESCRIPTOR,
        (Descriptor(IN_TOTO, layer_digest, len(body),
                    annotations={PREDICATE_ANNOTATION: predicate}),),
        media_type=mt.OCI_MANIFEST,
        subject=Descriptor(subject.media_type, subject.digest, subject.size),
        artifact_type=IN_TOTO,
        annotations={PREDICATE_ANNOTATION: predicate},
    )
    return store.add_referrer(manifest.to_bytes())

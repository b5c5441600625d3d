"""Unit tests of ``registry.referrers`` against an in-memory fake of the client: the paths
the real docker-registry 2.8 cannot exercise (a registry *with* the referrers API, which
answers ``OCI-Subject`` on push and lists referrers itself)."""

from __future__ import annotations

import json
from pathlib import Path

from nbcontainer.builder import provenance as prov
from nbcontainer.oci import mediatypes as mt
from nbcontainer.oci.config import ImageConfig
from nbcontainer.oci.descriptor import Descriptor
from nbcontainer.oci.digest import Digest
from nbcontainer.oci.manifest import Index, Manifest
from nbcontainer.registry.errors import RegistryResponseError
from nbcontainer.registry.referrers import list_referrers, pull_referrers, push_referrers, tag_for
from nbcontainer.store import Store
from nbcontainer.store.referrers import statements


class _Resp:
    def __init__(self, data: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.data = data
        self._headers = headers or {}

    def header(self, name: str) -> str | None:
        return self._headers.get(name)

    def close(self) -> None:
        pass


def _404() -> RegistryResponseError:
    return RegistryResponseError("not found", status=404, code="MANIFEST_UNKNOWN")


class FakeRegistry:
    """Manifests and blobs of one repository; ``referrers_api`` switches the 1.1 API on."""

    def __init__(self, referrers_api: bool) -> None:
        self.referrers_api = referrers_api
        self.manifests: dict[str, bytes] = {}
        self.blobs: dict[Digest, bytes] = {}
        self.calls: list[tuple[str, str]] = []

    def _subject_index(self, digest: str) -> bytes:
        found = []
        for ref, data in self.manifests.items():
            doc = json.loads(data)
            if ref.startswith("sha256:") and doc.get("subject", {}).get("digest") == digest:
                found.append(Descriptor(doc["mediaType"], Digest.parse(ref), len(data),
                                        annotations=doc.get("annotations"),
                                        artifact_type=doc.get("artifactType")))
        return Index(tuple(found)).to_bytes()

    def request(self, method: str, path: str, **kw) -> _Resp:
        self.calls.append((method, path))
        if "/referrers/" in path:
            if not self.referrers_api:
                raise _404()
            return _Resp(self._subject_index(path.rsplit("/", 1)[1].split("?")[0]))
        if method == "PUT" and "/manifests/" in path:
            ref = path.rsplit("/", 1)[1]
            self.manifests[ref] = kw["body"]
            subject = json.loads(kw["body"]).get("subject")
            headers = {"OCI-Subject": subject["digest"]} if subject and self.referrers_api \
                else {}
            return _Resp(b"", headers)
        raise AssertionError(f"unexpected {method} {path}")

    def get_manifest(self, repo: str, ref: str) -> tuple[bytes, str, Digest]:
        self.calls.append(("GET", f"manifests/{ref}"))
        if ref not in self.manifests:
            raise _404()
        data = self.manifests[ref]
        return data, json.loads(data)["mediaType"], Digest.of(data)

    def put_manifest(self, repo: str, ref: str, data: bytes, media_type: str) -> Digest:
        self.calls.append(("PUT", f"manifests/{ref}"))
        self.manifests[ref] = data
        return Digest.of(data)

    def head_blob(self, repo: str, digest: Digest, push: bool = False) -> int | None:
        return len(self.blobs[digest]) if digest in self.blobs else None

    def upload_blob(self, repo, digest, size, opener, **kw) -> str:
        with opener() as f:
            self.blobs[digest] = f.read()
        return "uploaded"

    def get_blob(self, repo: str, digest: Digest) -> bytes:
        return self.blobs[digest]


def _image_with_statement(store: Store) -> tuple[Descriptor, Digest]:
    cfg = ImageConfig(architecture="amd64", os="linux").to_bytes()
    cfg_digest = store.blobs.put(cfg)
    manifest = Manifest(Descriptor(mt.OCI_CONFIG, cfg_digest, len(cfg)), ())
    digest = store.add_image(manifest.to_bytes(), tags=["img:1"])
    subject = manifest.descriptor()
    assert subject.digest == digest
    doc = {"_type": prov.STATEMENT_V1, "predicateType": prov.SLSA_PROVENANCE_V1,
           "subject": [{"name": "_", "digest": {"sha256": digest.hex}}], "predicate": {}}
    return subject, prov.attach(store, subject, doc)


def test_registry_with_the_referrers_api_needs_no_tag(tmp_path: Path) -> None:
    store = Store(tmp_path / "s")
    subject, artifact = _image_with_statement(store)
    reg = FakeRegistry(referrers_api=True)
    reg.manifests[str(subject.digest)] = store.blobs.read(subject.digest)
    assert push_referrers(store, reg, "r", [subject.digest]) == [artifact]
    assert tag_for(subject.digest) not in reg.manifests  # OCI-Subject: the registry indexes
    found = list_referrers(reg, "r", subject.digest)
    assert [d.digest for d in found] == [artifact]
    assert found[0].artifact_type == prov.IN_TOTO
    assert ("GET", f"manifests/{tag_for(subject.digest)}") not in reg.calls

    other = Store(tmp_path / "o")
    other.blobs.put(reg.manifests[str(subject.digest)])
    assert pull_referrers(other, reg, "r", [subject.digest]) == [artifact]
    assert statements(other, subject.digest) == statements(store, subject.digest)


def test_registry_without_it_gets_the_tag_index(tmp_path: Path) -> None:
    store = Store(tmp_path / "s")
    subject, artifact = _image_with_statement(store)
    reg = FakeRegistry(referrers_api=False)
    push_referrers(store, reg, "r", [subject.digest])
    index = json.loads(reg.manifests[tag_for(subject.digest)])
    assert index["mediaType"] == mt.OCI_INDEX
    assert [m["digest"] for m in index["manifests"]] == [str(artifact)]
    assert [d.digest for d in list_referrers(reg, "r", subject.digest)] == [artifact]


def test_pull_skips_other_artifact_types_and_wrong_subjects(tmp_path: Path) -> None:
    store = Store(tmp_path / "s")
    subject, artifact = _image_with_statement(store)
    reg = FakeRegistry(referrers_api=True)
    push_referrers(store, reg, "r", [subject.digest])
    # a signature-like artifact the pull does not want, listed for the same subject
    sig = Manifest(Descriptor(mt.OCI_EMPTY, Digest.of(b"{}"), 2, data=b"{}"), (),
                   subject=subject, artifact_type="application/vnd.example.sig")
    reg.manifests[str(sig.digest)] = sig.to_bytes()
    other = Store(tmp_path / "o")
    assert pull_referrers(other, reg, "r", [subject.digest]) == [artifact]
    assert [d.artifact_type for d in other.referrers(subject.digest)] == [prov.IN_TOTO]

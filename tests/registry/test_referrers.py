"""Build provenance travels with its image (OCI distribution spec 1.1 referrers), against the
real ``docker-registry`` (distribution 2.8: no referrers API, so the ``sha256-<hex>`` tag
schema), checked from outside with skopeo."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from nbcontainer import api
from nbcontainer.builder import provenance as prov
from nbcontainer.errors import RegistryError
from nbcontainer.oci import mediatypes as mt
from nbcontainer.oci.manifest import Index
from nbcontainer.oci.manifest import parse as parse_manifest
from nbcontainer.registry import pull, push
from nbcontainer.registry.referrers import list_referrers, tag_for
from nbcontainer.rootfs import make_busybox_rootfs
from nbcontainer.store import Store, fsck
from nbcontainer.store.referrers import statements

from .conftest import client_for


def skopeo_raw(ref: str) -> dict:
    proc = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false",
                           f"docker://{ref}"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture
def built(tmp_path: Path, store: Store, plain_registry, repo_name: str, monkeypatch):
    """An image built with --provenance, tagged for the plain registry."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    api.import_image(make_busybox_rootfs(tmp_path / "rootfs"), "busybox:latest", store=store)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "hello.txt").write_text("hello\n")
    ref = f"{plain_registry.host}/{repo_name}:1"
    img = api.build("FROM busybox\nARG V\nCOPY hello.txt /\n", ctx, tags=[ref],
                    build_args={"V": "7"}, store=store, provenance=True)
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    (artifact, doc), = statements(store, img.digest)
    return ref, img, artifact, doc


def test_push_creates_the_referrers_tag_index(built, store: Store, plain_registry,
                                              repo_name: str) -> None:
    ref, img, artifact, _ = built
    push(store, ref)
    repo_ref = f"{plain_registry.host}/{repo_name}"
    index = skopeo_raw(f"{repo_ref}:{tag_for(img.digest)}")
    assert tag_for(img.digest) == f"sha256-{img.digest.hex}"
    assert index["mediaType"] == mt.OCI_INDEX and index["schemaVersion"] == 2
    (entry,) = index["manifests"]
    assert entry["digest"] == str(artifact)
    assert entry["mediaType"] == mt.OCI_MANIFEST
    assert entry["artifactType"] == "application/vnd.in-toto+json"
    assert entry["annotations"]["in-toto.io/predicate-type"] == prov.SLSA_PROVENANCE_V1
    assert entry["size"] == len(store.blobs.read(artifact))
    remote = skopeo_raw(f"{repo_ref}@{artifact}")
    assert remote["subject"]["digest"] == str(img.digest)
    assert remote["artifactType"] == "application/vnd.in-toto+json"
    assert remote["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"
    # the image itself is untouched
    assert skopeo_raw(ref) == json.loads(store.blobs.read(img.digest))
    # listing through our client: no referrers API on distribution 2.8, the tag answers
    with client_for(plain_registry) as c:
        found = list_referrers(c, repo_name, img.digest)
        assert [d.digest for d in found] == [artifact]
        assert list_referrers(c, repo_name, img.digest, "application/x-other") == []


def test_push_again_merges_into_the_existing_index(built, store: Store, plain_registry,
                                                   repo_name: str) -> None:
    ref, img, artifact, doc = built
    push(store, ref)
    push(store, ref)  # idempotent: no duplicate entry
    # a second statement for the same image (say, max mode from a later run) is appended
    extra = prov.attach(store, img.manifest.descriptor(), {**doc, "predicate": {"x": 1}})
    push(store, ref)
    index = skopeo_raw(f"{plain_registry.host}/{repo_name}:{tag_for(img.digest)}")
    assert [m["digest"] for m in index["manifests"]] == [str(artifact), str(extra)]


def test_a_foreign_tag_in_the_way_is_an_error(built, store: Store, plain_registry,
                                              repo_name: str) -> None:
    """The spec: a referrers tag that is not an OCI index makes the client fail, not
    overwrite it."""
    ref, img, _, _ = built
    push(store, "busybox:latest", f"{plain_registry.host}/{repo_name}:{tag_for(img.digest)}")
    with pytest.raises(RegistryError, match="not an OCI index"):
        push(store, ref)


def test_pull_into_an_empty_store_brings_it_back(built, store: Store, store2: Store,
                                                 plain_registry) -> None:
    ref, img, artifact, doc = built
    push(store, ref)
    digest = pull(store2, ref)
    assert digest == img.digest
    assert [d.digest for d in store2.referrers(digest)] == [artifact]
    assert statements(store2, digest) == [(artifact, doc)]
    shown = api.inspect([ref], store=store2)[0]
    assert shown["Provenance"][0]["Digest"] == str(artifact)
    assert shown["Provenance"][0]["BuildArgs"] == {"V": "7"}
    assert fsck(store2).ok
    # pulled artifacts follow their image out of the store too
    api.rmi([ref], store=store2)
    api.prune(store=store2)
    assert not store2.blobs.has(artifact) and store2.referrers(digest) == []


def test_pull_of_an_image_without_referrers_is_unchanged(store: Store, store2: Store,
                                                         plain_registry, repo_name: str,
                                                         tmp_path: Path) -> None:
    api.import_image(make_busybox_rootfs(tmp_path / "rootfs"), "bb:1", store=store)
    ref = f"{plain_registry.host}/{repo_name}:plain"
    push(store, "bb:1", ref)
    digest = pull(store2, ref)
    assert store2.referrers(digest) == []
    assert "Provenance" not in api.inspect([ref], store=store2)[0]
    with client_for(plain_registry) as c:
        assert list_referrers(c, repo_name, digest) == []


def test_tag_index_is_a_plain_oci_index(built, store: Store, plain_registry,
                                        repo_name: str) -> None:
    """What we push under the tag parses as an index with descriptors only (no platform)."""
    ref, img, artifact, _ = built
    push(store, ref)
    with client_for(plain_registry) as c:
        data, media_type, _ = c.get_manifest(repo_name, tag_for(img.digest))
    parsed = parse_manifest(data, media_type)
    assert isinstance(parsed, Index) and parsed.manifests[0].platform is None
    assert parsed.manifests[0].digest == artifact


def test_multi_platform_build_one_statement_per_platform(tmp_path: Path, store: Store,
                                                         store2: Store, plain_registry,
                                                         repo_name: str) -> None:
    """Each platform manifest of the index gets its own statement (its own base digests),
    and push/pull -a carry them all."""
    from multiarch import make_arm64_rootfs

    from nbcontainer.builder.export import export_index
    from nbcontainer.oci.platform import Platform

    amd = api.import_image(make_busybox_rootfs(tmp_path / "amd"), store=store,
                           platform="linux/amd64")
    arm = api.import_image(make_arm64_rootfs(tmp_path / "arm"), store=store,
                           platform="linux/arm64")
    base_index = export_index(store, [(Platform.parse("linux/amd64"), amd.digest),
                                      (Platform.parse("linux/arm64"), arm.digest)],
                              ["busybox:latest"])
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "a").write_text("a\n")
    ref = f"{plain_registry.host}/{repo_name}:multi"
    api.build("FROM busybox\nCOPY a /a\n", ctx, tags=[ref], store=store,
              platform="linux/amd64,linux/arm64", provenance=True)
    index = store.read_manifest(store.resolve_digest(ref))
    assert isinstance(index, Index) and len(index.manifests) == 2
    assert store.referrers(index.digest) == []  # statements describe platform manifests
    bases = {"amd64": amd.digest, "arm64": arm.digest}
    for child in index.manifests:
        (artifact, doc), = statements(store, child.digest)
        assert doc["subject"][0]["digest"] == {"sha256": child.digest.hex}
        arch = child.platform.architecture
        (dep,) = doc["predicate"]["buildDefinition"]["resolvedDependencies"]
        assert dep["uri"] == f"pkg:docker/busybox@latest?platform=linux%2F{arch}"
        assert dep["digest"] == {"sha256": base_index.hex}
        assert dep["annotations"] == {"manifest": str(bases[arch])}
        assert doc["predicate"]["buildDefinition"]["externalParameters"]["request"][
            "platform"] == f"linux/{arch}"
    push(store, ref)
    for child in index.manifests:
        tag_index = skopeo_raw(f"{plain_registry.host}/{repo_name}:{tag_for(child.digest)}")
        assert [m["digest"] for m in tag_index["manifests"]] == \
            [str(d.digest) for d in store.referrers(child.digest)]
    pull(store2, ref, all_platforms=True)
    for child in index.manifests:
        assert statements(store2, child.digest) == statements(store, child.digest)

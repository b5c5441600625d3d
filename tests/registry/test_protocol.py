"""Protocol details against the plain registry, plus transport/settings units."""

from __future__ import annotations

import json
import os

import pytest

from nbcontainer.errors import RegistryError
from nbcontainer.oci import mediatypes as mt
from nbcontainer.oci.digest import Digest
from nbcontainer.registry import (
    RegistryClient,
    RegistrySettings,
    catalog,
    pull,
    pull_image,
    push,
    registry_domain,
)
from nbcontainer.registry.errors import response_error
from nbcontainer.registry.hosts import api_host, is_loopback
from nbcontainer.registry.transport import RetryPolicy, parse_retry_after

from .conftest import FAST_RETRY
from .images import image_blobs, store_image


def _client(reg, **kw) -> RegistryClient:
    return RegistryClient(reg.host, settings=RegistrySettings(), credential=None,
                          retry=FAST_RETRY, **kw)


def test_ping_uses_plain_http_on_loopback(plain_registry):
    c = _client(plain_registry)
    c.ping()
    assert c.base_url == f"http://{plain_registry.host}"
    assert c.auth.challenge is None


def test_plain_http_not_allowed_for_other_hosts():
    s = RegistrySettings(insecure=("myreg.local:5000", "10.0.0.0/8"))
    assert s.allows_http("127.0.0.1:5000") and s.allows_http("localhost:1")
    assert s.allows_http("myreg.local:5000") and s.allows_http("10.1.2.3:443")
    assert not s.allows_http("ghcr.io") and not s.allows_http("11.0.0.1")
    assert is_loopback("[::1]:5000") and not is_loopback("example.com")
    assert api_host("docker.io") == "registry-1.docker.io"
    assert registry_domain("https://index.docker.io/v1/") == "docker.io"
    assert registry_domain("http://host:5000/") == "host:5000"


def test_settings_from_config_and_env(tmp_path, monkeypatch):
    conf = tmp_path / "registries.json"
    conf.write_text(json.dumps({"insecure-registries": ["r.example:5000"],
                                "registry-mirrors": ["https://mirror.example"]}))
    monkeypatch.setenv("NBCONTAINER_REGISTRIES_CONF", str(conf))
    s = RegistrySettings.load()
    assert s.is_insecure("r.example:5000") and "https://mirror.example" in s.mirrors
    monkeypatch.setenv("NBCONTAINER_REGISTRY_MIRRORS", "http://127.0.0.1:1")
    monkeypatch.setenv("NBCONTAINER_INSECURE_REGISTRIES", "a.example")
    s = RegistrySettings.load()
    assert s.mirrors == ("http://127.0.0.1:1",) and s.is_insecure("a.example")


def test_chunked_and_monolithic_uploads(plain_registry, store, store2, repo_name):
    data = os.urandom(300_000)
    store_image(store, "local/u:1", [{"big": data}], compression="")
    c = _client(plain_registry, chunk_size=64 * 1024)  # forces PATCH chunks
    digest = push(store, "local/u:1", f"{plain_registry.host}/{repo_name}:1", client=c)
    assert pull(store2, f"{plain_registry.host}/{repo_name}:1", credential=None) == digest


def test_manifest_head_get_delete_and_errors(plain_registry, store, repo_name):
    store_image(store, "local/d:1", [{"d": b"d"}])
    digest = push(store, "local/d:1", f"{plain_registry.host}/{repo_name}:1", credential=None)
    c = _client(plain_registry)
    desc = c.head_manifest(repo_name, "1")
    assert desc.digest == digest and desc.media_type == mt.OCI_MANIFEST
    data, media_type, got = c.get_manifest(repo_name, str(digest))
    assert got == digest and Digest.of(data) == digest
    assert c.head_manifest(repo_name, "nope") is None
    with pytest.raises(RegistryError) as info:
        c.get_manifest(repo_name, "nope")
    assert "MANIFEST_UNKNOWN" in str(info.value)
    assert "nbcontainer ls" in info.value.hint
    with pytest.raises(RegistryError) as info:
        c.get_manifest("no/such-repo", "1")
    assert info.value.code in ("NAME_UNKNOWN", "MANIFEST_UNKNOWN")
    c.delete_manifest(repo_name, digest)
    assert c.head_manifest(repo_name, str(digest)) is None
    # a manifest whose blobs are missing: MANIFEST_BLOB_UNKNOWN with a hint
    manifest, _ = image_blobs([{"never": b"uploaded"}])
    with pytest.raises(RegistryError) as info:
        c.put_manifest(repo_name, "broken", manifest, mt.OCI_MANIFEST)
    assert info.value.status == 400 and info.value.hint


def test_catalog_and_tag_pagination(plain_registry, store, repo_name):
    store_image(store, "local/p:1", [{"p": b"p"}])
    for tag in ("a", "b", "c"):
        push(store, "local/p:1", f"{plain_registry.host}/{repo_name}:{tag}", credential=None)
    c = _client(plain_registry)
    assert sorted(c.list_tags(repo_name, page_size=1)) == ["a", "b", "c"]
    repos = c.catalog(page_size=1)  # distribution pages _catalog with Link
    assert repo_name in repos and len(repos) == len(set(repos))
    assert repo_name in catalog(plain_registry.host, credential=None)


def test_up_to_date_pull_downloads_nothing(plain_registry, store, store2, repo_name):
    store_image(store, "local/q:1", [{"q": b"q"}])
    push(store, "local/q:1", f"{plain_registry.host}/{repo_name}:1", credential=None)
    ref = f"{plain_registry.host}/{repo_name}:1"
    first = pull_image(store2, ref, credential=None)
    again = pull_image(store2, ref, credential=None)
    assert first.downloaded == 2 and again.downloaded == 0 and again.digest == first.digest


def test_docker_hub_pull_through_mirror(plain_registry, store, store2, monkeypatch):
    """docker.io references resolve through a configured mirror (no Docker Hub access)."""
    store_image(store, "local/hub:1", [{"hub": b"mirrored"}])
    # what a pull-through cache holds for docker.io/library/mirrortest:1
    digest = push(store, "local/hub:1", f"{plain_registry.host}/library/mirrortest:1",
                  credential=None)
    monkeypatch.setenv("NBCONTAINER_REGISTRY_MIRRORS", f"http://{plain_registry.host}")
    res = pull_image(store2, "mirrortest:1", credential=None)
    assert res.digest == digest and res.endpoint == plain_registry.host
    assert store2.image("docker.io/library/mirrortest:1").digest == digest


def test_retry_policy_and_retry_after():
    p = RetryPolicy(attempts=3, backoff=1, max_backoff=4, max_retry_after=30)
    assert 0.5 <= p.delay(0) <= 1 and 2 <= p.delay(2) <= 4
    assert p.delay(0, retry_after=7) == 7 and p.delay(0, retry_after=999) == 30
    assert parse_retry_after("5") == 5
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0
    assert parse_retry_after("junk") is None


def test_error_bodies_become_one_message():
    body = b'{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}'
    e = response_error(403, body, action="pushing manifest a/b:1", registry="ghcr.io",
                       repo="a/b")
    assert str(e).startswith("pushing manifest a/b:1 on ghcr.io failed (403): DENIED")
    assert "permissions" in e.hint
    e = response_error(429, b"Too Many Requests", action="pulling", registry="docker.io")
    assert e.code == "TOOMANYREQUESTS" and "log in" in e.hint
    e = response_error(404, b"404 page not found\n", action="x", registry="r")
    assert "404 page not found" in str(e)


def test_push_requires_complete_image(store, plain_registry):
    manifest, blobs = image_blobs([{"m": b"m"}])
    for d, b in blobs.items():
        store.blobs.put(b, d)
    store.add_image(manifest, tags=["local/inc:1"])
    layer = json.loads(manifest)["layers"][0]["digest"]
    store.blobs.delete(Digest.parse(layer))
    with pytest.raises(RegistryError) as info:
        push(store, "local/inc:1", f"{plain_registry.host}/x/inc:1", credential=None)
    assert "incomplete" in str(info.value)


def test_progress_events_and_platform_mismatch(plain_registry, store, store2, repo_name):
    from nbcontainer.progress import Collector
    store_image(store, "local/ev:1", [{"e": b"e" * 3000}], arch="arm64")
    ref = f"{plain_registry.host}/{repo_name}:1"
    push(store, "local/ev:1", ref, credential=None)
    again = Collector()
    push(store, "local/ev:1", ref, progress=again, credential=None)
    assert {(e.action, e.reason) for e in again.kinds("skipped")} == {("push", "exists")}
    whole = [e for e in again.kinds("done") if not e.id.startswith("sha256:")]
    assert [(e.id, e.text) for e in whole] == [(ref, str(store.image("local/ev:1").digest))]
    with pytest.raises(RegistryError) as info:
        pull(store2, ref, platform="linux/amd64", credential=None)
    assert "linux/arm64" in str(info.value)
    events = Collector()
    pull(store2, ref, platform="linux/arm64", progress=events, credential=None)
    starts = events.kinds("start")
    layer = store.image("local/ev:1").manifest.layers[0]
    assert [(e.id, e.total) for e in starts] == [(str(layer.digest), layer.size)]
    whole = [e for e in events.kinds("done") if not e.id.startswith("sha256:")]
    assert len(whole) == 1 and whole[0].current >= 1  # the layer (the config came earlier)
    again = Collector()
    pull(store2, ref, progress=again, credential=None)
    assert len(again.kinds("skipped")) == 2

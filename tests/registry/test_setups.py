"""Push, pull, pull by digest, tags, cross-repo mount and re-push skips against each of the
three real registry set-ups (plain HTTP, TLS + htpasswd, Bearer tokens)."""

from __future__ import annotations

from nbcontainer.oci.digest import Digest
from nbcontainer.progress import Collector
from nbcontainer.registry import list_tags, pull, push, push_image
from nbcontainer.store import fsck

from .conftest import client_for, credential_for, settings_for
from .images import store_image


def _kw(reg):
    return {"credential": credential_for(reg), "settings": settings_for(reg)}


def test_push_pull_roundtrip(any_registry, store, store2, repo_name, tmp_path):
    reg = any_registry
    src = store_image(store, "local/app:1", [{"a.txt": b"hello"}, {"b.txt": b"world" * 1000}])
    dest = f"{reg.host}/{repo_name}:v1"
    digestfile = tmp_path / "digest"
    events = Collector()
    pushed = push(store, "local/app:1", dest, progress=events, digestfile=digestfile, **_kw(reg))
    assert pushed == src
    assert digestfile.read_text() == str(src)
    assert len(events.kinds("done")) == 4  # config + 2 layers, then the whole push

    pulled = pull(store2, dest, **_kw(reg))
    assert pulled == src
    assert store2.blobs.read(pulled) == store.blobs.read(src)  # manifest bytes preserved
    img = store2.image(dest)
    assert img.digest == src and len(img.manifest.layers) == 2
    assert fsck(store2).ok

    # pull by digest into a third store
    third = type(store)(tmp_path / "third")
    assert pull(third, f"{reg.host}/{repo_name}@{src}", **_kw(reg)) == src
    assert third.resolve_digest(f"{reg.host}/{repo_name}@{src}") == src

    assert list_tags(f"{reg.host}/{repo_name}", **_kw(reg)) == ["v1"]


def test_repush_skips_and_mounts(any_registry, store, repo_name):
    reg = any_registry
    store_image(store, "local/m:1", [{"x": b"1" * 5000}])
    first = push_image(store, "local/m:1", f"{reg.host}/{repo_name}:1", **_kw(reg))
    assert first.uploaded == 2
    again = push_image(store, "local/m:1", f"{reg.host}/{repo_name}:2", **_kw(reg))
    assert again.skipped == 2 and again.uploaded == 0
    other = push_image(store, "local/m:1", f"{reg.host}/{repo_name}-other:1", **_kw(reg))
    assert other.mounted == 2 and other.uploaded == 0
    with client_for(reg) as c:
        assert sorted(c.list_tags(repo_name)) == ["1", "2"]
        assert c.head_manifest(f"{repo_name}-other", "1").digest == first.digest


def test_explicit_mount(any_registry, store, repo_name):
    reg = any_registry
    store_image(store, "local/mm:1", [{"y": b"mount me"}])
    res = push_image(store, "local/mm:1", f"{reg.host}/{repo_name}:1", **_kw(reg))
    img = store.image("local/mm:1")
    layer = img.manifest.layers[0].digest
    with client_for(reg) as c:
        assert c.head_blob(f"{repo_name}-copy", layer) is None
        assert c.mount_blob(f"{repo_name}-copy", layer, repo_name)
        assert c.head_blob(f"{repo_name}-copy", layer) == img.manifest.layers[0].size
        # a mount from a repository without the blob is refused (202) and reported False
        assert not c.mount_blob(f"{repo_name}-x", Digest.of(b"nope"), repo_name)
    assert res.digest == img.digest

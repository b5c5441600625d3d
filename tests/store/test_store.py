"""Blobs, images, tags, lookup, rmi, prune and fsck of the content store."""

import os
from pathlib import Path

import pytest

from nbcontainer.errors import DigestMismatch, ImageNotFound, StoreError
from nbcontainer.oci import Digest
from nbcontainer.store import Store, default_home, fsck, prune
from tests.support.images import make_image


def test_location_from_env(monkeypatch, tmp_path):
    monkeypatch.setenv("NBCONTAINER_HOME", str(tmp_path / "h"))
    assert default_home() == tmp_path / "h"
    monkeypatch.delenv("NBCONTAINER_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "x"))
    assert default_home() == tmp_path / "x" / "nbcontainer"


def test_blob_verified_while_written(store):
    good = Digest.of(b"hello")
    assert store.blobs.put(b"hello", expected=good) == good
    assert store.blobs.read(good) == b"hello"
    bad = Digest.of(b"other")
    with store.blobs.writer(bad) as w:
        w.write(b"hello!")
        with pytest.raises(DigestMismatch, match="does not match"):
            w.commit()
    assert not store.blobs.has(bad)
    assert list(store.blobs.tmp_dir.iterdir()) == []  # nothing half-written left behind
    with store.blobs.writer(None, size=10) as w:
        w.write(b"short")
        with pytest.raises(DigestMismatch, match="expected 10"):
            w.commit()


def test_blobs_are_read_only_and_named_by_content(store):
    d = store.blobs.put(b"x" * 100)
    p = store.blobs.path(d)
    assert p.name == d.hex and p.parent.name == "sha256"
    assert (p.stat().st_mode & 0o777) == 0o444


def test_add_image_needs_its_blobs(store):
    from nbcontainer.oci import EMPTY_DESCRIPTOR, Descriptor, Manifest, mediatypes

    m = Manifest(Descriptor.for_bytes(mediatypes.OCI_CONFIG, b"{}"), (EMPTY_DESCRIPTOR,))
    with pytest.raises(StoreError, match="missing"):
        store.add_image(m.to_bytes())
    assert store.list_images() == []


def test_lookup_by_tag_digest_and_short_id(store):
    dig = make_image(store, [{"a": b"1"}], tag="localhost:5000/demo:1")
    img = store.image("localhost:5000/demo:1")
    assert img.digest == dig and img.tags == ("localhost:5000/demo:1",)
    assert store.resolve_digest(str(dig)) == dig
    assert store.resolve_digest(f"localhost:5000/demo@{dig}") == dig
    assert store.resolve_digest(img.id.hex[:12]) == dig  # docker image id (config digest)
    assert store.resolve_digest(dig.hex[:8]) == dig
    assert store.resolve_digest(str(img.id)) == dig
    with pytest.raises(ImageNotFound, match="no such image"):
        store.resolve_digest("localhost:5000/demo:2")
    with pytest.raises(ImageNotFound):
        store.resolve_digest("ffffffffffff")


def test_ambiguous_short_id(store):
    # Two records whose digests share a prefix (written directly: real collisions are rare).
    with store.refs.update() as data:
        data.images["sha256:abcd" + "0" * 60] = {"mediaType": "x", "added": 1}
        data.images["sha256:abcd" + "1" * 60] = {"mediaType": "x", "added": 2}
    with pytest.raises(StoreError, match="ambiguous"):
        store.resolve_digest("abcd")
    assert store.resolve_digest("abcd1") == Digest.parse("sha256:abcd" + "1" * 60)


def test_tag_untag_and_rmi(store):
    dig = make_image(store, [{"a": b"1"}], tag="demo:1")
    store.tag("demo:1", "demo:2")
    assert store.image("demo:2").digest == dig
    with pytest.raises(StoreError, match="2 tags"):
        store.remove(str(dig))
    assert store.remove("demo:1") == ["Untagged: demo:1"]
    events = store.remove("demo:2")
    assert events == ["Untagged: demo:2", f"Deleted: {dig}"]
    assert store.list_images() == []


def test_prune_keeps_referenced_and_drops_the_rest(store):
    keep = make_image(store, [{"a": b"1"}, {"b": b"2"}], tag="keep:1")
    drop = make_image(store, [{"c": b"3"}], tag="drop:1")
    orphan = store.blobs.put(b"orphan")
    (store.blobs.tmp_dir / "ingest-999-dead").write_bytes(b"partial")
    needed = store.blobs_of(keep)
    store.remove("drop:1")
    report = prune(store)
    assert report.temp_files_removed == 1
    assert not store.blobs.has(orphan) and not store.blobs.has(drop)
    assert all(store.blobs.has(d) for d in needed)
    assert report.blobs_removed >= 3  # orphan + drop's manifest, config and layer
    assert fsck(store).ok


def test_fsck_finds_and_quarantines_corruption(store):
    dig = make_image(store, [{"a": b"1"}], tag="x:1")
    layer = store.image("x:1").manifest.layers[0].digest
    p = store.blobs.path(layer)
    os.chmod(p, 0o644)
    p.write_bytes(b"corrupted")
    report = fsck(store)
    assert not report.ok
    assert [c[0] for c in report.corrupt] == [layer]
    assert not store.blobs.has(layer)
    assert Path(report.quarantined[0]).read_bytes() == b"corrupted"
    assert (dig, layer) in report.missing  # and the image now reports the missing layer
    assert fsck(store).corrupt == []


def test_corrupt_refs_db_gives_a_clear_error(store):
    make_image(store, [{"a": b"1"}], tag="x:1")
    store.refs.path.write_text("{nope")
    with pytest.raises(StoreError, match="corrupt"):
        store.list_images()


def test_two_store_objects_share_state(tmp_path):
    a, b = Store(tmp_path / "s"), Store(tmp_path / "s")
    dig = make_image(a, [{"a": b"1"}], tag="shared:1")
    assert b.resolve_digest("shared:1") == dig

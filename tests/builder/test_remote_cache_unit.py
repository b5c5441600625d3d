"""Unit tests of build/remote_cache.py: spec parsing, min/max selection, the artifact's shape,
and lookups against a stand-in registry client (the real registry is in
test_registry_cache.py)."""

from __future__ import annotations

import hashlib
import json
from types import SimpleNamespace

import pytest

from nbcontainer.builder import remote_cache as rc
from nbcontainer.builder.reporter import StepReporter
from nbcontainer.builder.state import ImageState, LayerRef
from nbcontainer.errors import BuildError, DigestMismatch
from nbcontainer.oci import mediatypes as mt
from nbcontainer.oci.digest import Digest
from nbcontainer.oci.platform import Platform
from nbcontainer.oci.reference import Reference
from nbcontainer.progress import Collector
from nbcontainer.store import Store


def blob(data: bytes) -> Digest:
    return Digest.parse("sha256:" + hashlib.sha256(data).hexdigest())


def layer(data: bytes) -> LayerRef:
    return LayerRef(blob(data), blob(b"diff" + data), len(data), mt.OCI_LAYER_GZIP)


def state(*layers: LayerRef) -> ImageState:
    return ImageState("amd64", "linux", layers=tuple(layers))


# ---------------------------------------------------------------------- specs


@pytest.mark.parametrize("spec,want", [
    ("type=registry,ref=r.example/app:cache", ("registry", "r.example/app:cache", "min")),
    ("type=registry,ref=r.example/app:cache,mode=max", ("registry", "r.example/app:cache",
                                                        "max")),
    ("ref=r.example/app:c,mode=MAX,image-manifest=true,oci-mediatypes=true",
     ("registry", "r.example/app:c", "max")),
    ("type=inline", ("inline", None, "min")),
])
def test_parse_cache_to(spec, want):
    s = rc.parse_spec(spec, export=True)
    assert (s.type, str(s.ref) if s.ref else None, s.mode) == want
    assert not s.ignore_error


def test_parse_cache_from_bare_ref_and_ignore_error():
    s = rc.parse_spec("r.example/app:cache", export=False)
    assert s.type == "registry" and s.ref == Reference.parse("r.example/app:cache")
    assert rc.parse_spec("type=registry,ref=r.example/a:b,ignore-error=true",
                         export=True).ignore_error


@pytest.mark.parametrize("spec,export,message", [
    ("", True, "empty"),
    ("type=gha", True, "not supported"),
    ("type=local,src=/x", False, "not supported"),
    ("type=inline", False, "read from an image"),
    ("type=inline,ref=r.example/a:b", True, "takes no ref"),
    ("type=registry,ref=r.example/a@sha256:" + "0" * 64, True, "needs a tag"),
    ("type=registry,ref=r.example/a:b,mode=max,mode=min", True, "given twice"),
    ("type=registry,ref=r.example/a:b,novalue", True, "not key=value"),
    ("type=registry,ref=r.example/a:b,ignore-error=maybe", True, "ignore-error"),
    ("type=registry,ref=UPPER/Case:x", True, "--cache-to"),
])
def test_parse_errors(spec, export, message):
    with pytest.raises(BuildError) as info:
        rc.parse_spec(spec, export=export)
    assert message in info.value.message
    assert info.value.hint or "mode" in info.value.message or "ignore" in info.value.message


def test_buildkit_inline_cache_build_arg():
    opts = rc.CacheOptions.parse((), (), {"BUILDKIT_INLINE_CACHE": "1"})
    assert [s.type for s in opts.exports] == ["inline"]
    assert rc.CacheOptions.parse((), (), {"BUILDKIT_INLINE_CACHE": "0"}).exports == []
    both = rc.CacheOptions.parse((), "type=inline", {"BUILDKIT_INLINE_CACHE": "true"})
    assert len(both.exports) == 1


# ---------------------------------------------------------------------- export side


def _plan(target: int, bases: dict[int, int | None]):
    return SimpleNamespace(target=target, stages={i: SimpleNamespace(base_stage=b)
                                                  for i, b in bases.items()})


def test_stage_entries_min_follows_the_from_chain():
    s = state()
    builder = SimpleNamespace(stage_entries={0: {"a": s}, 1: {"b": s}, 2: {"c": s}})
    # stage 2 is FROM stage 1; stage 0 is only a COPY --from source
    plan = _plan(2, {0: None, 1: None, 2: 1})
    assert set(rc.stage_entries(builder, plan, "min")) == {"b", "c"}
    assert set(rc.stage_entries(builder, plan, "max")) == {"a", "b", "c"}


def test_cache_manifest_shape():
    base, top = layer(b"base"), layer(b"top")
    entries = {"k1": state(base), "k2": state(base, top), "k0": state()}
    config, manifest = rc.cache_manifest(entries, "max")
    d = manifest.to_dict()
    assert d["mediaType"] == mt.OCI_MANIFEST and d["artifactType"] == rc.ARTIFACT_TYPE
    assert d["config"]["mediaType"] == rc.CONFIG_TYPE
    assert d["config"]["digest"] == str(blob(config)) and d["config"]["size"] == len(config)
    assert [x["digest"] for x in d["layers"]] == [str(base.blob), str(top.blob)]  # deduped
    doc = json.loads(config)
    assert doc["version"] == rc.VERSION and doc["mode"] == "max"
    assert ImageState.from_json(json.dumps(doc["entries"]["k2"])) == state(base, top)
    # deterministic: the same entries give the same bytes (a re-export is a no-op push)
    assert rc.cache_manifest(dict(reversed(entries.items())), "max")[0] == config


# ---------------------------------------------------------------------- import side


class FakeClient:
    def __init__(self, blobs: dict[Digest, bytes], fail: bool = False) -> None:
        self.blobs = blobs
        self.fail = fail
        self.downloads: list[Digest] = []
        self.closed = False

    def download_blob(self, repo, digest, size, sink, *a):
        if self.fail:
            raise DigestMismatch("bad blob")
        self.downloads.append(digest)
        sink.write(self.blobs[digest])
        return size

    def close(self) -> None:
        self.closed = True


def _cache(tmp_path, entries: dict, served: dict[Digest, bytes], fail: bool = False):
    store = Store(tmp_path / "store")
    events = Collector()
    cache = rc.RemoteCache(store, StepReporter(events), Platform.host())
    client = FakeClient(served, fail)
    cache.sources.append(rc._Source(Reference.parse("r.example/c:1"), client,
                                    {k: json.loads(v.to_json()) if isinstance(v, ImageState)
                                     else v for k, v in entries.items()},
                                    {d: len(b) for d, b in served.items()}))
    return cache, store, client, events


def test_hit_is_lazy_and_ensure_fetches_once(tmp_path):
    base, top = layer(b"base"), layer(b"top")
    cache, store, client, _ = _cache(tmp_path, {"k": state(base, top)},
                                     {base.blob: b"base", top.blob: b"top"})
    store.blobs.put(b"base")
    got = cache.get("k")
    assert got == state(base, top)
    assert client.downloads == [] and not store.blobs.has(top.blob)  # nothing read yet
    cache.ensure([base.blob, top.blob, top.blob])
    assert client.downloads == [top.blob] and store.blobs.has(top.blob)
    cache.ensure([top.blob])
    assert client.downloads == [top.blob]  # now local
    assert cache.get("other") is None
    cache.close()
    assert client.closed and cache.sources == []


def test_ensure_fetches_several_blobs_concurrently(tmp_path):
    layers = [layer(f"layer {i}".encode() * (i + 1)) for i in range(5)]
    served = {lr.blob: f"layer {i}".encode() * (i + 1) for i, lr in enumerate(layers)}
    cache, store, client, _ = _cache(tmp_path, {"k": state(*layers)}, served)
    assert cache.get("k") == state(*layers)
    cache.ensure([lr.blob for lr in layers])
    assert sorted(client.downloads) == sorted(served)  # each once
    assert all(store.blobs.has(d) for d in served)


def test_misses_and_fetch_failure(tmp_path):
    base, stranger = layer(b"base"), layer(b"not served")
    cache, store, client, _ = _cache(
        tmp_path, {"bad": {"layers": "nonsense"}, "foreign": state(base, stranger)},
        {base.blob: b"base"})
    assert cache.get("bad") is None  # malformed entry: the step just runs
    assert cache.get("foreign") is None  # a blob this repository doesn't serve
    assert client.downloads == []

    broken, _, _, _ = _cache(tmp_path / "2", {"k": state(base)}, {base.blob: b"base"},
                             fail=True)
    assert broken.get("k") == state(base)
    with pytest.raises(BuildError, match="fetching cached layers from r.example/c:1") as info:
        broken.ensure([base.blob])
    assert info.value.hint


def test_entries_document_version_is_checked():
    with pytest.raises(BuildError, match="unsupported build cache format"):
        rc._entries({"version": 99, "entries": {}})
    with pytest.raises(BuildError):
        rc._entries(["not", "a", "dict"])
    assert rc._entries({"version": rc.VERSION, "entries": {"k": {}}}) == {"k": {}}

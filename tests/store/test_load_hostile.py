"""``nbcontainer load -i`` of malformed archives, both formats: every one ends with exit code 1
and one line of error (plus its hint) naming what is wrong, never a traceback; the store stays
consistent and no tag appears, not even for a good image next to a bad one in the same
archive."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from nbcontainer.oci import mediatypes as mt
from nbcontainer.store import Store, fsck
from tests.support.images import tar_bytes

LAYER = tar_bytes({"a": b"1" * 100})
LAYER_GZ = gzip.compress(LAYER, mtime=0)


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def blob(data: bytes) -> str:
    return "blobs/sha256/" + hashlib.sha256(data).hexdigest()


def config(**changes: object) -> bytes:
    doc = {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
           "rootfs": {"type": "layers", "diff_ids": [sha(LAYER)]}, **changes}
    return json.dumps(doc).encode()


def tar_of(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def docker_archive(cfg: bytes | None = None, *, entries: list[object] | None = None,
                   **entry: object) -> dict[str, bytes]:
    """A ``docker save`` archive: ``<id>.json``, ``<diffid>/layer.tar``, ``manifest.json``."""
    cfg = cfg if cfg is not None else config()
    name = hashlib.sha256(cfg).hexdigest() + ".json"
    members = {name: cfg, "l1/layer.tar": LAYER}
    good = {"Config": name, "RepoTags": ["hostile/load:1"], "Layers": ["l1/layer.tar"]}
    members["manifest.json"] = json.dumps(entries or [{**good, **entry}]).encode()
    return members


def oci_archive(cfg: bytes | None = None, *, manifest: dict[str, object] | None = None,
                entry: dict[str, object] | None = None, raw_manifest: bytes | None = None,
                layout: bytes = b'{"imageLayoutVersion":"1.0.0"}') -> dict[str, bytes]:
    """An OCI archive of one image, each document replaceable."""
    cfg = cfg if cfg is not None else config()
    doc = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
           "config": {"mediaType": mt.OCI_CONFIG, "digest": sha(cfg), "size": len(cfg)},
           "layers": [{"mediaType": mt.OCI_LAYER_GZIP, "digest": sha(LAYER_GZ),
                       "size": len(LAYER_GZ)}], **(manifest or {})}
    mbytes = raw_manifest if raw_manifest is not None else json.dumps(doc).encode()
    index_entry = {"mediaType": mt.OCI_MANIFEST, "digest": sha(mbytes), "size": len(mbytes),
                   "annotations": {"io.containerd.image.name": "docker.io/hostile/load:1",
                                   "org.opencontainers.image.ref.name": "1"},
                   **(entry or {})}
    return {"oci-layout": layout, "index.json": json.dumps(
        {"schemaVersion": 2, "manifests": [index_entry]}).encode(),
        blob(cfg): cfg, blob(LAYER_GZ): LAYER_GZ, blob(mbytes): mbytes}


def _with(members: dict[str, bytes], **changes: bytes | None) -> dict[str, bytes]:
    out = dict(members)
    for name, data in changes.items():
        name = name.replace("__", "/").replace("_DOT_", ".")
        if data is None:
            out.pop(name)
        else:
            out[name] = data
    return out


def _two_images() -> dict[str, bytes]:
    """A good image and a bad one in one archive: neither may be tagged."""
    good = docker_archive()
    bad_cfg = config(history=["oops"])
    bad_name = hashlib.sha256(bad_cfg).hexdigest() + ".json"
    entries = [json.loads(good["manifest.json"])[0],
               {"Config": bad_name, "RepoTags": ["hostile/load:2"], "Layers": ["l1/layer.tar"]}]
    return {**good, bad_name: bad_cfg, "manifest.json": json.dumps(entries).encode()}


def _exabyte() -> bytes:
    info = tarfile.TarInfo("manifest.json")
    info.size = 2**60
    return info.tobuf(tarfile.GNU_FORMAT) + b"[]" + bytes(1022)


def _corrupt_blob() -> dict[str, bytes]:
    members = oci_archive()
    members[blob(LAYER_GZ)] = LAYER_GZ[:20] + bytes([LAYER_GZ[20] ^ 0xFF]) + LAYER_GZ[21:]
    return members


CASES: list[tuple[str, Callable[[], dict[str, bytes] | bytes], str]] = [
    ("random-bytes", lambda: b"\x13\x37" * 700, "not a tar archive"),
    ("empty", lambda: b"", "not a tar archive"),
    ("truncated-in-a-member", lambda: tar_of(docker_archive())[:1800],
     "truncated or corrupt archive"),
    ("truncated-between-members", lambda: tar_of(docker_archive())[:1500],
     "truncated archive"),
    ("gzip-truncated", lambda: gzip.compress(tar_of(docker_archive()))[:300],
     "archive"),
    ("member-claims-an-exabyte", _exabyte, "truncated or corrupt archive"),
    ("neither-format", lambda: {"hello.txt": b"hi"}, "neither a docker-save archive"),
    ("docker-manifest-not-json", lambda: _with(docker_archive(), manifest_DOT_json=b"[{"),
     "manifest.json is not valid JSON"),
    ("docker-manifest-an-object", lambda: _with(docker_archive(), manifest_DOT_json=b"{}"),
     "manifest.json: expected a list of images, got object"),
    ("docker-config-a-list", lambda: docker_archive(Config=["x.json"]),
     "manifest.json[0].Config: expected a string, got list"),
    ("docker-layers-a-string", lambda: docker_archive(Layers="l1/layer.tar"),
     "manifest.json[0].Layers: expected a list of strings, got str"),
    ("docker-repotag-invalid", lambda: docker_archive(RepoTags=["UPPER/Case:1"]),
     "manifest.json[0].RepoTags[0]: invalid reference format"),
    ("docker-config-missing", lambda: docker_archive(Config="nope.json"),
     "config 'nope.json' is not in the archive"),
    ("docker-layer-missing", lambda: docker_archive(Layers=["nope/layer.tar"]),
     "layer 'nope/layer.tar' is not in the archive"),
    ("docker-config-history-string", lambda: docker_archive(config(history=["oops"])),
     "config.history[0]: expected an object, got str"),
    ("docker-config-env-number", lambda: docker_archive(config(config={"Env": 5})),
     "config.config.Env: expected a list of strings, got int"),
    ("docker-config-healthcheck-string",
     lambda: docker_archive(config(config={"Healthcheck": "CMD true"})),
     "config.config.Healthcheck: expected an object, got str"),
    ("docker-diff-ids-count", lambda: docker_archive(
        config(rootfs={"type": "layers", "diff_ids": []})), "0 diff_ids for 1 layers"),
    ("docker-layer-not-the-config's", lambda: docker_archive(
        config(rootfs={"type": "layers", "diff_ids": ["sha256:" + "0" * 64]})),
     "but the config says"),
    ("docker-good-and-bad-image", _two_images, "config.history[0]: expected an object"),
    ("oci-index-not-json", lambda: _with(oci_archive(), index_DOT_json=b"{"),
     "index.json is not valid JSON"),
    ("oci-index-manifests-a-string", lambda: _with(
        oci_archive(), index_DOT_json=b'{"schemaVersion":2,"manifests":"x"}'),
     "index.json.manifests: expected a list, got str"),
    ("oci-entry-size-wrong", lambda: oci_archive(entry={"size": 3}),
     "the index says 3"),
    ("oci-entry-missing-blob", lambda: oci_archive(entry={"digest": "sha256:" + "1" * 64}),
     "is listed but missing"),
    ("oci-entry-ref-name-a-number", lambda: oci_archive(
        entry={"annotations": {"org.opencontainers.image.ref.name": 5}}),
     "index.json.manifests[0].annotations['org.opencontainers.image.ref.name']: expected a "
     "string, got int"),
    ("oci-manifest-media-type-list", lambda: oci_archive(manifest={"mediaType": ["x"]}),
     "manifest.mediaType: expected a string, got list"),
    ("oci-manifest-layer-size-lies", lambda: oci_archive(manifest={"layers": [
        {"mediaType": mt.OCI_LAYER_GZIP, "digest": sha(LAYER_GZ), "size": 1}]}),
     "manifest.layers[0]: blob"),
    ("oci-manifest-not-json", lambda: oci_archive(raw_manifest=b"{oops"),
     "manifest is not valid JSON"),
    ("oci-config-history-string", lambda: oci_archive(config(history=["oops"])),
     "config.history[0]: expected an object, got str"),
    ("oci-layout-version-2", lambda: oci_archive(layout=b'{"imageLayoutVersion":"2.0.0"}'),
     "unsupported imageLayoutVersion '2.0.0'"),
    ("oci-layout-not-json", lambda: oci_archive(layout=b"oops"), "oci-layout is not valid"),
    ("oci-blob-not-its-digest", _corrupt_blob, "content does not match its digest"),
]


@pytest.mark.parametrize(("name", "make", "expect"), CASES, ids=[c[0] for c in CASES])
def test_load_of_a_malformed_archive(tmp_path: Path, name: str,
                                     make: Callable[[], dict[str, bytes] | bytes],
                                     expect: str) -> None:
    content = make()
    path = tmp_path / "in.tar"
    path.write_bytes(content if isinstance(content, bytes) else tar_of(content))
    home = tmp_path / "store"
    _assert_load_fails(path, home, expect)


def _assert_load_fails(source: Path, home: Path, expect: str) -> None:
    """``nbcontainer load -i source`` ends in one line of error containing ``expect``, exit
    code 1, no traceback, and leaves the store clean with nothing tagged."""
    res = subprocess.run([sys.executable, "-m", "nbcontainer.cli", "--root", str(home), "load",
                          "-i", str(source)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "Traceback" not in res.stderr and "bug in nbcontainer" not in res.stderr
    lines = [line for line in res.stderr.splitlines() if not line.startswith("hint: ")]
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.stderr
    assert expect in lines[0], f"{expect!r} not in {lines[0]!r}"
    store = Store(home)
    assert fsck(store, quarantine=False).ok
    assert not store.refs.read().tags and not store.refs.read().images


LAYOUT_CASES = [c for c in CASES if c[0].startswith("oci-")] + [
    ("oci-blobs-dir-is-a-file", lambda: {**oci_archive(), "blobs/sha512": b"x"},
     "referenced blob(s) missing"),
]


@pytest.mark.parametrize(("name", "make", "expect"), LAYOUT_CASES,
                         ids=[c[0] for c in LAYOUT_CASES])
def test_load_of_a_malformed_layout_directory(tmp_path: Path, name: str,
                                              make: Callable[[], dict[str, bytes]],
                                              expect: str) -> None:
    """The same documents as an OCI layout directory (``load -i DIR``)."""
    layout = tmp_path / "layout"
    members = make()
    if name == "oci-blobs-dir-is-a-file":  # a stray file where blobs/<algorithm> dirs live,
        members = _with(members, **{blob(LAYER_GZ).replace("/", "__"): None})  # layer gone
    for rel, data in members.items():
        (layout / rel).parent.mkdir(parents=True, exist_ok=True)
        (layout / rel).write_bytes(data)
    home = tmp_path / "store"
    _assert_load_fails(layout, home, expect)


def test_the_good_archives_load(tmp_path: Path) -> None:
    """The builders above make valid archives; only the named change breaks them."""
    for i, members in enumerate((docker_archive(), oci_archive())):
        path = tmp_path / f"ok{i}.tar"
        path.write_bytes(tar_of(members))
        res = subprocess.run([sys.executable, "-m", "nbcontainer.cli", "--root",
                              str(tmp_path / f"s{i}"), "load", "-i", str(path)],
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr
        assert "Loaded image: hostile/load:1" in res.stdout

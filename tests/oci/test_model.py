"""Digests, platforms, descriptors, manifests, indexes and configs."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nbcontainer.errors import ImageFormatError, ReferenceFormatError
from nbcontainer.oci import (
    EMPTY_DESCRIPTOR,
    ContainerConfig,
    Descriptor,
    Digest,
    Healthcheck,
    History,
    ImageConfig,
    Index,
    Manifest,
    Platform,
    best_match,
    mediatypes,
    parse_manifest,
)


def test_digest_parse_and_of():
    d = Digest.of(b"{}")
    assert str(d) == "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    assert Digest.parse(str(d)) == d
    assert d.short == "44136fa355b3"
    assert Digest.parse("sha512:" + "0" * 128).algorithm == "sha512"
    for bad in ("sha256:XYZ", "sha256:" + "A" * 64, "sha1:" + "0" * 40, "nocolon", "sha256:" + "0" * 63):
        with pytest.raises(ReferenceFormatError):
            Digest.parse(bad)


@pytest.mark.parametrize(
    ("text", "norm"),
    [
        ("linux/amd64", "linux/amd64"),
        ("linux/x86_64", "linux/amd64"),
        ("linux/aarch64", "linux/arm64"),
        ("linux/arm64/v8", "linux/arm64"),
        ("linux/arm", "linux/arm/v7"),
        ("linux/arm/7", "linux/arm/v7"),
        ("linux/armhf", "linux/arm/v7"),
        ("arm64", "linux/arm64"),
        ("Linux/AMD64", "linux/amd64"),
    ],
)
def test_platform_normalization(text, norm):
    assert str(Platform.parse(text)) == norm


def test_platform_matching():
    amd, arm64, armv7, armv6 = (Platform.parse(x) for x in
                                ("linux/amd64", "linux/arm64", "linux/arm/v7", "linux/arm/v6"))
    assert amd.matches(amd) and not amd.matches(arm64)
    assert armv7.matches(armv6) and not armv6.matches(armv7)
    assert best_match(armv7, [armv6, armv7]) == 1
    assert best_match(armv7, [armv6, amd]) == 0
    assert best_match(amd, [arm64]) is None
    for bad in ("", "linux//amd64", "a/b/c/d"):
        with pytest.raises(ReferenceFormatError):
            Platform.parse(bad)


def test_manifest_always_writes_media_type_and_round_trips():
    cfg = Descriptor.for_bytes(mediatypes.OCI_CONFIG, b'{"a":1}')
    layer = Descriptor.for_bytes(mediatypes.OCI_LAYER_GZIP, b"x", annotations={"k": "v"})
    m = Manifest(cfg, (layer,), annotations={"org.opencontainers.image.created": "now"})
    data = m.to_bytes()
    d = json.loads(data)
    assert d["mediaType"] == mediatypes.OCI_MANIFEST and d["schemaVersion"] == 2
    assert data == json.dumps(d, sort_keys=True, separators=(",", ":")).encode()  # canonical
    back = parse_manifest(data)
    assert back == m and back.to_bytes() == data and back.digest == Digest.of(data)


def test_foreign_bytes_are_preserved_exactly():
    raw = b'{\n  "schemaVersion": 2,\n  "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": "sha256:' + b"1" * 64 + b'", "size": 3},\n  "layers": []\n}'
    m = parse_manifest(raw)
    assert m.media_type == mediatypes.DOCKER_MANIFEST  # guessed from the config type
    assert m.to_bytes() == raw and m.digest == Digest.of(raw)


def test_index_and_platforms():
    child = Descriptor.for_bytes(mediatypes.OCI_MANIFEST, b"m", platform=Platform.parse("linux/arm64"))
    idx = Index((child,))
    back = parse_manifest(idx.to_bytes())
    assert isinstance(back, Index) and back.manifests[0].platform == Platform.parse("linux/arm64")
    raw = json.dumps({"schemaVersion": 2, "manifests": []}).encode()
    assert isinstance(parse_manifest(raw), Index)


@pytest.mark.parametrize(
    ("doc", "msg"),
    [
        ({"schemaVersion": 1}, "schemaVersion"),
        ({"schemaVersion": 2, "layers": []}, "config"),
        ({"schemaVersion": 2, "config": {"mediaType": "a/x", "size": 1}, "layers": []}, "digest"),
        ({"schemaVersion": 2, "config": {"mediaType": "a/x", "digest": "sha256:" + "0" * 64, "size": -1}, "layers": []}, "size"),
        ({"schemaVersion": 2, "config": EMPTY_DESCRIPTOR.to_dict(), "layers": {}}, "layers"),
        ({"schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX, "manifests": {}}, "manifests"),
        ([1, 2], "object"),
    ],
)
def test_malformed_manifests_are_rejected(doc, msg):
    with pytest.raises(ImageFormatError) as e:
        parse_manifest(json.dumps(doc).encode())
    assert msg in str(e.value)


def test_not_json():
    with pytest.raises(ImageFormatError, match="not valid JSON"):
        parse_manifest(b"{nope")


def test_config_round_trip_keeps_unknown_fields():
    raw = json.dumps({
        "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"], "ExposedPorts": {"80/tcp": {}},
                   "Healthcheck": {"Test": ["CMD", "true"], "Interval": 30000000000},
                   "Custom": 1},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "2" * 64]},
        "history": [{"created_by": "x", "empty_layer": True}],
        "moby.extra": {"x": 1},
    }, sort_keys=True, separators=(",", ":")).encode()
    cfg = ImageConfig.from_bytes(raw)
    assert cfg.config.cmd == ("sh",) and cfg.config.exposed_ports == ("80/tcp",)
    assert cfg.config.healthcheck == Healthcheck(("CMD", "true"), interval=30000000000)
    assert cfg.history == (History(created_by="x", empty_layer=True),)
    assert cfg.to_bytes() == raw  # raw kept
    again = cfg.evolve()  # re-serialized canonically: same content, unknown fields kept
    assert json.loads(again.to_bytes()) == json.loads(raw)


def test_with_env_keeps_order():
    c = ContainerConfig(env=("A=1", "B=2")).with_env("A", "3").with_env("C", "4")
    assert c.env == ("A=3", "B=2", "C=4")
    assert c.env_dict() == {"A": "3", "B": "2", "C": "4"}


@given(st.dictionaries(st.text(min_size=1, max_size=20), st.text(max_size=20), max_size=5))
def test_descriptor_annotations_round_trip(ann):
    d = Descriptor.for_bytes(mediatypes.OCI_LAYER, b"abc", annotations=ann)
    assert Descriptor.from_dict(json.loads(json.dumps(d.to_dict()))) == d


def test_bad_digest_inside_a_manifest_is_a_format_error():
    doc = {"schemaVersion": 2, "config": {"mediaType": "a/x", "digest": "sha256:zz", "size": 1}}
    with pytest.raises(ImageFormatError, match=r"manifest\.config\.digest: invalid sha256 digest"):
        parse_manifest(json.dumps(doc).encode())

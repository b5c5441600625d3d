"""Interop with skopeo and umoci, both ways, against the real registry set-ups."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from nbcontainer.oci import mediatypes as mt
from nbcontainer.oci.platform import Platform
from nbcontainer.registry import pull, push
from nbcontainer.store import fsck
from tests.support.images import image_blobs, store_image, write_layout
from tests.support.registry import credential_for, settings_for


def skopeo(*args: str) -> str:
    proc = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _kw(reg):
    return {"credential": credential_for(reg), "settings": settings_for(reg)}


@pytest.mark.parametrize("reg_name", ["plain", "tls", "token"])
def test_our_push_read_by_skopeo_and_umoci(request, reg_name, store, tmp_path, repo_name):
    reg = request.getfixturevalue(f"{reg_name}_registry")
    store_image(store, "local/i:1", [{"etc/hello": b"hello from nbcontainer\n"},
                                     {"etc/second": b"2\n"}])
    digest = push(store, "local/i:1", f"{reg.host}/{repo_name}:1", **_kw(reg))
    ref = f"docker://{reg.host}/{repo_name}:1"
    info = json.loads(skopeo("inspect", *reg.skopeo_flags(), ref))
    assert info["Digest"] == str(digest)
    layout = tmp_path / "layout"
    skopeo("copy", *_src(reg), ref, f"oci:{layout}:t")
    bundle = tmp_path / "bundle"
    subprocess.run(["umoci", "unpack", "--rootless", "--image", f"{layout}:t", str(bundle)],
                   check=True, capture_output=True)
    assert (bundle / "rootfs" / "etc" / "hello").read_bytes() == b"hello from nbcontainer\n"
    assert (bundle / "rootfs" / "etc" / "second").read_bytes() == b"2\n"


def _src(reg) -> list[str]:
    return reg.skopeo_flags("src")


def _skopeo_push(reg, layout: Path, dest: str, *extra: str) -> None:
    skopeo("copy", *extra, *reg.skopeo_flags("dest"), f"oci:{layout}:t", f"docker://{dest}")


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_skopeo_pushed_oci_image_pulled(token_registry, store, tmp_path, repo_name, compression):
    reg = token_registry
    manifest, blobs = image_blobs([{"bin/x": b"x" * 100}, {"etc/y": b"y"}],
                                  compression=compression)
    write_layout(tmp_path / "l", "t", [(manifest, blobs, "amd64")])
    _skopeo_push(reg, tmp_path / "l", f"{reg.host}/{repo_name}:1")
    digest = pull(store, f"{reg.host}/{repo_name}:1", **_kw(reg))
    img = store.image(f"{reg.host}/{repo_name}:1")
    assert img.digest == digest
    assert img.manifest.layers[0].media_type == (
        mt.OCI_LAYER_ZSTD if compression == "zstd" else mt.OCI_LAYER_GZIP)
    remote = json.loads(skopeo("inspect", *reg.skopeo_flags(), f"docker://{reg.host}/{repo_name}:1"))
    assert remote["Digest"] == str(digest)
    assert fsck(store).ok


def test_skopeo_pushed_docker_schema2_pulled(tls_registry, store, tmp_path, repo_name):
    reg = tls_registry
    manifest, blobs = image_blobs([{"a": b"docker"}], compression="gzip")
    write_layout(tmp_path / "l", "t", [(manifest, blobs, "amd64")])
    _skopeo_push(reg, tmp_path / "l", f"{reg.host}/{repo_name}:1", "--format", "v2s2")
    digest = pull(store, f"{reg.host}/{repo_name}:1", **_kw(reg))
    img = store.image(f"{reg.host}/{repo_name}:1")
    assert img.manifest.media_type == mt.DOCKER_MANIFEST
    assert img.manifest.config.media_type == mt.DOCKER_CONFIG
    raw = subprocess.run(["skopeo", "inspect", "--raw", *reg.skopeo_flags(),
                          f"docker://{reg.host}/{repo_name}:1"], capture_output=True).stdout
    assert store.blobs.read(digest) == raw  # byte-exact


def test_skopeo_pushed_index_pulled_per_platform_and_whole(plain_registry, store, store2,
                                                           tmp_path, repo_name):
    reg = plain_registry
    entries = []
    for arch in ("amd64", "arm64"):
        m, b = image_blobs([{"etc/arch": arch.encode()}], arch=arch)
        entries.append((m, b, arch))
    write_layout(tmp_path / "l", "t", entries, index=True)
    _skopeo_push(reg, tmp_path / "l", f"{reg.host}/{repo_name}:multi", "--all")
    ref = f"{reg.host}/{repo_name}:multi"

    arm = pull(store, ref, platform="linux/arm64", credential=None)
    img = store.image(ref, Platform.parse("linux/arm64"))
    assert img.digest == arm and img.config.architecture == "arm64"
    assert fsck(store).ok

    whole = pull(store2, ref, all_platforms=True, credential=None)
    assert store2.read_manifest(whole).media_type == mt.OCI_INDEX
    for arch in ("amd64", "arm64"):
        assert store2.image(ref, Platform.parse(f"linux/{arch}")).config.architecture == arch
    assert fsck(store2).ok

    # and the whole index goes back up unchanged
    again = push(store2, ref, f"{reg.host}/{repo_name}-copy:multi", credential=None)
    assert again == whole
    out = json.loads(skopeo("inspect", "--raw", "--tls-verify=false",
                            f"docker://{reg.host}/{repo_name}-copy:multi"))
    assert len(out["manifests"]) == 2

    from nbcontainer.errors import RegistryError
    with pytest.raises(RegistryError) as info:
        pull(store, ref, platform="linux/s390x", credential=None)
    assert "linux/amd64" in str(info.value) and "--platform" in str(info.value)

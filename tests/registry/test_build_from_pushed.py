"""Images pushed by skopeo (OCI and Docker schema2, gzip and zstd layers, a multi-platform
index) are pulled by ``FROM`` and build and run as bases (issue 5's interop, end to end)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from nbcontainer import api
from nbcontainer.rootfs import make_busybox_rootfs
from nbcontainer.store import Store, fsck
from tests.support.images import image_blobs, write_layout


def skopeo(*args: str) -> None:
    proc = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


@pytest.fixture
def busybox_layout(tmp_path, variant):
    """A busybox image as an OCI layout (made with nbcontainer import + save). Each variant
    gets its own layer bytes: skopeo's blob-info cache would otherwise reuse the gzip blob
    another variant already pushed instead of recompressing it with zstd."""
    store = Store(tmp_path / "bb-store")
    rootfs = make_busybox_rootfs(tmp_path / "rootfs")
    (rootfs / "variant").write_text(f"{variant} {tmp_path.name} {os.getpid()}")  # unique bytes
    api.import_image(rootfs, "bb:1", store=store, changes=['CMD ["sh"]'])
    api.save(["bb:1"], tmp_path / "layout", format="oci-dir", store=store)
    return tmp_path / "layout", store


def _index_layout(busybox_layout, dest):
    """A two-platform index: our busybox for this machine, a stub for another arch."""
    layout, store = busybox_layout
    img = api.image("bb:1", store=store)
    blobs = {d: store.blobs.read(d) for d in store.blobs_of(img.digest) if d != img.digest}
    other_arch = "arm64" if img.config.architecture != "arm64" else "amd64"
    stub_manifest, stub_blobs = image_blobs([{"etc/arch": other_arch.encode()}], arch=other_arch)
    write_layout(dest, "1", [(img.manifest.to_bytes(), blobs, img.config.architecture),
                             (stub_manifest, stub_blobs, other_arch)], index=True)
    return dest


@pytest.mark.parametrize("variant", ["oci-gzip", "oci-zstd", "docker-v2s2", "index"])
def test_skopeo_pushed_base_builds_and_runs(plain_registry, busybox_layout, tmp_path, variant):
    reg = plain_registry
    layout = busybox_layout[0]
    src, extra = f"oci:{layout}:1", []
    if variant == "oci-zstd":
        extra = ["--dest-compress-format", "zstd", "--dest-compress"]
    elif variant == "docker-v2s2":
        extra = ["--format", "v2s2"]
    elif variant == "index":
        src, extra = f"oci:{_index_layout(busybox_layout, tmp_path / 'idx')}:1", ["--all"]
    ref = f"{reg.host}/skopeo/{variant}:1"
    skopeo("copy", *extra, "--dest-tls-verify=false", src, f"docker://{ref}")

    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "msg.txt").write_text(f"built on {variant}\n")
    store = Store(tmp_path / "store")  # empty: FROM must pull
    img = api.build(f"FROM {ref}\nRUN echo from-run > /run.txt\nCOPY msg.txt /\n"
                    'CMD ["cat", "/msg.txt", "/run.txt"]\n', ctx, tags=["child:1"], store=store)
    base = store.image(ref)
    assert img.config.diff_ids[: len(base.config.diff_ids)] == base.config.diff_ids
    assert len(img.layers) == len(base.manifest.layers) + 2
    out = bytearray()
    assert api.run("child:1", store=store, output=out.extend) == 0
    assert out.decode() == f"built on {variant}\nfrom-run\n"
    if variant == "docker-v2s2":
        remote = json.loads(subprocess.run(
            ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
            capture_output=True, text=True).stdout)
        assert remote["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
        assert base.manifest.media_type == remote["mediaType"]
    if variant == "oci-zstd":
        assert base.manifest.layers[0].media_type.endswith("+zstd")
    assert fsck(store).ok

"""Interop with the Docker engine (Debian's docker.io 20.10, the session's private dockerd),
both ways: archives (``docker load`` of our docker-archive, our ``load`` of ``docker save``)
and a registry on 127.0.0.1 (``docker pull``/``docker run`` of what we push, our ``pull`` of
what docker pushes), including multi-platform indexes, zstd layers and an image with a
provenance referrer.

What docker 20.10 does with them, checked here: it pulls one platform of an index (the
host's, or ``--platform``'s); it cannot read zstd layers (moby reads them from Docker 23.0,
moby/moby#41759), so that test pins the failure; it ignores the referrers of an image (the
fallback tag ``sha256-<digest>`` sits beside it) and pulls the image itself unchanged.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbcontainer import api
from nbcontainer.oci import mediatypes as mt
from nbcontainer.store import Store, fsck
from tests.support.docker import Dockerd
from tests.support.images import store_image
from tests.support.registry import Registry
from tests.support.scratch import fixture_dir

TAG = "demo/busybox:1.0"
SAY = 'CMD ["/bin/sh", "-c", "echo hello from $(uname -m)"]'


@pytest.fixture(scope="module")
def registry(request: pytest.FixtureRequest) -> Iterator[Registry]:
    reg = Registry("plain", fixture_dir(request, "docker-interop-registry")).start()
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture
def image(store: Store, busybox_rootfs: Path):
    return api.import_image(busybox_rootfs, TAG, changes=[SAY], store=store)


def _inspect(dockerd: Dockerd, ref: str) -> dict:
    return json.loads(dockerd.docker("image", "inspect", ref).stdout)[0]


def _run(dockerd: Dockerd, ref: str, *args: str) -> str:
    return dockerd.docker("run", "--rm", "--network", "none", *args, ref).stdout.decode()


def _our_run(ref: str, store: Store, command: list[str] | None = None) -> bytes:
    out: list[bytes] = []
    assert api.run(ref, command, store=store, network="none", output=out.append) == 0
    return b"".join(out)


# ---------------------------------------------------------------------------- archives
def test_docker_loads_and_runs_our_docker_archive(dockerd: Dockerd, image, store: Store,
                                                  tmp_path: Path) -> None:
    archive = tmp_path / "img.docker.tar"
    api.save([TAG], archive, format="docker-archive", store=store)
    out = dockerd.docker("load", "-i", archive).stdout.decode()
    assert f"Loaded image: {TAG}" in out
    info = _inspect(dockerd, TAG)
    assert info["Id"] == str(image.id)  # the same config bytes
    assert info["RootFS"]["Layers"] == [str(d) for d in image.config.diff_ids]
    assert _run(dockerd, TAG) == "hello from x86_64\n"


def test_we_load_what_docker_saves(dockerd: Dockerd, image, store: Store,
                                   tmp_path: Path) -> None:
    """An image docker built (one RUN layer over our base), ``docker save``d and loaded by
    nbcontainer into an empty store: same id, same layers, runnable by us."""
    archive = tmp_path / "base.tar"
    api.save([TAG], archive, format="docker-archive", store=store)
    dockerd.load(archive)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {TAG}\nRUN echo built-by-docker > /stamp\n")
    dockerd.build(ctx, "demo/docker-built:1")
    saved = tmp_path / "docker-save.tar"
    dockerd.docker("save", "-o", saved, "demo/docker-built:1")
    other = Store(tmp_path / "other")
    loaded = api.load(saved, store=other)
    assert loaded[0][1] == ["docker.io/demo/docker-built:1"]
    ours = api.image("demo/docker-built:1", store=other)
    theirs = _inspect(dockerd, "demo/docker-built:1")
    assert str(ours.id) == theirs["Id"]
    assert [str(d) for d in ours.config.diff_ids] == theirs["RootFS"]["Layers"]
    assert fsck(other).ok
    assert _our_run("demo/docker-built:1", other, ["cat", "/stamp"]) == b"built-by-docker\n"


# ---------------------------------------------------------------------------- registry
def test_docker_pulls_and_runs_what_we_push(dockerd: Dockerd, image, store: Store,
                                            registry: Registry) -> None:
    ref = f"{registry.host}/interop/ours:1"
    digest = api.push(TAG, ref, store=store, tls_verify=False)
    out = dockerd.docker("pull", ref).stdout.decode()
    assert f"Digest: {digest}" in out
    info = _inspect(dockerd, ref)
    assert info["Id"] == str(image.id)
    assert info["RepoDigests"] == [f"{registry.host}/interop/ours@{digest}"]
    assert _run(dockerd, ref) == "hello from x86_64\n"


def test_we_pull_what_docker_pushes(dockerd: Dockerd, image, store: Store, registry: Registry,
                                    tmp_path: Path) -> None:
    archive = tmp_path / "base.tar"
    api.save([TAG], archive, format="docker-archive", store=store)
    dockerd.load(archive)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {TAG}\nRUN echo pushed > /stamp\nCMD [\"cat\", \"/stamp\"]\n")
    ref = f"{registry.host}/interop/docker:1"
    dockerd.build(ctx, ref)
    out = dockerd.docker("push", ref).stdout.decode()
    pushed = next(w for w in out.split() if w.startswith("sha256:"))
    other = Store(tmp_path / "other")
    img = api.pull(ref, store=other, tls_verify=False)
    assert str(img.digest) == pushed
    assert img.manifest.media_type == mt.DOCKER_MANIFEST  # docker pushes schema 2
    assert str(img.id) == _inspect(dockerd, ref)["Id"]
    assert fsck(other).ok
    assert _our_run(ref, other) == b"pushed\n"


def _two_platform_index(store: Store, busybox_rootfs: Path, arm64_rootfs: Path,
                        name: str) -> None:
    from nbcontainer.builder.export import export_index
    from nbcontainer.oci.platform import Platform

    children = []
    for arch, root in (("amd64", busybox_rootfs), ("arm64", arm64_rootfs)):
        ref = f"demo/busybox-{arch}:1"
        api.import_image(root, ref, changes=[SAY], store=store, platform=f"linux/{arch}")
        children.append((Platform.parse(f"linux/{arch}"), store.resolve_digest(ref)))
    export_index(store, children, [name])


def test_docker_pulls_one_platform_of_our_index(dockerd: Dockerd, store: Store,
                                                busybox_rootfs: Path, arm64_rootfs: Path,
                                                registry: Registry) -> None:
    _two_platform_index(store, busybox_rootfs, arm64_rootfs, "demo/multi:1")
    ref = f"{registry.host}/interop/multi:1"
    digest = api.push("demo/multi:1", ref, store=store, tls_verify=False)
    assert f"Digest: {digest}" in dockerd.docker("pull", ref).stdout.decode()
    assert _inspect(dockerd, ref)["Architecture"] == "amd64"  # the host's platform
    assert _run(dockerd, ref) == "hello from x86_64\n"
    dockerd.docker("pull", "--platform", "linux/arm64", ref)
    assert _inspect(dockerd, ref)["Architecture"] == "arm64"
    # the arm64 busybox runs through qemu-user-static's binfmt_misc entry
    assert _run(dockerd, ref, "--platform", "linux/arm64") == "hello from aarch64\n"


def test_we_pull_a_manifest_list_docker_pushes(dockerd: Dockerd, store: Store,
                                               busybox_rootfs: Path, arm64_rootfs: Path,
                                               registry: Registry, tmp_path: Path) -> None:
    """``docker manifest create/push`` over two images docker pushed: a Docker manifest
    list, which we pull whole or one platform at a time."""
    refs = []
    for arch, root in (("amd64", busybox_rootfs), ("arm64", arm64_rootfs)):
        api.import_image(root, f"demo/bb-{arch}:1", changes=[SAY], store=store,
                         platform=f"linux/{arch}")
        archive = tmp_path / f"{arch}.tar"
        api.save([f"demo/bb-{arch}:1"], archive, format="docker-archive", store=store)
        dockerd.load(archive)
        ref = f"{registry.host}/interop/docker-multi:{arch}"
        dockerd.docker("tag", f"demo/bb-{arch}:1", ref)
        dockerd.docker("push", ref)
        refs.append(ref)
    listed = f"{registry.host}/interop/docker-multi:all"
    dockerd.docker("manifest", "create", "--insecure", listed, *refs)
    out = dockerd.docker("manifest", "push", "--insecure", listed).stdout.decode()
    pushed = next(w for w in out.split() if w.startswith("sha256:"))
    other = Store(tmp_path / "other")
    for arch in ("arm64", "amd64"):
        img = api.pull(listed, platform=f"linux/{arch}", store=other, tls_verify=False)
        assert img.config.architecture == arch
    api.pull(listed, all_platforms=True, store=other, tls_verify=False)
    assert str(other.resolve_digest(listed)) == pushed  # the list itself, as docker pushed it
    assert fsck(other).ok
    assert _our_run(listed, other) == b"hello from x86_64\n"


def test_docker_20_10_cannot_read_zstd_layers(dockerd: Dockerd, image, store: Store,
                                              registry: Registry) -> None:
    """moby 20.10 accepts the zstd media type but feeds the blob to its tar reader as is:
    the pull fails ("invalid tar header"). zstd reading came with moby/moby#41759 (Docker
    23.0). The same layer gzip-compressed pulls and runs."""
    raw = gzip.decompress(store.blobs.read(image.layers[0].digest))
    for how in ("zstd", "gzip"):
        store_image(store, f"demo/{how}:1", [], raw_layers=[raw], compression=how)
        ref = f"{registry.host}/interop/{how}:1"
        api.push(f"demo/{how}:1", ref, store=store, tls_verify=False)
        proc = dockerd.docker("pull", ref, check=False)
        if how == "zstd":
            assert api.image(f"demo/{how}:1", store=store).manifest.layers[0].media_type \
                == mt.OCI_LAYER_ZSTD
            assert proc.returncode != 0
            assert b"invalid tar header" in proc.stderr
        else:
            assert proc.returncode == 0, proc.stderr
            assert dockerd.docker("run", "--rm", "--network", "none", ref, "echo", "ok"
                                  ).stdout == b"ok\n"


def test_docker_pulls_an_image_with_a_provenance_referrer(dockerd: Dockerd, image,
                                                          store: Store, registry: Registry,
                                                          tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {TAG}\nRUN echo attested > /stamp\n")
    built = api.build(ctx / "Dockerfile", ctx, ["demo/attested:1"], provenance=True,
                      store=store)
    assert api.provenance("demo/attested:1", store=store)  # the statement is attached
    ref = f"{registry.host}/interop/attested:1"
    digest = api.push("demo/attested:1", ref, store=store, tls_verify=False)
    assert digest == str(built.digest)
    # the referrer went along (distribution 2.8: under the fallback tag sha256-<hex>)
    again = api.pull(ref, store=Store(tmp_path / "other"), tls_verify=False)
    assert api.provenance(ref, store=again.store)
    # docker does not know referrers: it pulls and runs the image as if there were none
    assert f"Digest: {digest}" in dockerd.docker("pull", ref).stdout.decode()
    assert _inspect(dockerd, ref)["Id"] == str(built.id)
    assert dockerd.docker("run", "--rm", "--network", "none", ref, "cat", "/stamp").stdout \
        == b"attested\n"

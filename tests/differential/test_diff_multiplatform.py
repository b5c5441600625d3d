"""Differential multi-platform case: ``--platform linux/amd64,linux/arm64`` by nbcontainer, by
docker 20.10 (one ``docker build --platform`` per platform: its image store holds one platform
per name, and its exporter cannot write an index) and by buildah 1.28 (``bud --manifest``),
compared platform by platform as flattened trees and image configs (each peer's IGNORES, as
for the single-platform cases).

The base is a two-platform busybox under one name: an OCI index in our store, a manifest
list over the two local images in buildah's, and in docker's the platform's own image tagged
under that name before each build; each tool picks the instance per platform. The RUN of
the arm64 image goes through qemu-user-static's binfmt_misc entry in all three.
"""

from __future__ import annotations

import json
import platform as _pyplatform
import shutil
from pathlib import Path

import pytest

from nbcontainer import api
from nbcontainer.api import build
from nbcontainer.builder.export import export_index
from nbcontainer.builder.platforms import find_emulator
from nbcontainer.image import ImageIndex
from nbcontainer.oci.platform import Platform
from tests.support import buildah, docker
from tests.support.buildah import Env
from tests.support.differential import check, flatten
from tests.support.docker import Dockerd
from tests.support.rootfs import make_arm64_rootfs
from tests.support.scratch import fixture_dir

pytestmark = pytest.mark.skipif(_pyplatform.machine() != "x86_64",
                                reason="the emulated platform here is arm64 on amd64")

BASES = {"amd64": "localhost/busybox-amd64:latest", "arm64": "localhost/busybox-arm64:latest"}
MULTI = "localhost/busybox:multi"
DOCKERFILE = f"""\
FROM {MULTI}
ARG TARGETARCH
ENV ARCH=$TARGETARCH
COPY a.txt /a.txt
RUN uname -m > /m && echo $TARGETARCH >> /m
CMD ["cat", "/m"]
"""


@pytest.fixture(scope="module")
def mp_env(diff_env: Env) -> Env:
    """diff_env plus the two-platform base MULTI, in our store and in buildah's."""
    from tests.support.rootfs import make_busybox_rootfs

    roots = {"amd64": make_busybox_rootfs(diff_env.work / "mp-amd64", etc_files=False),
             "arm64": make_arm64_rootfs(diff_env.work / "mp-arm64")}
    for arch, ref in BASES.items():
        api.import_image(roots[arch], ref, store=diff_env.store, platform=f"linux/{arch}")
        archive = diff_env.work / f"mp-{arch}.tar"
        api.save([ref], archive, format="oci-archive", store=diff_env.store)
        proc = diff_env.buildah("pull", "--quiet", "--platform", f"linux/{arch}",
                                f"oci-archive:{archive}")
        assert proc.returncode == 0, proc.stderr.decode()
    export_index(diff_env.store, [(Platform.parse(f"linux/{a}"), diff_env.store.resolve_digest(r))
                                  for a, r in BASES.items()], [MULTI])
    assert diff_env.buildah("manifest", "create", MULTI).returncode == 0
    for ref in BASES.values():
        proc = diff_env.buildah("manifest", "add", MULTI, f"containers-storage:{ref}")
        assert proc.returncode == 0, proc.stderr.decode()
    return diff_env


@pytest.fixture(scope="module")
def mp_docker(mp_env: Env, docker_peer: Dockerd) -> Dockerd:
    """docker_peer plus the two single-platform bases (loaded from our docker-archives)."""
    for arch, ref in BASES.items():
        archive = mp_env.work / f"mp-{arch}.docker.tar"
        api.save([ref], archive, format="docker-archive", store=mp_env.store)
        docker_peer.load(archive)
    return docker_peer


def docker_images(daemon: Dockerd, work: Path, ctx: Path) -> dict[str, tuple[dict, dict]]:
    out = {}
    for arch, ref in BASES.items():
        daemon.docker("tag", ref, MULTI)  # the name resolves to this platform's image
        tag = f"localhost/diff-mp-{arch}:latest"
        daemon.build(ctx, tag, "--platform", f"linux/{arch}")
        saved = work / f"docker-save-mp-{arch}"
        shutil.rmtree(saved, ignore_errors=True)
        layers, config = daemon.save_layers(tag, saved)
        out[arch] = (flatten(layers, work / f"flat-docker-mp-{arch}"), config)
    return out


def buildah_index(env: Env, ctx: Path) -> dict[str, tuple[dict, dict]]:
    name = "localhost/diff-multiplatform:latest"
    proc = env.buildah("bud", "--isolation", "chroot", "--layers", "--network", "host",
                       "--pull=never", "--platform", "linux/amd64,linux/arm64",
                       "--manifest", name, str(ctx), timeout=600)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    layout = env.work / "oci-multiplatform"
    shutil.rmtree(layout, ignore_errors=True)
    proc = env.buildah("manifest", "push", "--all", name, f"oci:{layout}")
    assert proc.returncode == 0, proc.stderr.decode()
    blob = lambda d: layout / "blobs" / "sha256" / d.split(":")[1]  # noqa: E731
    top = json.loads((layout / "index.json").read_text())["manifests"][0]
    index = json.loads(blob(top["digest"]).read_text())
    out = {}
    for desc in index["manifests"]:
        manifest = json.loads(blob(desc["digest"]).read_text())
        config = json.loads(blob(manifest["config"]["digest"]).read_text())
        arch = desc["platform"]["architecture"]
        layers = [blob(layer["digest"]) for layer in manifest["layers"]]
        out[arch] = (flatten(layers, env.work / f"flat-buildah-mp-{arch}"), config)
    return out


def our_index(env: Env, ctx: Path) -> dict[str, tuple[dict, dict]]:
    idx = build(ctx / "Dockerfile", ctx, store=env.store, platform="linux/amd64,linux/arm64")
    assert isinstance(idx, ImageIndex)
    out = {}
    for plat, img in zip(idx.platforms, idx.images, strict=True):
        arch = Platform.parse(plat).architecture
        layers = [env.store.blobs.path(layer.digest) for layer in img.manifest.layers]
        out[arch] = (flatten(layers, env.work / f"flat-ours-mp-{arch}"),
                     json.loads(env.store.blobs.read(img.manifest.config.digest)))
    return out


@pytest.fixture(scope="module")
def mp_ctx(request: pytest.FixtureRequest) -> Path:
    assert find_emulator(Platform.parse("linux/arm64")) is not None, \
        "no qemu-aarch64 binfmt_misc entry: run scripts/setup.sh"
    ctx = fixture_dir(request, "mp-ctx")
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    (ctx / "a.txt").write_text("a\n")
    return ctx


@pytest.fixture(scope="module")
def ours(mp_env: Env, mp_ctx: Path) -> dict[str, tuple[dict, dict]]:
    out = our_index(mp_env, mp_ctx)
    assert sorted(out) == ["amd64", "arm64"]
    # the platforms really differ: each has its own busybox, and its RUN ran on its own CPU
    # (arm64 through qemu), so /m ("x86_64\namd64\n" vs "aarch64\narm64\n") differs too
    for path in ("bin/busybox", "m"):
        assert out["amd64"][0][path] != out["arm64"][0][path]
    for arch in out:
        assert out[arch][1]["architecture"] == arch
    return out


def test_multiplatform_same_as_docker(mp_docker: Dockerd, mp_env: Env, mp_ctx: Path,
                                      ours: dict[str, tuple[dict, dict]]) -> None:
    theirs = docker_images(mp_docker, mp_env.work, mp_ctx)
    for arch in ("amd64", "arm64"):
        check(docker.PEER, f"multiplatform/{arch}", docker.IGNORES, ours[arch], theirs[arch])


def test_multiplatform_same_as_buildah(mp_env: Env, mp_ctx: Path,
                                       ours: dict[str, tuple[dict, dict]]) -> None:
    theirs = buildah_index(mp_env, mp_ctx)
    assert sorted(theirs) == ["amd64", "arm64"]
    for arch in ("amd64", "arm64"):
        check(buildah.PEER, f"multiplatform/{arch}", buildah.IGNORES, ours[arch], theirs[arch])

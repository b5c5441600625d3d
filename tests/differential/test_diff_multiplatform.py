"""Differential multi-platform case: ``--platform linux/amd64,linux/arm64`` by buildah 1.28
(``bud --manifest``) and by nbcontainer, compared platform by platform as flattened trees and
image configs (same IGNORED list as the single-platform cases).

The base is a two-platform busybox under one name: an OCI index in our store, a manifest
list over the two local images in buildah's; each tool picks the instance per platform. The
RUN of the arm64 image goes through qemu-user-static's binfmt_misc entry in both.
"""

from __future__ import annotations

import json
import platform as _pyplatform
import shutil
from pathlib import Path

import pytest
from multiarch import make_arm64_rootfs

from nbcontainer import api
from nbcontainer.api import build
from nbcontainer.builder.export import export_index
from nbcontainer.builder.platforms import find_emulator
from nbcontainer.image import ImageIndex
from nbcontainer.layers import apply_layers
from nbcontainer.oci.platform import Platform

from .conftest import Env, comparable_config, flat_tree

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
    from sandbox.conftest import make_busybox_rootfs

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
        flat = env.work / f"flat-buildah-mp-{desc['platform']['architecture']}"
        shutil.rmtree(flat, ignore_errors=True)
        apply_layers(flat, [blob(layer["digest"]) for layer in manifest["layers"]])
        out[desc["platform"]["architecture"]] = (flat_tree(flat), config)
    return out


def our_index(env: Env, ctx: Path) -> dict[str, tuple[dict, dict]]:
    idx = build(ctx / "Dockerfile", ctx, store=env.store, platform="linux/amd64,linux/arm64")
    assert isinstance(idx, ImageIndex)
    out = {}
    for plat, img in zip(idx.platforms, idx.images, strict=True):
        arch = Platform.parse(plat).architecture
        flat = env.work / f"flat-ours-mp-{arch}"
        shutil.rmtree(flat, ignore_errors=True)
        apply_layers(flat, [env.store.blobs.path(layer.digest) for layer in img.manifest.layers])
        out[arch] = (flat_tree(flat), json.loads(env.store.blobs.read(img.manifest.config.digest)))
    return out


def test_multiplatform_same_as_buildah(mp_env: Env, tmp_path: Path) -> None:
    assert find_emulator(Platform.parse("linux/arm64")) is not None, \
        "no qemu-aarch64 binfmt_misc entry: run scripts/setup.sh"
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    (ctx / "a.txt").write_text("a\n")
    ours = our_index(mp_env, ctx)
    theirs = buildah_index(mp_env, ctx)
    assert sorted(ours) == sorted(theirs) == ["amd64", "arm64"]
    for arch in ("amd64", "arm64"):
        ours_tree, ours_cfg = ours[arch]
        theirs_tree, theirs_cfg = theirs[arch]
        only_ours = {k: ours_tree[k] for k in ours_tree.keys() - theirs_tree.keys()}
        only_theirs = {k: theirs_tree[k] for k in theirs_tree.keys() - ours_tree.keys()}
        differ = {k: (ours_tree[k], theirs_tree[k]) for k in ours_tree.keys() & theirs_tree.keys()
                  if ours_tree[k] != theirs_tree[k]}
        assert (arch, only_ours, only_theirs, differ) == (arch, {}, {}, {})
        assert comparable_config(ours_cfg) == comparable_config(theirs_cfg)
        assert ours_cfg["architecture"] == arch
    # the platforms really differ: each has its own busybox, and its RUN ran on its own CPU
    # (arm64 through qemu), so /m ("x86_64\namd64\n" vs "aarch64\narm64\n") differs too
    for path in ("bin/busybox", "m"):
        assert ours["amd64"][0][path] != ours["arm64"][0][path]

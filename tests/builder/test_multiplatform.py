"""Multi-platform builds: ``--platform linux/amd64,linux/arm64`` gives one image per platform
and an OCI index; FROM --platform=$BUILDPLATFORM stages run natively; RUN for arm64 goes
through qemu-user-static's binfmt_misc entry, and without one fails with a clear error.

The arm64 base is Debian's busybox-static:arm64 (scripts/setup.sh caches it), imported next
to the host's busybox and joined into one index, so ``FROM busybox`` resolves per platform.
"""

from __future__ import annotations

import json
import os
import platform as _pyplatform
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbcontainer import api
from nbcontainer.api import build
from nbcontainer.builder.export import export_index
from nbcontainer.builder.platforms import BINFMT_ENV, find_emulator
from nbcontainer.errors import BuildError
from nbcontainer.image import Image, ImageIndex
from nbcontainer.oci import mediatypes as mt
from nbcontainer.oci.platform import Platform
from nbcontainer.store import Store
from tests.support.builds import flatten, write
from tests.support.rootfs import make_arm64_rootfs
from tests.support.scratch import fixture_dir

AMD64 = Platform.parse("linux/amd64")
ARM64 = Platform.parse("linux/arm64")
BOTH = "linux/amd64,linux/arm64"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or _pyplatform.machine() != "x86_64",
    reason="needs root on an amd64 host (the emulated platform is arm64)")


@pytest.fixture(scope="session")
def arm64_rootfs(request: pytest.FixtureRequest) -> Path:
    return make_arm64_rootfs(fixture_dir(request, "bbarm64") / "rootfs")


def add_multi_busybox(st: Store, amd64_root: Path, arm64_root: Path, tag: str) -> None:
    """``tag`` → an OCI index of the amd64 and arm64 busybox images."""
    a = api.import_image(amd64_root, store=st, platform="linux/amd64")
    b = api.import_image(arm64_root, store=st, platform="linux/arm64")
    export_index(st, [(AMD64, a.digest), (ARM64, b.digest)], [tag])


@pytest.fixture
def mstore(tmp_path: Path, busybox_rootfs: Path, arm64_rootfs: Path,
           monkeypatch: pytest.MonkeyPatch) -> Store:
    """A fresh store whose ``busybox:latest`` is a two-platform index."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    st = Store(tmp_path / "store")
    add_multi_busybox(st, busybox_rootfs, arm64_rootfs, "busybox:latest")
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    return st


@pytest.fixture
def registry_server(request: pytest.FixtureRequest) -> Iterator:
    from tests.support.registry import Registry

    reg = Registry("plain", fixture_dir(request, "mp-registry")).start()
    try:
        yield reg
    finally:
        reg.stop()


def config_of(img: Image) -> dict:
    return json.loads(img.store.blobs.read(img.manifest.config.digest))


def read_file(img: Image, tmp: Path, path: str) -> str:
    dest = tmp / f"flat-{img.digest.hex[:12]}"
    shutil.rmtree(dest, ignore_errors=True)
    flatten(img, dest)
    return (dest / path).read_text()


# ---------------------------------------------------------------------------- (a) no RUN


def test_copy_env_two_platforms_index_and_push(mstore: Store, ctx: Path, tmp_path: Path,
                                              registry_server) -> None:
    write(ctx, {"hello.txt": "hi\n"})
    df = "FROM busybox\nENV GREETING=hello\nCOPY hello.txt /hello.txt\nCMD [\"cat\", \"/hello.txt\"]\n"
    idx = build(df, ctx, tags=["multi:1"], store=mstore, platform=BOTH)
    assert isinstance(idx, ImageIndex)
    # the tag points at the index, an OCI index with a platform on each descriptor
    assert mstore.resolve_digest("multi:1") == idx.digest
    raw = json.loads(mstore.blobs.read(idx.digest))
    assert raw["mediaType"] == mt.OCI_INDEX
    assert [m["platform"] for m in raw["manifests"]] == [
        {"architecture": "amd64", "os": "linux"}, {"architecture": "arm64", "os": "linux"}]
    assert all(m["mediaType"] == mt.OCI_MANIFEST for m in raw["manifests"])
    archs = []
    for img in idx.images:
        cfg = config_of(img)
        archs.append(cfg["architecture"])
        assert "GREETING=hello" in cfg["config"]["Env"]
        assert read_file(img, tmp_path, "hello.txt") == "hi\n"
    assert archs == ["amd64", "arm64"]
    # the arm64 image really carries the arm64 busybox
    arm = idx.image("linux/arm64")
    assert config_of(arm)["architecture"] == "arm64"
    flat = tmp_path / "arm-flat"
    flatten(arm, flat)
    assert (flat / "bin/busybox").read_bytes()[18:20] == (183).to_bytes(2, "little")
    # `images` lists the tag once, on the index
    rows = [r for r in api.images(store=mstore) if r.name == "docker.io/library/multi:1"]
    assert len(rows) == 1 and rows[0].digest == idx.digest
    # inspect of the tag gives the host's image (as docker does); the index inspects itself
    assert api.inspect(["multi:1"], store=mstore)[0]["Architecture"] == "amd64"
    assert [m["Platform"] for m in idx.inspect()["Manifests"]] == ["linux/amd64", "linux/arm64"]

    ref = f"{registry_server.host}/multi:1"
    pushed = idx.push(ref)
    assert pushed == str(idx.digest)
    out = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
                         capture_output=True, text=True, check=True).stdout
    remote = json.loads(out)
    assert remote["mediaType"] == mt.OCI_INDEX
    assert sorted(m["platform"]["architecture"] for m in remote["manifests"]) == [
        "amd64", "arm64"]
    arm_cfg = subprocess.run(["skopeo", "inspect", "--config", "--tls-verify=false",
                              "--override-arch", "arm64", f"docker://{ref}"],
                             capture_output=True, text=True, check=True).stdout
    assert json.loads(arm_cfg)["architecture"] == "arm64"


def test_save_index_oci_archive(mstore: Store, ctx: Path, tmp_path: Path) -> None:
    idx = build("FROM busybox\nENV A=1\n", ctx, tags=["saved:1"], store=mstore, platform=BOTH)
    out = idx.save(tmp_path / "multi.tar")
    listing = subprocess.run(["skopeo", "inspect", "--raw", f"oci-archive:{out}"],
                             capture_output=True, text=True, check=True).stdout
    assert len(json.loads(listing)["manifests"]) == 2


def test_single_foreign_platform_is_one_image(mstore: Store, ctx: Path) -> None:
    img = build("FROM busybox\nLABEL x=y\n", ctx, tags=["arm:1"], store=mstore,
                platform="linux/aarch64")
    assert isinstance(img, Image)
    assert config_of(img)["architecture"] == "arm64"
    assert mstore.resolve_digest("arm:1") == img.digest


def test_duplicate_platforms_collapse(mstore: Store, ctx: Path) -> None:
    img = build("FROM busybox\n", ctx, store=mstore, platform="linux/amd64, linux/x86_64")
    assert isinstance(img, Image)


# ---------------------------------------------------------------------------- (b) cross


CROSS = """\
FROM --platform=$BUILDPLATFORM busybox AS build
ARG TARGETARCH
ARG BUILDPLATFORM
RUN echo "$TARGETARCH built on $BUILDPLATFORM $(uname -m)" > /out
FROM busybox
COPY --from=build /out /out
"""


def test_cross_pattern_builds_on_build_platform(mstore: Store, ctx: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # No emulator at all: the RUN is on the build platform, so it must not need one.
    empty = tmp_path / "no-binfmt"
    empty.mkdir()
    monkeypatch.setenv(BINFMT_ENV, str(empty))
    idx = build(CROSS, ctx, tags=["cross:1"], store=mstore, platform=BOTH)
    assert isinstance(idx, ImageIndex)
    amd, arm = idx.images
    assert read_file(amd, tmp_path, "out") == "amd64 built on linux/amd64 x86_64\n"
    assert read_file(arm, tmp_path, "out") == "arm64 built on linux/amd64 x86_64\n"
    assert config_of(arm)["architecture"] == "arm64"
    assert config_of(amd)["architecture"] == "amd64"


def test_build_platform_stage_is_shared(mstore: Store, ctx: Path, tmp_path: Path) -> None:
    """A $BUILDPLATFORM stage that does not depend on the target runs once: the second
    platform finds its RUN in the cache (same base, same key)."""
    from nbcontainer.progress import Collector

    df = ("FROM --platform=$BUILDPLATFORM busybox AS gen\nRUN uname -m > /gen\n"
          "FROM busybox\nCOPY --from=gen /gen /gen\n")
    ev = Collector()
    idx = build(df, ctx, store=mstore, platform=BOTH, progress=ev)
    from nbcontainer.wording import step_title

    names = {e.id: step_title(e) for e in ev.kinds("start")}
    runs = {names[e.id]: e.kind for e in ev.events
            if e.kind in ("done", "cached") and "RUN" in names.get(e.id, "")}
    assert runs == {"[linux/amd64 gen 2/2] RUN /bin/sh -c uname -m > /gen": "done",
                    "[linux/arm64 gen 2/2] RUN /bin/sh -c uname -m > /gen": "cached"}
    assert [read_file(i, tmp_path, "gen") for i in idx.images] == ["x86_64\n", "x86_64\n"]


# ---------------------------------------------------------------------------- (c) emulated


def test_run_arm64_under_qemu(mstore: Store, ctx: Path, tmp_path: Path) -> None:
    assert find_emulator(ARM64) is not None, "qemu-aarch64 binfmt entry missing: run setup.sh"
    df = "FROM busybox\nARG TARGETPLATFORM\nRUN uname -m > /arch && echo $TARGETPLATFORM >> /arch\n"
    idx = build(df, ctx, tags=["uname:1"], store=mstore, platform=BOTH)
    amd, arm = idx.images
    assert read_file(amd, tmp_path, "arch") == "x86_64\nlinux/amd64\n"
    assert read_file(arm, tmp_path, "arch") == "aarch64\nlinux/arm64\n"


# ---------------------------------------------------------------------------- (d) no emulator


def test_foreign_run_without_emulation_is_a_clear_error(mstore: Store, ctx: Path,
                                                        tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "no-binfmt"
    empty.mkdir()
    monkeypatch.setenv(BINFMT_ENV, str(empty))
    df = "FROM busybox\nENV A=1\nRUN uname -m > /arch\n"
    with pytest.raises(BuildError) as info:
        build(df, ctx, tags=["noemu:1"], store=mstore, platform=BOTH)
    msg = info.value.message
    assert "linux/arm64" in msg and "Dockerfile:3" in msg and "RUN" in msg
    assert "qemu-user-static" in (info.value.hint or "")
    assert "$BUILDPLATFORM" in (info.value.hint or "")
    # nothing was tagged by the failed build
    assert not [r for r in api.images(store=mstore) if r.name == "docker.io/library/noemu:1"]
    # the native platform alone still builds; a RUN already in the cache needs no emulator
    monkeypatch.delenv(BINFMT_ENV)
    build(df, ctx, store=mstore, platform=BOTH)
    monkeypatch.setenv(BINFMT_ENV, str(empty))
    again = build(df, ctx, tags=["noemu:2"], store=mstore, platform=BOTH)
    assert [config_of(i)["architecture"] for i in again.images] == ["amd64", "arm64"]


def test_bad_platform_list(mstore: Store, ctx: Path) -> None:
    with pytest.raises(BuildError) as info:
        build("FROM busybox\n", ctx, store=mstore, platform="linux/amd64,,linux/arm64")
    assert "empty entry" in info.value.message and info.value.hint
    with pytest.raises(BuildError) as info:
        build("FROM busybox\n", ctx, store=mstore, platform="linux/amd64,linux//arm64")
    assert "linux//arm64" in info.value.message


def test_cli_build_prints_index(mstore: Store, ctx: Path) -> None:
    from nbcontainer import cli

    (ctx / "Dockerfile").write_text("FROM busybox\nENV A=1\n")
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli.main(["--root", str(mstore.home), "build", "--platform", BOTH, "-t",
                       "clim:1", "--progress", "plain", str(ctx)])
    assert rc in (0, None)
    idx = ImageIndex.load(mstore, "clim:1")
    text = out.getvalue()
    assert str(idx.digest) in text
    for img in idx.images:
        assert str(img.digest) in text
    # progress names the platform of each step when there are several
    assert "[linux/arm64 " in err.getvalue() and "[linux/amd64 " in err.getvalue()
    # `images`: one row for the index tag; the platform manifests are not <none> rows
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["--root", str(mstore.home), "images"]) == 0
    rows = out.getvalue().splitlines()[1:]
    assert [r.split()[:2] for r in rows if r.startswith("clim")] == [["clim", "1"]]
    assert not [r for r in rows if r.startswith("<none>")]


def test_index_displays_each_platform_in_a_notebook(mstore: Store, ctx: Path) -> None:
    """The notebook shows a multi-platform result as one section per platform, each with
    that platform's own layer tree (the arm64 layer holds the arm64-only file)."""
    write(ctx, {"hello.txt": "hi\n"})
    df = "FROM busybox\nARG TARGETARCH\nCOPY hello.txt /for-$TARGETARCH.txt\n"
    idx = build(df, ctx, tags=["shown:1"], store=mstore, platform=BOTH)
    from nbcontainer.notebook.views import index_bundle

    bundle = index_bundle(idx)
    html = bundle["text/html"]
    assert html.count("<details><summary><b>linux/") == 2
    assert "<b>linux/amd64</b>" in html and "<b>linux/arm64</b>" in html
    amd, arm = html.split("<b>linux/arm64</b>")
    assert "for-amd64.txt" in amd and "for-arm64.txt" not in amd
    assert "for-arm64.txt" in arm and "for-amd64.txt" not in arm
    assert str(idx.digest) in html
    assert bundle["text/plain"].splitlines()[0] == f"shown:1  index {idx.digest}"


def test_single_platform_base_for_another_platform_warns(tmp_path: Path, ctx: Path,
                                                         busybox_rootfs: Path) -> None:
    """An amd64-only base used for linux/arm64 is taken as it is, with BuildKit's warning."""
    from nbcontainer.progress import Collector

    st = Store(tmp_path / "store")
    api.import_image(busybox_rootfs, "amd64only:1", store=st, platform="linux/amd64")
    events = Collector()
    img = build("FROM amd64only:1\nENV A=1\n", ctx, store=st, platform="linux/arm64",
                progress=events)
    warnings = [e.text for e in events.kinds("warning")]
    assert warnings == ["InvalidBaseImagePlatform: base image amd64only:1 has platform "
                        "linux/amd64, expected linux/arm64 for this build"]
    assert isinstance(img, Image)
    native = Collector()
    build("FROM amd64only:1\nENV A=2\n", ctx, store=st, progress=native)
    assert not native.kinds("warning")

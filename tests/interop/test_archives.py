"""What nbcontainer exports is read by the real peers (oci-image-tool, skopeo, umoci, podman),
and what they write loads back."""

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest

from nbcontainer import api
from nbcontainer.errors import NbcontainerError
from nbcontainer.store import Store, fsck

TAG = "demo/busybox:1.0"


def run(*cmd, **kw):
    res = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert res.returncode == 0, f"{cmd} failed: {res.stdout}\n{res.stderr}"
    return res.stdout


@pytest.fixture
def image(store, busybox_rootfs):
    return api.import_image(busybox_rootfs, TAG, changes=['CMD ["/bin/sh", "-c", "echo hi"]'],
                            store=store)


def test_oci_dir_validates_and_inspects(image, store, tmp_path):
    layout = tmp_path / "layout"
    api.save([TAG], layout, format="oci-dir", store=store)
    run("oci-image-tool", "validate", "--type", "image", "--ref", "name=1.0", layout)
    info = json.loads(run("skopeo", "inspect", f"oci:{layout}:1.0"))
    assert info["Digest"] == str(image.digest)
    assert info["Layers"] == [str(image.layers[0].digest)]
    cfg = json.loads(run("skopeo", "inspect", "--config", f"oci:{layout}:1.0"))
    assert cfg["config"]["Cmd"] == ["/bin/sh", "-c", "echo hi"]
    assert cfg["rootfs"]["diff_ids"] == [str(image.config.diff_ids[0])]


def test_umoci_unpacks_the_same_tree(image, store, tmp_path, busybox_rootfs):
    layout = tmp_path / "layout"
    api.save([TAG], layout, format="oci-dir", store=store)
    bundle = tmp_path / "bundle"
    run("umoci", "unpack", "--image", f"{layout}:1.0", bundle)
    got = bundle / "rootfs"
    assert (got / "bin/busybox").read_bytes() == (busybox_rootfs / "bin/busybox").read_bytes()
    assert os.readlink(got / "bin/sh") == "/bin/busybox"
    want = sorted(str(p.relative_to(busybox_rootfs)) for p in busybox_rootfs.rglob("*"))
    have = sorted(str(p.relative_to(got)) for p in got.rglob("*"))
    assert have == want


def test_oci_archive_inspects(image, store, tmp_path):
    archive = tmp_path / "img.oci.tar"
    api.save([TAG], archive, format="oci-archive", store=store)
    info = json.loads(run("skopeo", "inspect", f"oci-archive:{archive}:1.0"))
    assert info["Digest"] == str(image.digest)


def test_docker_archive_inspects(image, store, tmp_path):
    archive = tmp_path / "img.docker.tar"
    api.save([TAG], archive, format="docker-archive", store=store)
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        assert manifest[0]["RepoTags"] == [TAG]
        layer = tar.extractfile(manifest[0]["Layers"][0]).read()
        # docker-archive layers are uncompressed tars whose digest is the diff_id
        assert "sha256:" + hashlib.sha256(layer).hexdigest() == str(image.config.diff_ids[0])
        assert json.load(tar.extractfile("repositories")) == {
            "demo/busybox": {"1.0": image.config.diff_ids[0].hex}}
    cfg = json.loads(run("skopeo", "inspect", "--config", f"docker-archive:{archive}"))
    assert cfg["config"]["Cmd"] == ["/bin/sh", "-c", "echo hi"]


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive"])
def test_podman_loads_it(image, store, tmp_path, fmt, request):
    archive = tmp_path / "img.tar"
    api.save([TAG], archive, format=fmt, store=store)
    root = tmp_path / "podman-root"
    runroot = Path(tempfile.mkdtemp(prefix="nbp-", dir="/tmp"))  # podman: runroot <= 50 chars
    request.addfinalizer(lambda: shutil.rmtree(runroot, ignore_errors=True))
    podman = ["podman", "--root", root, "--runroot", runroot, "--storage-driver", "vfs",
              "--cgroup-manager", "cgroupfs", "--events-backend", "none"]
    out = run(*podman, "load", "-i", archive)
    assert "Loaded image" in out
    info = json.loads(run(*podman, "image", "inspect", str(image.id)))
    assert info[0]["Config"]["Cmd"] == ["/bin/sh", "-c", "echo hi"]
    assert info[0]["RootFS"]["Layers"] == [str(image.config.diff_ids[0])]
    if fmt == "docker-archive":
        assert "docker.io/demo/busybox:1.0" in info[0]["RepoTags"]


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive", "oci-dir"])
def test_round_trip_through_a_fresh_store(image, store, tmp_path, fmt):
    dest = tmp_path / "out"
    api.save([TAG], dest, format=fmt, store=store)
    other = Store(tmp_path / "other")
    loaded = api.load(dest, store=other)
    again = api.image(TAG, store=other)
    assert loaded[0][1] == [f"docker.io/{TAG}"]
    assert again.id == image.id  # same config bytes
    if fmt != "docker-archive":
        assert again.digest == image.digest  # manifest bytes preserved
    assert fsck(other).ok


def test_loads_what_skopeo_writes(image, store, tmp_path):
    layout = tmp_path / "layout"
    api.save([TAG], layout, format="oci-dir", store=store)
    archive = tmp_path / "skopeo.tar"
    run("skopeo", "copy", f"oci:{layout}:1.0", f"docker-archive:{archive}:other/name:2")
    other = Store(tmp_path / "other")
    api.load(archive, store=other)
    img = api.image("other/name:2", store=other)
    assert img.id == image.id
    assert fsck(other).ok
    oci_archive = tmp_path / "skopeo.oci.tar"
    run("skopeo", "copy", f"oci:{layout}:1.0", f"oci-archive:{oci_archive}:docker.io/x/y:3")
    api.load(oci_archive, store=other)
    assert api.image("x/y:3", store=other).digest == image.digest


def test_save_is_reproducible(image, store, tmp_path):
    a, b = tmp_path / "a.tar", tmp_path / "b.tar"
    api.save([TAG], a, format="oci-archive", store=store)
    api.save([TAG], b, format="oci-archive", store=store)
    assert a.read_bytes() == b.read_bytes()


def test_tampered_archive_is_rejected_and_nothing_is_tagged(image, store, tmp_path):
    archive = tmp_path / "img.oci.tar"
    api.save([TAG], archive, format="oci-archive", store=store)
    bad = tmp_path / "bad.tar"
    with tarfile.open(archive) as src, tarfile.open(bad, "w") as dst:
        for m in src.getmembers():
            data = src.extractfile(m).read() if m.isfile() else None
            if data is not None and m.name.endswith(image.layers[0].digest.hex):
                data = data[:-1] + bytes([data[-1] ^ 1])
            dst.addfile(m, __import__("io").BytesIO(data) if data is not None else None)
    other = Store(tmp_path / "other")
    with pytest.raises(NbcontainerError, match="does not match"):
        api.load(bad, store=other)
    assert other.list_images() == []
    assert not other.blobs.has(image.layers[0].digest)


def test_hostile_member_names_write_nothing_outside(tmp_path):
    import io

    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as tar:
        for name in ("../escape", "/abs/escape", "blobs/sha256/../../../escape2"):
            ti = tarfile.TarInfo(name)
            ti.size = 3
            tar.addfile(ti, io.BytesIO(b"bad"))
    before = set(Path(tmp_path).parent.iterdir())
    other = Store(tmp_path / "s")
    with pytest.raises(NbcontainerError, match="neither a docker-save archive"):
        api.load(evil, store=other)
    assert set(Path(tmp_path).parent.iterdir()) == before
    assert not (tmp_path / "escape").exists() and not Path("/abs/escape").exists()

"""Acceptance: whiteouts and opaque dirs in our layers flatten right in other tools.

One image deletes base files and a base dir, ``rm -rf``s and recreates a base dir, and renames
a dir (overlayfs has no redirect here, so: whiteout of the old name + a full copy). Exported
with ``api.save`` as an OCI layout and as a docker-archive, it is flattened by ``umoci unpack``
and by podman (``podman create`` + ``podman export``), and both trees must equal ours and
show the expected paths.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from nbcontainer import api
from tests.support.builds import flatten
from tests.support.marks import needs_root

pytestmark = needs_root

DOCKERFILE = """\
FROM busybox
RUN mkdir -p /d/sub /keep /src/inner && echo 1 > /d/sub/f && echo 2 > /d/g \\
    && echo k > /keep/k && echo f > /src/inner/f && ln -s inner/f /src/link
RUN rm /bin/ls /etc/group && rm -rf /keep
RUN rm -rf /d && mkdir /d && echo new > /d/only
RUN mv /src /dst && echo added > /dst/inner/g
"""
# What the tools add themselves: podman's container mount points and files.
TOOL_ADDED = {"run", "run/.containerenv", "etc/hosts", "etc/resolv.conf", "etc/hostname",
              "dev", "proc", "sys"}
# podman runs a short name through its registries.conf; a localhost name stays local.
TAG = "localhost/flat:1"


def tree(root: Path) -> dict[str, tuple]:
    """path → (type, mode, uid, gid, size, sha256, link target)."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            st = os.lstat(p)
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("l", 0, st.st_uid, st.st_gid, 0, "", os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("d", mode, st.st_uid, st.st_gid, 0, "", "")
            else:
                out[rel] = ("f", mode, st.st_uid, st.st_gid, st.st_size,
                            hashlib.sha256(p.read_bytes()).hexdigest(), "")
    return out


def without_tool_files(t: dict[str, tuple]) -> dict[str, tuple]:
    return {k: v for k, v in t.items() if k not in TOOL_ADDED}


@pytest.fixture
def image(do_build, ctx: Path):
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    return do_build(ctx / "Dockerfile", tags=[TAG])


def check_expected(t: dict[str, tuple]) -> None:
    assert "bin/ls" not in t and "etc/group" not in t  # deleted base files
    assert "bin/cat" in t and "etc/passwd" in t  # their siblings stay
    assert not any(p == "keep" or p.startswith("keep/") for p in t)  # deleted base dir
    assert sorted(p for p in t if p.startswith("d/")) == ["d/only"]  # opaque: only the new
    assert t["d/only"][4] == 4
    assert not any(p == "src" or p.startswith("src/") for p in t)  # renamed away
    assert {p for p in t if p.startswith("dst/")} == {"dst/inner", "dst/inner/f",
                                                       "dst/inner/g", "dst/link"}
    assert t["dst/link"][6] == "inner/f"
    assert not any(".wh." in p for p in t)  # markers consumed, never shown


def test_ours_flattens_as_expected(image, tmp_path: Path) -> None:
    check_expected(tree(flatten(image, tmp_path / "ours")))
    opaque = whiteouts = 0
    for layer in image.manifest.layers[1:]:
        with image.store.blobs.open(layer.digest) as f, tarfile.open(fileobj=f) as tar:
            names = tar.getnames()
        opaque += sum(n.endswith(".wh..wh..opq") for n in names)
        whiteouts += sum(".wh." in n and not n.endswith(".wh..wh..opq") for n in names)
    assert opaque >= 1 and whiteouts >= 4  # ls, group, keep, src (and the opaque d)


def test_umoci_unpack(image, tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    api.save([TAG], layout, format="oci-dir", store=image.store)
    index = json.loads((layout / "index.json").read_text())
    refs = [m.get("annotations", {}).get("org.opencontainers.image.ref.name")
            for m in index["manifests"]]
    ref = next(r for r in refs if r)
    bundle = tmp_path / "bundle"
    proc = subprocess.run(["umoci", "unpack", "--image", f"{layout}:{ref}", str(bundle)],
                          capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    theirs = tree(bundle / "rootfs")
    check_expected(theirs)
    assert without_tool_files(theirs) == without_tool_files(tree(flatten(image, tmp_path / "ours")))


def test_podman_export(image, tmp_path: Path) -> None:
    archive = tmp_path / "img.tar"
    api.save([TAG], archive, format="docker-archive", store=image.store)
    runroot = Path(f"/tmp/nbf{os.getpid()}")  # podman wants a short runroot path
    base = ["podman", "--root", str(tmp_path / "podroot"), "--runroot", str(runroot),
            "--storage-driver", "vfs", "--runtime", "runc"]
    try:
        proc = subprocess.run([*base, "load", "-i", str(archive)], capture_output=True,
                              timeout=300)
        assert proc.returncode == 0, proc.stderr.decode()[-2000:]
        proc = subprocess.run([*base, "create", "--network", "none", TAG, "true"],
                              capture_output=True, timeout=120)
        assert proc.returncode == 0, proc.stderr.decode()[-2000:]
        cid = proc.stdout.decode().split()[-1]
        exported = tmp_path / "export.tar"
        proc = subprocess.run([*base, "export", "-o", str(exported), cid],
                              capture_output=True, timeout=120)
        assert proc.returncode == 0, proc.stderr.decode()[-2000:]
        rootfs = tmp_path / "podman-rootfs"
        rootfs.mkdir()
        subprocess.run(["tar", "-xpf", str(exported), "--numeric-owner", "-C", str(rootfs)],
                       check=True)
        theirs = tree(rootfs)
        check_expected(theirs)
        assert without_tool_files(theirs) == without_tool_files(tree(flatten(image, tmp_path / "ours")))
    finally:
        subprocess.run([*base, "rm", "--all", "--force"], capture_output=True)
        subprocess.run([*base, "rmi", "--all", "--force"], capture_output=True)
        shutil.rmtree(runroot, ignore_errors=True)

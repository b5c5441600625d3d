"""The seed example on a real Debian base: debootstrap (cached on disk, once a day), a local
registry, apt inside the sandbox, then the image under ``nbcontainer run``, podman and skopeo.

Network-dependent (the Debian mirror); the only heavy test of the builder suite.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbcontainer import api
from nbcontainer.build.api import build, run
from nbcontainer.store import Store

from .conftest import needs_root

pytestmark = [needs_root, pytest.mark.skipif(
    not shutil.which("debootstrap") or not shutil.which("docker-registry"),
    reason="needs debootstrap and docker-registry")]

CACHE = Path("/var/cache/nbcontainer-test")
PODMAN = ["--runtime", "runc", "run", "--rm", "--ulimit", "nofile=1024:1024",
          "--ulimit", "nproc=4096:4096", "--network", "host"]


def debian_rootfs() -> Path:
    """debootstrap minbase bookworm, made at most once a day and reused by every run."""
    from nbcontainer.rootfs import make_debian_rootfs

    dest = CACHE / f"debian-bookworm-{datetime.date.today():%Y%m%d}"
    if (dest / ".complete").exists():
        return dest
    tmp = dest.with_name(dest.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        make_debian_rootfs(tmp)
    except subprocess.CalledProcessError:
        shutil.rmtree(tmp, ignore_errors=True)
        pytest.skip("debootstrap failed (no Debian mirror?)")
    (tmp / ".complete").touch()
    try:
        os.rename(tmp, dest)
    except OSError:  # another run finished first
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


@pytest.fixture(scope="module")
def debian_ref(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from registry.servers import Registry

    from nbcontainer import registry

    rootfs = debian_rootfs()
    reg = Registry("plain", tmp_path_factory.mktemp("debian-registry")).start()
    try:
        st = Store(tmp_path_factory.mktemp("debian-store"))
        ref = f"{reg.host}/debian:bookworm"
        api.import_image(rootfs, ref, store=st, changes=['CMD ["bash"]'])
        registry.push(st, ref)
        yield ref
    finally:
        reg.stop()


def test_seed_example(debian_ref: str, tmp_path: Path, capfd) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "my-app.py").write_text("import sys\nprint('hello from', sys.version_info[:2])\n")
    (ctx / "Dockerfile").write_text(
        f"FROM {debian_ref}\n"
        "RUN apt-get update && apt-get -y install python3 python3-pip && "
        "rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin\n"
        "COPY my-app.py /app/\nWORKDIR /app\nCMD [\"python3\",\"my-app.py\"]\n")
    st = Store(tmp_path / "store")
    img = build(ctx / "Dockerfile", ctx, tags=["my-python-image"], store=st)
    assert len(img.manifest.layers) == 3
    out: list[bytes] = []
    assert run("my-python-image", store=st, output=out.append) == 0
    assert b"".join(out).startswith(b"hello from (3, 11)")
    again = build(ctx / "Dockerfile", ctx, tags=["my-python-image"], store=st)
    assert again.digest == img.digest

    archive = tmp_path / "img.tar"
    api.save(["my-python-image"], archive, format="oci-archive", store=st)
    if shutil.which("skopeo"):
        cfg = json.loads(subprocess.run(["skopeo", "inspect", "--config",
                                         f"oci-archive:{archive}"], check=True,
                                        capture_output=True).stdout)
        assert cfg["config"] == img.config.config.to_dict()
        assert cfg["rootfs"]["diff_ids"] == [str(d) for d in img.config.diff_ids]
    if shutil.which("podman"):
        short = Path(f"/tmp/nbp{os.getpid()}")
        try:
            proc = subprocess.run(["podman", "--root", str(tmp_path / "podroot"), "--runroot",
                                   str(short), *PODMAN, f"oci-archive:{archive}"],
                                  capture_output=True, timeout=300)
            assert proc.returncode == 0, proc.stderr.decode()[-2000:]
            assert proc.stdout.startswith(b"hello from (3, 11)")
        finally:
            shutil.rmtree(short, ignore_errors=True)

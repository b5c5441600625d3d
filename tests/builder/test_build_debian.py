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
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbcontainer import api
from nbcontainer.api import build, run
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


def seed_context(ctx: Path, ref: str) -> Path:
    ctx.mkdir(parents=True, exist_ok=True)
    (ctx / "my-app.py").write_text("import sys\nprint('hello from', sys.version_info[:2])\n")
    (ctx / "Dockerfile").write_text(
        f"FROM {ref}\n"
        "RUN apt-get update && apt-get -y install python3 python3-pip && "
        "rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin\n"
        "COPY my-app.py /app/\nWORKDIR /app\nCMD [\"python3\",\"my-app.py\"]\n")
    return ctx


# The unprivileged variant runs as a separate process, started together with the root one so
# that the two apt-get runs (mostly network waits) overlap: CI pays for about one of them.
ROOTLESS_PATHS = ["usr/bin/python3.11", "var/cache/apt/archives/partial", "var/log/apt/eipp.log.xz"]


@pytest.fixture(scope="module")
def rootless_seed(debian_ref: str) -> Iterator[subprocess.Popen]:
    from sandbox.conftest import _ensure_subids, _ensure_user

    from .test_build_rootless import REPO, _user_deps, _user_python

    user = _ensure_user("nbtest")
    _ensure_subids("nbtest", "/etc/subuid")
    _ensure_subids("nbtest", "/etc/subgid")
    deps = _user_deps()
    python = _user_python(deps)
    # Not below pytest's temp root: every pytest session that starts (other test runs on
    # this machine) resets it to 0700, which would lock the test user out mid-build.
    base = Path(tempfile.mkdtemp(prefix="nbbuild-debian-rootless-"))
    os.chmod(base, 0o755)
    ctx = seed_context(base / "ctx", debian_ref)
    subprocess.run(["chown", "-R", f"{user.pw_uid}:{user.pw_gid}", str(base)], check=True)
    req = {"store": str(base / "store"), "context": str(ctx), "paths": ROOTLESS_PATHS}
    proc = subprocess.Popen(
        ["runuser", "-u", "nbtest", "--", "env", f"PYTHONPATH={REPO}:{deps}",
         f"HOME={base}", python, str(Path(__file__).with_name("rootless_debian.py"))],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd="/")
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(req).encode())
    proc.stdin.close()
    proc.stdin = None  # (so communicate() later does not touch it)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        subprocess.run(["runuser", "-u", "nbtest", "--", "rm", "-rf", str(base / "store")],
                       capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def test_seed_example(debian_ref: str, rootless_seed: subprocess.Popen, tmp_path: Path,
                      capfd) -> None:
    ctx = seed_context(tmp_path / "ctx", debian_ref)
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


def test_seed_example_rootless(rootless_seed: subprocess.Popen) -> None:
    """The same example as an unprivileged user: apt drops to ``_apt`` (uid 42) inside the
    user namespace, which works only with the full subordinate id range (newuidmap)."""
    out, err = rootless_seed.communicate(timeout=900)
    assert rootless_seed.returncode == 0, err.decode()[-3000:]
    answer = json.loads(out)
    assert answer["code"] == 0 and answer["output"].startswith("hello from (3, 11)")
    assert answer["layers"] == 3 and answer["same"]
    owners = answer["owners"]
    # Container ids in the layer, not the host's subordinate ids: root's files are 0:0 and
    # apt's download dir belongs to _apt (42:0 on Debian; 65534 would mean an unmapped id).
    assert owners["usr/bin/python3.11"] == [0, 0]
    assert owners["var/cache/apt/archives/partial"][0] == 42

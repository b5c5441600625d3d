"""The builder as an unprivileged user (user namespace with the subordinate id range)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest

from nbcontainer.layers import open_layer

from .conftest import needs_root

pytestmark = needs_root
REPO = Path(__file__).resolve().parents[2]


def _user_deps() -> Path:
    """The venv lives under /root (0700 here): give the test user a readable copy of the
    compiled dependencies (same CPython ABI as the system python3.11)."""
    import dockerfile
    import isal
    import urllib3
    import zstandard

    dest = Path("/var/cache/nbcontainer-test/pydeps")
    site = Path(zstandard.__file__).parents[1]
    for mod in (dockerfile, isal, urllib3, zstandard):
        src = Path(mod.__file__)
        names = [src.parent.name] if src.name == "__init__.py" else \
            [p.name for p in site.glob(src.name.split(".")[0] + "*")]
        for name in names:
            target = dest / name
            if not target.exists():
                dest.mkdir(parents=True, exist_ok=True)
                (shutil.copytree if (site / name).is_dir() else shutil.copy2)(site / name,
                                                                               target)
    subprocess.run(["chmod", "-R", "a+rX", str(dest.parent)], check=True)
    return dest


def _user_python(deps: Path) -> str:
    """A system Python 3.11 that the test user can run with ``deps`` on its path."""
    python = next((p for p in ("/usr/bin/python3.11", "/usr/bin/python3") if subprocess.run(
        ["runuser", "-u", "nbtest", "--", "env", f"PYTHONPATH={deps}", p, "-c",
         "import zstandard, isal, dockerfile"], capture_output=True).returncode == 0), None)
    if python is None:
        pytest.fail("no Python 3.11 the unprivileged user can run with the dependencies")
    return python


def test_rootless_build_run_and_ownership(busybox_rootfs: Path) -> None:
    if shutil.which("runuser") is None or shutil.which("newuidmap") is None:
        pytest.skip("needs runuser and uidmap")
    from sandbox.conftest import _ensure_subids, _ensure_user

    user = _ensure_user("nbtest")
    _ensure_subids("nbtest", "/etc/subuid")
    _ensure_subids("nbtest", "/etc/subgid")
    deps = _user_deps()
    python = _user_python(deps)
    base = Path(tempfile.mkdtemp(prefix="nbbuild-rootless-"))
    try:
        os.chmod(base, 0o755)
        ctx = base / "ctx"
        ctx.mkdir()
        (ctx / "my-app.sh").write_text("echo rootless app; id -u\n")
        for p in (base, ctx, ctx / "my-app.sh"):
            os.chown(p, user.pw_uid, user.pw_gid)
        df = ("FROM busybox\nRUN mkdir /data && touch /data/owned && chown 1000:2000 "
              "/data/owned && rm /bin/ls\nCOPY --chown=1000:2000 my-app.sh /app/\n"
              "WORKDIR /app\nUSER app\nRUN id -u > /tmp/uid\nCMD [\"sh\", \"my-app.sh\"]\n")
        from nbcontainer import api
        from nbcontainer.store import Store

        api.import_image(busybox_rootfs, "busybox:latest", store=Store(base / "store"))
        subprocess.run(["chown", "-R", f"{user.pw_uid}:{user.pw_gid}", str(base / "store")],
                       check=True)
        req = {"store": str(base / "store"), "rootfs": str(busybox_rootfs),
               "context": str(ctx), "dockerfile": df}
        proc = subprocess.run(["runuser", "-u", "nbtest", "--", "env", f"PYTHONPATH={REPO}:{deps}",
                               "HOME=" + str(base), python, str(Path(__file__).with_name(
                                   "rootless_build.py"))], input=json.dumps(req).encode(),
                              capture_output=True, timeout=300, cwd="/")
        assert proc.returncode == 0, proc.stderr.decode()[-3000:]
        answer = json.loads(proc.stdout)
        assert answer["same"] and answer["code"] == 0
        assert answer["output"] == "rootless app\n1000\n"
        owners = {}
        for digest in answer["layers"][1:]:
            with open_layer(Path(answer["blobs"]) / digest.split(":")[1]) as s, \
                    tarfile.open(fileobj=s, mode="r|") as tar:
                for m in tar:
                    owners[m.name] = (m.uid, m.gid)
        # container ids in the layers, not the host's subordinate ids
        assert owners["data/owned"] == (1000, 2000)
        assert owners["app/my-app.sh"] == (1000, 2000)
        assert owners["data"] == (0, 0) and "bin/.wh.ls" in owners
        assert owners["tmp/uid"] == (1000, 1000)
    finally:
        subprocess.run(["runuser", "-u", "nbtest", "--", "rm", "-rf", str(base)],
                       capture_output=True)
        shutil.rmtree(base, ignore_errors=True)

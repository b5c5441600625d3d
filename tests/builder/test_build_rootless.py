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
from tests.support.marks import needs_root
from tests.support.users import ensure_rootless_user, module_argv, user_deps, user_python

pytestmark = needs_root


def test_rootless_build_run_and_ownership(busybox_rootfs: Path) -> None:
    if shutil.which("runuser") is None or shutil.which("newuidmap") is None:
        pytest.skip("needs runuser and uidmap")
    user = ensure_rootless_user()
    deps = user_deps()
    python = user_python(deps)
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
        argv = module_argv(python, "tests.builder.rootless_build", paths=(deps,),
                           env=(f"HOME={base}",))
        proc = subprocess.run(argv, input=json.dumps(req).encode(), capture_output=True,
                              timeout=300, cwd="/")
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

"""The buildah differential harness (the second peer, after docker): the same Dockerfile and
context built by buildah 1.28 (``bud --isolation chroot --layers --network host``, vfs
storage) and by nbcontainer, compared with ``tests.support.differential``.

IGNORES is the one place that lists every difference we accept from buildah, each with its
reason (see ../shared/notes/dockerfile.md, "buildah 1.28 … where it differs from BuildKit").
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from nbcontainer.store import Store
from tests.support.differential import Ignore, flatten

BASE = "localhost/busybox:latest"
PEER = "buildah 1.28"

IGNORES: tuple[Ignore, ...] = (
    Ignore("mount-point stubs",
           "buildah leaves empty mount-point files/dirs in the first RUN layer of a stage, or "
           "when the image lacks them; BuildKit and nbcontainer keep mount points out of layers",
           paths=frozenset({"etc/hostname", "etc/hosts", "etc/resolv.conf", "dev", "proc",
                            "sys", "run"})),
    Ignore("io.buildah.version label", "buildah stamps its version on every image",
           labels=frozenset({"io.buildah.version"})),
    Ignore("ArgsEscaped",
           "BuildKit sets ArgsEscaped with every CMD (a Windows-compatibility marker; docker "
           "20.10's BuildKit does too, and so do we); buildah never does",
           config_keys=frozenset({"ArgsEscaped"})),
    Ignore("OCI config drops Healthcheck/OnBuild/Shell",
           "buildah's OCI image format has no place for them (its Docker format keeps them); "
           "BuildKit keeps them, and so do we",
           config_keys=frozenset({"Healthcheck", "OnBuild", "Shell"})),
    Ignore("xattrs of context files",
           "buildah's COPY keeps the extended attributes of context files (user.*, "
           "security.capability); BuildKit drops them, docker 20.10 and current releases "
           "alike, and so do we",
           upstream="moby/buildkit#2250 (open)", paths=frozenset({"usr/local/bin/tool",
                                                                   "notes"}),
           cases=frozenset({"copy-xattrs"}), only="xattrs"),
    # Not an entry but noted: buildah's RUN does not set the user's supplementary groups from
    # /etc/group (Docker and BuildKit do), so the cases avoid printing `id -G`.
)


@dataclass
class Env:
    work: Path
    bb_archive: Path
    buildah_root: Path
    buildah_runroot: Path
    store: Store

    def buildah(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return subprocess.run(["buildah", "--root", str(self.buildah_root), "--runroot",
                               str(self.buildah_runroot), "--storage-driver", "vfs", *args],
                              capture_output=True, **kw)


def buildah_result(env: Env, ctx: Path, name: str,
                   flags: tuple[str, ...] = ()) -> tuple[dict[str, tuple], dict]:
    tag = f"localhost/diff-{name}:latest"
    proc = env.buildah("bud", "--isolation", "chroot", "--layers", "--network", "host",
                       "--pull=never", *flags, "-t", tag, str(ctx), timeout=300)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    layout = env.work / f"oci-{name}"
    shutil.rmtree(layout, ignore_errors=True)
    proc = env.buildah("push", tag, f"oci:{layout}")
    assert proc.returncode == 0, proc.stderr.decode()
    index = json.loads((layout / "index.json").read_text())
    blob = lambda d: layout / "blobs" / "sha256" / d.split(":")[1]  # noqa: E731
    manifest = json.loads(blob(index["manifests"][0]["digest"]).read_text())
    config = json.loads(blob(manifest["config"]["digest"]).read_text())
    layers = [blob(layer["digest"]) for layer in manifest["layers"]]
    return flatten(layers, env.work / f"flat-buildah-{name}"), config

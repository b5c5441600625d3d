"""``run_container``: an image's entrypoint/cmd, env, user and workdir in the sandbox."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbcontainer.errors import BuildError
from nbcontainer.sandbox import Sandbox, run_container
from nbcontainer.sandbox.container import container_argv
from tests.support.marks import needs_root

CONFIG = {"config": {"Entrypoint": ["/bin/sh", "-c"], "Cmd": ['echo "$GREETING from $(pwd) as $(id -u)"'],
                     "Env": ["PATH=/bin:/usr/bin", "GREETING=hello"], "WorkingDir": "/app",
                     "User": "app"}}


def test_argv_rules() -> None:
    cfg = {"Entrypoint": ["ep"], "Cmd": ["default"]}
    assert container_argv(cfg) == ["ep", "default"]
    assert container_argv(cfg, ["given"]) == ["ep", "given"]
    assert container_argv(cfg, None, entrypoint=["other"]) == ["other"]  # CMD is dropped
    assert container_argv({"Cmd": ["only"]}) == ["only"]
    with pytest.raises(BuildError, match="no command"):
        container_argv({})


@needs_root
def test_run_image(rootfs: Path, tmp_path: Path) -> None:
    chunks: list[bytes] = []
    result = run_container([rootfs], CONFIG, output=chunks.append)
    assert result.exit_code == 0
    assert b"".join(chunks) == b"hello from /app as 1000\n"


@needs_root
def test_run_overrides(rootfs: Path) -> None:
    with Sandbox() as box:
        result = run_container([rootfs], CONFIG, ["ls /sys/class/net; exit 4"], network="none",
                               env={"GREETING": "hi"}, user="0", sandbox=box, output=None)
    assert (result.exit_code, result.output_tail) == (4, b"lo\n")

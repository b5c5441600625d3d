"""The private Docker engine itself: it leaves nothing behind when stopped, and its probes run
under the two ``docker run`` profiles the security and isolation tests compare with
(``default``: moby's seccomp profile and default capabilities, no AppArmor here; ``pod``:
``--user 1000 --security-opt no-new-privileges``, the stand-in for a Kubernetes pod with
RuntimeDefault under the "restricted" standard)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from nbcontainer import api
from nbcontainer.store import Store
from tests.support.docker import Dockerd
from tests.support.rootfs import make_busybox_rootfs


def _status(text: str) -> dict[str, str]:
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def test_the_docker_command_talks_to_the_private_daemon(dockerd: Dockerd) -> None:
    out = subprocess.run([dockerd.command, "info", "--format",
                          "{{.DockerRootDir}} {{.SecurityOptions}}"],
                         capture_output=True, text=True, check=True).stdout
    assert out.startswith(f"{dockerd.home / 'root'} ") and "name=seccomp" in out


def test_probe_under_the_default_profile(dockerd: Dockerd, docker_busybox: str) -> None:
    proc = dockerd.probe(docker_busybox, ["sh", "-c", "id -u; cat /proc/self/status"])
    assert proc.returncode == 0, proc.stderr
    uid, _, status = proc.stdout.decode().partition("\n")
    st = _status(status)
    assert uid == "0"
    assert st["Seccomp"] == "2" and st["NoNewPrivs"] == "0"  # filtered, may gain privileges
    # moby's profile refuses new user namespaces to a process without CAP_SYS_ADMIN
    denied = dockerd.probe(docker_busybox, ["unshare", "-U", "-r", "true"])
    assert denied.returncode != 0 and b"Operation not permitted" in denied.stderr


def test_probe_as_a_restricted_pod(dockerd: Dockerd, docker_busybox: str) -> None:
    proc = dockerd.probe(docker_busybox, ["sh", "-c", "id -u; cat /proc/self/status"], "pod")
    assert proc.returncode == 0, proc.stderr
    uid, _, status = proc.stdout.decode().partition("\n")
    st = _status(status)
    assert uid == "1000"
    assert st["Seccomp"] == "2" and st["NoNewPrivs"] == "1"
    assert int(st["CapEff"], 16) == 0  # a non-root user keeps no effective capability


def test_a_stopped_daemon_leaves_nothing_behind(tmp_path: Path) -> None:
    """A second private daemon, used (load, build with a RUN, run) and stopped: no process,
    mount, socket, system file or network setting of it remains."""
    daemon = Dockerd(tmp_path / "d").start()
    try:
        store = Store(tmp_path / "store")
        api.import_image(make_busybox_rootfs(tmp_path / "rootfs"), "demo/bb:1", store=store)
        api.save(["demo/bb:1"], tmp_path / "bb.tar", format="docker-archive", store=store)
        daemon.load(tmp_path / "bb.tar")
        ctx = tmp_path / "ctx"
        ctx.mkdir()
        (ctx / "Dockerfile").write_text("FROM demo/bb:1\nRUN echo x > /x\n")
        daemon.build(ctx, "demo/built:1")
        assert daemon.probe("demo/built:1", ["cat", "/x"]).stdout == b"x\n"
        assert daemon.processes() and daemon.mounts() and daemon.sockets()  # it was running
    finally:
        daemon.stop()
    assert daemon.leftovers() == []
    assert daemon.proc is not None and daemon.proc.returncode is not None

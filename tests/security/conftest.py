"""Fixtures of the security tests: the probe (a static program built here), the host's bait,
and the probe's verdicts as a RUN step (root build, rootless build) and under the
references (``podman run --runtime runc``, ``docker run`` with Docker's default profile)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbcontainer import api
from nbcontainer.store import Store
from tests.support.bait import Bait, Verdicts, parse
from tests.support.docker import Dockerd
from tests.support.pods import PODMAN
from tests.support.rootfs import make_busybox_rootfs
from tests.support.scratch import fixture_dir
from tests.support.users import REPO, ensure_rootless_user, module_argv, user_deps, user_python

PROBE_C = Path(__file__).with_name("probe.c")


@pytest.fixture(scope="session")
def probe_bin(request: pytest.FixtureRequest) -> Path:
    out = fixture_dir(request, "probe") / "probe"
    subprocess.run(["gcc", "-static", "-O1", "-o", str(out), str(PROBE_C)], check=True,
                   capture_output=True)
    return out


@pytest.fixture
def store(tmp_path: Path, probe_rootfs: Path) -> Store:
    """A fresh store holding ``busybox:latest`` (with the probe in it)."""
    st = Store(tmp_path / "store")
    api.import_image(probe_rootfs, "busybox:latest", store=st)
    return st


@pytest.fixture(scope="session")
def bait() -> Iterator[Bait]:
    b = Bait().start()
    yield b
    b.stop()


@pytest.fixture(scope="session")
def probe_rootfs(request: pytest.FixtureRequest, probe_bin: Path) -> Path:
    root = make_busybox_rootfs(fixture_dir(request, "probe-rootfs") / "rootfs")
    shutil.copy2(probe_bin, root / "probe")
    return root


def _probe_build(base: Path, probe_rootfs: Path, probe_bin: Path, bait: Bait,
                 allow: tuple[str, ...] = ()) -> tuple[Path, dict]:
    """A store with busybox, a context with the probe, and the driver's request."""
    os.chmod(base, 0o755)
    ctx = base / "ctx"
    ctx.mkdir()
    shutil.copy2(probe_bin, ctx / "probe")
    api.import_image(probe_rootfs, "busybox:latest", store=Store(base / "store"))
    df = ("FROM busybox\nCOPY probe /probe\n"
          f"RUN /probe {' '.join(bait.args)} > /result 2>&1\n")
    return ctx, {"store": str(base / "store"), "context": str(ctx), "dockerfile": df,
                 "dest": str(base / "out"), "allow": list(allow)}


def _answer(proc: subprocess.CompletedProcess[bytes]) -> dict:
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    answer = json.loads(proc.stdout)
    assert "error" not in answer, answer["error"]
    return answer


@pytest.fixture(scope="session")
def root_run(probe_rootfs: Path, probe_bin: Path, bait: Bait) -> dict:
    """The probe as a RUN of a root build whose caller holds CAP_SYS_ADMIN inheritable."""
    base = Path(tempfile.mkdtemp(prefix="nbsecurity-root-"))
    try:
        _, req = _probe_build(base, probe_rootfs, probe_bin, bait)
        argv = ["capsh", "--inh=cap_sys_admin", "--", "-c", 'exec "$0" "$@"',
                sys.executable, "-m", "tests.security.build_driver"]
        proc = subprocess.run(argv, input=json.dumps(req).encode(), capture_output=True,
                              timeout=300, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
        return _answer(proc)
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def root_verdicts(root_run: dict) -> Verdicts:
    return parse(root_run["output"])


@pytest.fixture(scope="session")
def ptrace_verdicts(probe_rootfs: Path, probe_bin: Path, bait: Bait) -> Verdicts:
    """The probe as a RUN on the ptrace rung (no namespaces: proot), as root."""
    base = Path(tempfile.mkdtemp(prefix="nbsecurity-ptrace-"))
    try:
        ctx, req = _probe_build(base, probe_rootfs, probe_bin, bait)
        api.build(req["dockerfile"], ctx, store=Store(req["store"]), no_cache=True,
                  output=f"type=local,dest={req['dest']}", isolation="ptrace")
        return parse((Path(req["dest"]) / "result").read_text())
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def rootless_verdicts(probe_rootfs: Path, probe_bin: Path, bait: Bait) -> Verdicts:
    """The probe as a RUN of a rootless build (the test user, its subordinate range)."""
    user = ensure_rootless_user()
    deps = user_deps()
    python = user_python(deps)
    base = Path(tempfile.mkdtemp(prefix="nbsecurity-rootless-"))
    try:
        _, req = _probe_build(base, probe_rootfs, probe_bin, bait)
        req["session_key"] = bait.session_key
        subprocess.run(["chown", "-R", f"{user.pw_uid}:{user.pw_gid}", str(base)], check=True)
        argv = module_argv(python, "tests.security.build_driver", paths=(deps,),
                           env=(f"HOME={base}",))
        proc = subprocess.run(argv, input=json.dumps(req).encode(), capture_output=True,
                              timeout=300, cwd="/")
        return parse(_answer(proc)["output"])
    finally:
        subprocess.run(["runuser", "-u", user.pw_name, "--", "rm", "-rf", str(base)],
                       capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def podman_verdicts(probe_rootfs: Path, bait: Bait, request: pytest.FixtureRequest
                    ) -> Verdicts:
    """The reference: ``podman run --runtime runc`` with its default seccomp profile and
    capabilities over a copy of the probe's rootfs. Its network is slirp4netns (rootless
    podman's default, host loopback disallowed): the rootful bridge would change the host's
    network settings (ip_forward, a bridge device), which the test machines must keep."""
    root = fixture_dir(request, "podman") / "rootfs"
    shutil.copytree(probe_rootfs, root, symlinks=True)
    # (the ulimits: runc cannot raise them above this VM's hard limits)
    proc = subprocess.run([*PODMAN, "run", "--rm", "--runtime", "runc", "--network",
                           "slirp4netns", "--ulimit", "nofile=1024:1024", "--ulimit",
                           "nproc=4096:4096", "--rootfs", str(root), "/probe", *bait.args],
                          capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    return parse(proc.stdout.decode())


@pytest.fixture(scope="session")
def docker_verdicts(dockerd: Dockerd, docker_busybox: str, probe_bin: Path,
                    bait: Bait) -> Verdicts:
    """The second reference: ``docker run`` with Docker's default profile (no network: the
    private dockerd has none, so the network rows are not compared)."""
    proc = dockerd.probe(docker_busybox, ["/probe", *bait.args], "default", "-v",
                         f"{probe_bin}:/probe:ro")
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    return parse(proc.stdout.decode())

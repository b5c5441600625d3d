"""Acceptance of kernels from images (issue: the notebook runs inside the environment it just
built): a notebook executed by nbclient on a kernel installed from an image, interrupt,
restart, shutdown and leftovers, as root and as an unprivileged user; pinning; the network
rule; an image without ipykernel."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbcontainer import api
from nbcontainer.errors import KernelError, MountSpecError
from nbcontainer.kernel.spec import _world_executable
from tests.kernel.session import exercise, interrupt_restart_shutdown, leftovers, run_code
from tests.support.kernels import KernelImages
from tests.support.marks import needs_root
from tests.support.users import REPO, USER, ensure_rootless_user, user_repo, user_site

pytestmark = [needs_root, pytest.mark.slow]


def _check_session(found: dict, workdir: Path) -> None:
    executable, prefix = found["cells"][0].split()
    assert (executable, prefix) == ("/opt/venv/bin/python3", "/opt/venv")  # the image's
    assert found["cells"][1].strip() == "42"  # the extra package
    assert found["written"] == "hello from the image"  # the working directory is the host's
    assert found["cells"][3].strip() == "image"  # outside the mounts: the image's files
    assert found["interrupt_reply"] == "KeyboardInterrupt"  # the sleep(60) was cut short
    assert found["after_restart"] == "ok"
    assert found["leftovers"] == []


def test_notebook_runs_in_the_image_as_root(kernel_images: KernelImages, jupyter_dirs: Path,
                                            tmp_path: Path) -> None:
    token = uuid.uuid4().hex
    kernel = api.install_kernel("pykernel:1", name="pyk", store=kernel_images.store,
                                env={"NBC_KERNEL_TEST": token})
    spec = json.loads((kernel.path / "kernel.json").read_text())
    assert _world_executable(spec["argv"][0])  # whoever runs Jupyter can start it
    assert spec["metadata"]["nbcontainer"]["digest"] == str(api.image(
        "pykernel:1", store=kernel_images.store).digest)
    workdir = tmp_path / "notebooks"
    workdir.mkdir()
    _check_session(exercise("pyk", workdir, token), workdir)
    assert [k.name for k in api.kernels()] == ["pyk"]
    assert api.remove_kernel("pyk").name == "pyk"
    assert api.kernels() == []


def test_notebook_runs_in_the_image_as_an_ordinary_user(kernel_images: KernelImages,
                                                         tmp_path: Path) -> None:
    user = ensure_rootless_user()
    base = Path(tempfile.mkdtemp(prefix="nbkernel-user-"))  # pytest's dirs are root's only
    os.chmod(base, 0o755)
    archive = base / "pykernel.tar"
    api.save(["pykernel:1"], archive, store=kernel_images.store)
    workdir = base / "notebooks"
    workdir.mkdir()
    for p in (base, archive, workdir):
        os.chown(p, user.pw_uid, user.pw_gid)
    token = uuid.uuid4().hex
    site = user_site()  # the venv's packages, as the user can read them
    env = [f"HOME={base}", f"NBCONTAINER_HOME={base}/store", f"JUPYTER_DATA_DIR={base}/jd",
           f"JUPYTER_RUNTIME_DIR={base}/jr", f"JUPYTER_PATH={base}/jd", f"TMPDIR={base}",
           f"PYTHONPATH={user_repo()}:{site}"]
    python = "/usr/bin/python3.11"
    try:
        proc = subprocess.run(
            ["runuser", "-u", USER, "--", "env", *env, python, "-m", "tests.kernel.session",
             str(archive), "pykernel:1", "pyk", str(workdir), token],
            cwd="/", capture_output=True, text=True, timeout=500)
        assert proc.returncode == 0, proc.stderr[-3000:]
        found = json.loads(proc.stdout.strip().splitlines()[-1])
        assert found["argv"][0] == python
        _check_session(found, workdir)
        assert (workdir / "written-by-kernel.txt").stat().st_uid == user.pw_uid
    finally:
        subprocess.run(["runuser", "-u", USER, "--", "rm", "-rf", str(base)], check=False)
        shutil.rmtree(base, ignore_errors=True)


def test_a_rebuilt_tag_does_not_change_the_kernel(kernel_images: KernelImages,
                                                  jupyter_dirs: Path, tmp_path: Path) -> None:
    st = kernel_images.store
    kernel_images.build("pinned:1")
    api.install_kernel("pinned:1", name="pinned", store=st)
    kernel_images.build("pinned:1", "RUN echo rebuilt > /marker\n")
    assert run_code("pinned", "print(open('/marker').read())", tmp_path).strip() == "image"
    again = api.install_kernel("pinned:1", name="pinned", store=st)  # updates it
    assert again.record.digest == str(api.image("pinned:1", store=st).digest)
    assert run_code("pinned", "print(open('/marker').read())", tmp_path).strip() == "rebuilt"


@pytest.fixture
def host_server() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"reached the host")

        def log_message(self, *a: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_the_host_loopback_only_with_allow_network_host(kernel_images: KernelImages,
                                                        jupyter_dirs: Path, tmp_path: Path,
                                                        host_server: str) -> None:
    code = ("import urllib.request\ntry:\n"
            f"    print(urllib.request.urlopen({host_server!r}, timeout=5).read().decode())\n"
            "except OSError as e:\n    print('unreachable')\n")
    api.install_kernel("pykernel:1", name="closed", store=kernel_images.store)
    api.install_kernel("pykernel:1", name="open", store=kernel_images.store,
                       allow=["network.host"])
    assert run_code("closed", code, tmp_path).strip() == "unreachable"
    assert run_code("open", code, tmp_path).strip() == "reached the host"


def test_an_image_without_ipykernel_fails_at_start_saying_what_to_add(
        kernel_images: KernelImages, jupyter_dirs: Path, tmp_path: Path) -> None:
    from jupyter_client.connect import write_connection_file

    kernel_images.build("noipykernel:1", ipykernel=False)
    kernel = api.install_kernel("noipykernel:1", store=kernel_images.store)
    conn, _ = write_connection_file(str(tmp_path / "conn.json"))
    spec = json.loads((kernel.path / "kernel.json").read_text())
    argv = [a.replace("{connection_file}", conn) for a in spec["argv"]]
    proc = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **spec["env"]})
    assert proc.returncode != 0
    assert "has no ipykernel" in proc.stderr
    assert "RUN python3 -m pip install ipykernel" in proc.stderr
    assert list((tmp_path / "tmp").iterdir()) == []


def test_install_checks_its_input(kernel_images: KernelImages, jupyter_dirs: Path) -> None:
    st = kernel_images.store
    with pytest.raises(MountSpecError, match="does not exist"):
        api.install_kernel("pykernel:1", volumes=["/no/such/dir:/data"], store=st)
    with pytest.raises(KernelError, match="unknown entitlement"):
        api.install_kernel("pykernel:1", allow=["security.insecure"], store=st)
    with pytest.raises(KernelError, match="no nbcontainer kernel"):
        api.remove_kernel("nothing-here")
    assert shutil.which("runuser")


def _gone(token: str) -> list[str]:
    """Leftovers once the stop has had its time (polled: nothing about time is asserted)."""
    for _ in range(150):
        if not (left := leftovers(token)):
            return []
        time.sleep(0.2)
    return left


def test_a_killed_server_leaves_nothing_and_the_log_has_the_kernel_stderr(
        kernel_images: KernelImages, jupyter_dirs: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    token = uuid.uuid4().hex
    api.install_kernel("pykernel:1", name="pyk", store=kernel_images.store)
    monkeypatch.setenv("NBC_KERNEL_TEST", token)
    log = tmp_path / "server.log"
    with open(log, "wb") as err:
        server = subprocess.Popen([sys.executable, "-m", "tests.kernel.session", "serve", "pyk",
                                   str(tmp_path)], stdout=subprocess.PIPE, stderr=err,
                                  cwd=REPO)
        assert server.stdout is not None
        line = server.stdout.readline().decode()
        assert line.startswith("ready"), log.read_text()[-2000:]
        assert leftovers(token)  # the launcher, the sandbox and the kernel are running
        server.kill()  # SIGKILL: the server cannot stop its kernels
        server.wait()
    assert _gone(token) == []
    assert "to the server log" in log.read_text()


def test_a_killed_launcher_leaves_nothing(kernel_images: KernelImages, jupyter_dirs: Path,
                                          tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from jupyter_client.manager import KernelManager

    token = uuid.uuid4().hex
    api.install_kernel("pykernel:1", name="pyk", store=kernel_images.store)
    monkeypatch.setenv("NBC_KERNEL_TEST", token)
    km = KernelManager(kernel_name="pyk")
    km.start_kernel(cwd=str(tmp_path))
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=120)
        os.kill(km.provisioner.process.pid, signal.SIGKILL)  # type: ignore[union-attr]
        assert _gone(token) == []
    finally:
        kc.stop_channels()
        km.cleanup_resources()


def test_freeze_image_in_a_kernel_from_an_image_reproduces_it(
        kernel_images: KernelImages, jupyter_dirs: Path, tmp_path: Path) -> None:
    """``%freeze_image`` in the image's kernel (nbcontainer's source mounted for the magics)
    starts from the image by digest; the frozen image has exactly the kernel's packages."""
    st = kernel_images.store
    api.install_kernel("pykernel:1", name="pyk", store=st,
                       volumes=[f"{REPO / 'nbcontainer'}:/opt/nbc/nbcontainer:ro"],
                       env={"PYTHONPATH": "/opt/nbc"})
    code = ("ip = get_ipython(); ip.run_line_magic('load_ext', 'nbcontainer')\n"
            "print(ip.run_line_magic('freeze_image', '--no-build').dockerfile)")
    dockerfile = run_code("pyk", code, tmp_path)
    digest = api.image("pykernel:1", store=st).digest
    assert f"FROM pykernel@{digest}\n" in dockerfile
    assert "apt-get" not in dockerfile  # the image has its Python
    frozen = api.build(tmp_path / "freeze" / "Dockerfile", tmp_path / "freeze",
                       tags=["frozen:1"], store=st)

    def packages(image: str) -> bytes:
        out: list[bytes] = []
        assert api.run(image, ["pip", "list", "--format=freeze"], store=st, network="none",
                       output=out.append) == 0
        return b"".join(out)

    assert packages(str(frozen.digest)) == packages("pykernel:1")
    assert b"tinypkg==0.1" in packages("pykernel:1")


@pytest.mark.parametrize("rung", ["reduced", "ptrace"])
def test_kernels_start_on_the_lower_rungs(kernel_images: KernelImages, jupyter_dirs: Path,
                                          tmp_path: Path, rung: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Every rung that runs a process runs a kernel; the ptrace rung has no network of its
    own, so there the kernel must be allowed the host's (and says so when it is not)."""
    token = uuid.uuid4().hex
    monkeypatch.setenv("NBC_KERNEL_TEST", token)
    allow = ["network.host"] if rung == "ptrace" else []
    api.install_kernel("pykernel:1", name=f"k-{rung}", store=kernel_images.store,
                       isolation=rung, allow=allow)
    found = interrupt_restart_shutdown(f"k-{rung}", tmp_path)
    assert found["interrupt_reply"] == "KeyboardInterrupt"
    assert found["after_restart"] == "ok"
    assert _gone(token) == []
    if rung == "ptrace":
        from jupyter_client.connect import write_connection_file

        kernel = api.install_kernel("pykernel:1", name="k-closed", store=kernel_images.store,
                                    isolation=rung)
        conn, _ = write_connection_file(str(tmp_path / "conn.json"))
        spec = json.loads((kernel.path / "kernel.json").read_text())
        proc = subprocess.run([a.replace("{connection_file}", conn) for a in spec["argv"]],
                              cwd=tmp_path, capture_output=True, text=True, timeout=120,
                              env={**os.environ, **spec["env"]})
        assert proc.returncode == 1
        assert "install it with --allow network.host" in proc.stderr

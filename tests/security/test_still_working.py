"""What must keep working under the hardening, on a real Debian base: apt over the private
network, pip from the package index, git over HTTPS.

Outgoing TLS on these machines is re-signed by a CA that the host trusts and images do not:
pip gets the host's bundle explicitly (``--cert``, bound from the context). No public git
host resolves here, so ``git clone`` goes to a local HTTPS server on 127.0.0.1 with a
certificate of its own, which takes ``RUN --network=host`` and ``--allow network.host``.
"""

from __future__ import annotations

import http.server
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from nbcontainer import api
from nbcontainer.store import Store
from tests.support.marks import needs_root
from tests.support.rootfs import debian_rootfs
from tests.support.scratch import fixture_dir

pytestmark = needs_root
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")


@pytest.fixture(scope="module")
def tools(request: pytest.FixtureRequest) -> Store:
    """A store whose ``tools`` image got python3-pip and git by apt-get in a RUN."""
    st = Store(fixture_dir(request, "still-working") / "store")
    api.import_image(debian_rootfs(), "debian:bookworm", store=st)
    ctx = fixture_dir(request, "tools-ctx")
    api.build("FROM debian:bookworm\nRUN apt-get update && apt-get install -y "
              "--no-install-recommends python3-pip git && rm -rf /var/lib/apt/lists/*\n",
              ctx, tags=["tools"], store=st)
    return st


def _out(st: Store, ctx: Path, dockerfile: str, **kw: object) -> str:
    dest = ctx.parent / "dest"
    shutil.rmtree(dest, ignore_errors=True)
    api.build(dockerfile, ctx, store=st, no_cache=True, output=f"type=local,dest={dest}",
              **kw)  # type: ignore[arg-type]
    return (dest / "out").read_text()


def test_pip_install_from_the_package_index(tools: Store, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    shutil.copy(HOST_CA, ctx / "ca.pem")
    out = _out(tools, ctx, "FROM tools\nRUN --mount=type=bind,source=ca.pem,target=/ca.pem "
               "pip install -q --break-system-packages --no-cache-dir --cert /ca.pem six && "
               "python3 -c 'import six; print(six.__name__)' > /out\n")
    assert out == "six\n"


@pytest.fixture
def git_server(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A bare repository over HTTPS (git's dumb protocol) on 127.0.0.1; its certificate."""
    work, bare, tls = tmp_path / "work", tmp_path / "srv" / "repo.git", tmp_path / "tls"
    tls.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    (work / "README").write_text("cloned over https\n")
    subprocess.run([*git, "-C", str(work), "add", "README"], check=True)
    subprocess.run([*git, "-C", str(work), "commit", "-qm", "one"], check=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    subprocess.run(["git", "-C", str(bare), "update-server-info"], check=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(tls / "key.pem"), "-out", str(tls / "cert.pem")],
                   check=True, capture_output=True)
    handler = partial(_Quiet, directory=str(bare.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls / "cert.pem", tls / "key.pem")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], tls / "cert.pem"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def test_git_clone_over_https(tools: Store, tmp_path: Path,
                              git_server: tuple[int, Path]) -> None:
    port, cert = git_server
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    shutil.copy(cert, ctx / "cert.pem")
    out = _out(tools, ctx, "FROM tools\nRUN --network=host --mount=type=bind,source=cert.pem,"
               f"target=/cert.pem GIT_SSL_CAINFO=/cert.pem git clone -q "
               f"https://127.0.0.1:{port}/repo.git /src && cat /src/README > /out\n",
               allow=["network.host"])
    assert out == "cloned over https\n"

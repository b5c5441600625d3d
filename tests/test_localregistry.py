"""``nbcontainer.localregistry``: the real ``docker-registry`` on 127.0.0.1, plain and TLS +
htpasswd, an ``auth:`` section passed through, and clear errors when it cannot start."""

from __future__ import annotations

import base64
import json
import socket
import ssl
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from nbcontainer import registry
from nbcontainer.localregistry import LocalRegistry, LocalRegistryError
from nbcontainer.registry import Credential, RegistrySettings
from nbcontainer.store import Store
from tests.support.images import store_image

PASSWORD = "a-Pa55word-for-the-local-registry"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Pushes and pulls read no real credentials or registry settings."""
    for var in ("REGISTRY_AUTH_FILE", "NBCONTAINER_REGISTRY_MIRRORS", "NBCONTAINER_CERTS_DIR",
                "NBCONTAINER_INSECURE_REGISTRIES"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    monkeypatch.setenv("NBCONTAINER_REGISTRIES_CONF", str(tmp_path / "registries.json"))


def _get(url: str, *, ctx: ssl.SSLContext | None = None, auth: str | None = None) -> int:
    req = urllib.request.Request(url)
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=5, context=ctx) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def _refused(host: str) -> bool:
    addr, port = host.split(":")
    with socket.socket() as s:
        return s.connect_ex((addr, int(port))) != 0


def test_plain_registry_serves_pushes_and_stops(tmp_path: Path, store: Store) -> None:
    with LocalRegistry(tmp_path / "reg") as reg:
        assert reg.running and reg.host.startswith("127.0.0.1:")
        assert reg.url == f"http://{reg.host}" and reg.ca_cert is None and reg.certs_root is None
        assert _get(reg.url + "/v2/") == 200
        ref = f"{reg.host}/class/hello:1"
        store_image(store, ref, [{"hello.txt": b"hi"}])
        registry.push(store, ref)
        with urllib.request.urlopen(reg.url + "/v2/_catalog", timeout=5) as r:
            assert json.load(r)["repositories"] == ["class/hello"]
        host = reg.host
    assert not reg.running and _refused(host)
    assert (tmp_path / "reg" / "storage").is_dir()  # what was pushed stays on disk


def test_tls_registry_with_a_password(tmp_path: Path, store: Store) -> None:
    reg = LocalRegistry(tmp_path / "reg", tls=True, user="student", password=PASSWORD).start()
    try:
        assert reg.url == f"https://{reg.host}"
        assert reg.certs_root is not None and reg.ca_cert is not None
        assert (reg.certs_root / reg.host / "ca.crt").read_bytes() == reg.ca_cert.read_bytes()
        ctx = ssl.create_default_context(cafile=str(reg.ca_cert))
        assert _get(reg.url + "/v2/", ctx=ctx) == 401
        assert _get(reg.url + "/v2/", ctx=ctx, auth=f"student:{PASSWORD}") == 200
        assert _get(reg.url + "/v2/", ctx=ctx, auth="student:wrong") == 401
        assert PASSWORD not in (reg.dir / "htpasswd").read_text()  # bcrypt, not the password
        assert PASSWORD not in repr(reg)
        ref = f"{reg.host}/class/secret:1"
        store_image(store, ref, [{"a": b"a"}])
        settings = RegistrySettings(certs_dirs=(reg.certs_root,))
        cred = Credential("student", PASSWORD)
        digest = registry.push(store, ref, settings=settings, credential=cred)
        other = Store(tmp_path / "other")
        assert registry.pull(other, ref, settings=settings, credential=cred) == digest
    finally:
        reg.stop()
    assert not reg.running


def test_an_auth_section_is_passed_through(tmp_path: Path) -> None:
    """The hook the test suite's token set-up uses: distribution's own ``auth:`` config."""
    crt = tmp_path / "token.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=issuer", "-keyout", str(tmp_path / "token.key"),
                    "-out", str(crt)], check=True, capture_output=True)
    auth = {"token": {"realm": "http://127.0.0.1:9/token", "service": "local",
                      "issuer": "nobody", "rootcertbundle": str(crt)}}
    with LocalRegistry(tmp_path / "reg", auth=auth) as reg:
        assert reg.config()["auth"] == auth
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(reg.url + "/v2/", timeout=5)
        assert err.value.code == 401
        assert err.value.headers["WWW-Authenticate"].startswith(
            'Bearer realm="http://127.0.0.1:9/token"')


def test_a_taken_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        reg = LocalRegistry(tmp_path / "reg", port=port)
        with pytest.raises(LocalRegistryError) as err:
            reg.start()
    assert "exited during start-up" in str(err.value) and "address already in use" in str(err.value)
    assert str(reg.log_path) in (err.value.hint or "")
    assert not reg.running


def test_settings_and_tools_are_checked_first(tmp_path: Path) -> None:
    with pytest.raises(LocalRegistryError, match="both a name and a password"):
        LocalRegistry(tmp_path / "a", tls=True, user="student").start()
    with pytest.raises(LocalRegistryError, match="not both"):
        LocalRegistry(tmp_path / "b", user="u", password="p", auth={"token": {}}).start()
    with pytest.raises(LocalRegistryError, match="contains ':'"):
        LocalRegistry(tmp_path / "c", user="a:b", password="p").start()
    with pytest.raises(LocalRegistryError) as err:
        LocalRegistry(tmp_path / "d", binary="/nonexistent/docker-registry").start()
    assert "is not installed" in str(err.value) and err.value.hint == "apt-get install docker-registry"
    assert not (tmp_path / "d").exists()  # nothing written before the checks pass

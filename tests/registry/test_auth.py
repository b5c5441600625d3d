"""Auth against the real registries: Basic (htpasswd over TLS), Bearer tokens from the test
issuer (scope upgrades, anonymous pull-only, refresh tokens), credential files and helpers,
login/logout — and no secret ever in output, logs, exceptions or reprs."""

from __future__ import annotations

import base64
import json
import os
import stat
import sys
from pathlib import Path

import pytest

from nbcontainer.errors import RegistryError
from nbcontainer.registry import (
    Credential,
    RegistryClient,
    login,
    logout,
    lookup_credential,
    pull,
    push,
)
from nbcontainer.registry.auth import covers, merge_scopes, parse_challenges
from nbcontainer.registry.credentials import docker_config_path
from nbcontainer.registry.errors import AuthenticationError

from .conftest import FAST_RETRY, settings_for
from .images import store_image
from .servers import PASSWORD, USER

HELPER = """#!{python}
import json, os, sys
path = os.environ["NBTEST_HELPER_DB"]
db = json.load(open(path)) if os.path.exists(path) else {{}}
action = sys.argv[1]
data = sys.stdin.read()
if action == "get":
    if data.strip() not in db:
        print("credentials not found in native keychain"); sys.exit(1)
    e = db[data.strip()]
    print(json.dumps({{"ServerURL": data.strip(), "Username": e[0], "Secret": e[1]}}))
elif action == "store":
    d = json.loads(data); db[d["ServerURL"]] = [d["Username"], d["Secret"]]
    json.dump(db, open(path, "w"))
elif action == "erase":
    db.pop(data.strip(), None); json.dump(db, open(path, "w"))
"""


@pytest.fixture
def helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "docker-credential-nbtest"
    exe.write_text(HELPER.format(python=sys.executable))
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    db = tmp_path / "helper-db.json"
    monkeypatch.setenv("NBTEST_HELPER_DB", str(db))
    return db


def _write_config(doc: dict) -> None:
    p = docker_config_path()
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(doc))


def _secrets(reg) -> list[str]:
    out = [PASSWORD, base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()]
    if reg.issuer is not None:
        out += reg.issuer.tokens + list(reg.issuer.refresh_tokens)
    return out


def _assert_no_secrets(text: str, reg) -> None:
    for s in _secrets(reg):
        assert s not in text


# ---------------------------------------------------------------- unit: challenges, scopes
def test_parse_challenges():
    (c,) = parse_challenges('Bearer realm="https://auth.docker.io/token",service="registry.'
                            'docker.io",scope="repository:library/a:pull,push"')
    assert c.scheme == "bearer" and c.params["service"] == "registry.docker.io"
    assert c.scopes == ("repository:library/a:pull,push",)
    (b,) = parse_challenges('Basic realm="test"')
    assert b.scheme == "basic"
    assert merge_scopes(["repository:a:pull"], ["repository:a:push", "repository:b:pull"]) == \
        ("repository:a:pull,push", "repository:b:pull")
    assert covers(("repository:a:pull,push",), ("repository:a:pull",))
    assert not covers(("repository:a:pull",), ("repository:a:pull,push",))


# ---------------------------------------------------------------- Basic over TLS
def test_basic_without_credentials_fails_clearly(tls_registry, store, repo_name):
    store_image(store, "local/b:1", [{"a": b"a"}])
    with pytest.raises(AuthenticationError) as info:
        push(store, "local/b:1", f"{tls_registry.host}/{repo_name}:1", credential=None,
             settings=settings_for(tls_registry))
    assert info.value.status == 401
    assert f"nbcontainer login {tls_registry.host}" in str(info.value)


def test_wrong_password_is_clear_and_not_echoed(tls_registry, token_registry):
    for reg in (tls_registry, token_registry):
        bad = Credential(USER, "wrong-password-123")
        with pytest.raises(AuthenticationError) as info:
            login(reg.host, USER, "wrong-password-123", settings=settings_for(reg))
        assert "wrong-password-123" not in str(info.value) + repr(info.value)
        assert "wrong-password-123" not in repr(bad)
    assert not docker_config_path().exists()


def test_tls_without_ca_is_a_clear_error(tls_registry):
    from nbcontainer.registry import RegistrySettings, TransportError
    with pytest.raises(TransportError) as info:
        RegistryClient(tls_registry.host, settings=RegistrySettings(), credential=None,
                       retry=FAST_RETRY).ping()
    assert "certificate" in str(info.value) and "certs.d" in str(info.value)
    # tls_verify=False is its own switch (not "plain HTTP")
    c = RegistryClient(tls_registry.host, settings=RegistrySettings(), tls_verify=False,
                       credential=Credential(USER, PASSWORD))
    c.ping()
    assert c.base_url.startswith("https://")
    with pytest.raises(RegistryError) as info:
        c.list_tags("nonexistent/repo")
    assert "NAME_UNKNOWN" in str(info.value) and info.value.hint


def test_ca_from_env_certs_dir(tls_registry, monkeypatch):
    from nbcontainer.registry import RegistrySettings
    monkeypatch.setenv("NBCONTAINER_CERTS_DIR", str(tls_registry.ca_root))
    c = RegistryClient(tls_registry.host, settings=RegistrySettings.load(),
                       credential=Credential(USER, PASSWORD))
    c.ping()
    assert c.base_url == f"https://{tls_registry.host}"


# ---------------------------------------------------------------- Bearer tokens
def test_token_scope_upgrade_after_pull_only_token(token_registry, store, repo_name):
    """oras-py's bug: a pull-scope token from a HEAD must not be reused for the POST."""
    reg = token_registry
    store_image(store, "local/t:1", [{"t": b"token"}])
    c = RegistryClient(reg.host, credential=Credential(USER, PASSWORD),
                       settings=settings_for(reg), retry=FAST_RETRY)
    layer = store.image("local/t:1").manifest.layers[0]
    assert c.head_blob(repo_name, layer.digest) is None  # pull-only token now cached
    n = len(reg.issuer.requests)
    push(store, "local/t:1", f"{reg.host}/{repo_name}:1", client=c)
    new = reg.issuer.requests[n:]
    assert any("push" in s for r in new for s in r["scopes"])
    assert all(r["user"] == USER for r in new)
    # one push token serves every blob of the push
    assert len(new) <= 2


def test_anonymous_pull_allowed_push_denied(token_registry, store, store2, repo_name):
    reg = token_registry
    store_image(store, "local/a:1", [{"a": b"anon"}])
    push(store, "local/a:1", f"{reg.host}/{repo_name}:1", credential=Credential(USER, PASSWORD))
    # anonymous pulls work (the issuer grants pull to everyone)
    assert pull(store2, f"{reg.host}/{repo_name}:1", credential=None)
    with pytest.raises(AuthenticationError) as info:
        push(store, "local/a:1", f"{reg.host}/{repo_name}:2", credential=None)
    assert info.value.status in (401, 403)
    assert "login" in str(info.value)


def test_refresh_token_identity(token_registry, store, repo_name):
    reg = token_registry
    # get a refresh token the OAuth2 way, then use it as an identity token
    import urllib.parse
    import urllib.request
    form = urllib.parse.urlencode({"grant_type": "password", "username": USER,
                                   "password": PASSWORD, "service": "x",
                                   "scope": ""}).encode()
    with urllib.request.urlopen(reg.issuer.realm, data=form) as r:
        refresh = json.load(r)["refresh_token"]
    store_image(store, "local/r:1", [{"r": b"refresh"}])
    n = len(reg.issuer.requests)
    push(store, "local/r:1", f"{reg.host}/{repo_name}:1",
         credential=Credential(identity_token=refresh))
    assert reg.issuer.requests[n]["method"] == "POST"


# ---------------------------------------------------------------- credential sources
def test_credentials_from_docker_config_auths(token_registry, store, repo_name):
    reg = token_registry
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    _write_config({"auths": {f"http://{reg.host}/v2/": {"auth": auth}, "other.io": {}}})
    assert lookup_credential(reg.host).username == USER
    store_image(store, "local/c:1", [{"c": b"conf"}])
    push(store, "local/c:1", f"{reg.host}/{repo_name}:1")  # credential=AUTO


def test_credentials_from_auth_json(tmp_path, monkeypatch, tls_registry):
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    p = tmp_path / "auth.json"
    p.write_text(json.dumps({"auths": {tls_registry.host: {"auth": auth}}}))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(p))
    assert lookup_credential(tls_registry.host).password == PASSWORD
    rt = tmp_path / "run"
    (rt / "containers").mkdir(parents=True)
    (rt / "containers" / "auth.json").write_text(json.dumps({"auths": {"x.io": {"auth": auth}}}))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(rt))
    assert lookup_credential("x.io").username == USER
    assert lookup_credential("y.io") is None


def test_login_logout_plain_config(tls_registry):
    where = login(tls_registry.host, USER, PASSWORD, settings=settings_for(tls_registry))
    assert where == str(docker_config_path())
    doc = json.loads(docker_config_path().read_text())
    assert base64.b64decode(doc["auths"][tls_registry.host]["auth"]).decode() == \
        f"{USER}:{PASSWORD}"
    assert oct(docker_config_path().stat().st_mode & 0o777) == "0o600"
    assert logout(tls_registry.host) is True
    assert logout(tls_registry.host) is False
    assert tls_registry.host not in json.loads(docker_config_path().read_text())["auths"]


def test_login_through_helper(helper, token_registry):
    reg = token_registry
    _write_config({"credsStore": "nbtest"})
    where = login(reg.host, USER, PASSWORD)
    assert "docker-credential-nbtest" in where
    assert json.loads(helper.read_text())[reg.host] == [USER, PASSWORD]
    conf = docker_config_path().read_text()
    assert PASSWORD not in conf
    assert lookup_credential(reg.host).password == PASSWORD
    assert logout(reg.host) is True
    assert reg.host not in json.loads(helper.read_text())


def test_cred_helpers_per_host_and_docker_hub_key(helper):
    _write_config({"credHelpers": {"docker.io": "nbtest"}})
    helper.write_text(json.dumps({"https://index.docker.io/v1/": ["hubuser", "hubpass-1234"]}))
    cred = lookup_credential("docker.io")
    assert cred is not None and cred.username == "hubuser"
    assert lookup_credential("ghcr.io") is None
    # a <token> user name from a helper is an identity token
    helper.write_text(json.dumps({"https://index.docker.io/v1/": ["<token>", "idtok-5678"]}))
    assert lookup_credential("docker.io").identity_token == "idtok-5678"


def test_docker_hub_login_key(helper):
    from nbcontainer.registry.credentials import store_credential
    store_credential("docker.io", Credential("u", "p-hub-9999"))
    doc = json.loads(docker_config_path().read_text())
    assert list(doc["auths"]) == ["https://index.docker.io/v1/"]
    assert lookup_credential("docker.io").password == "p-hub-9999"


def test_missing_helper_is_clear():
    _write_config({"credsStore": "doesnotexist"})
    with pytest.raises(RegistryError) as info:
        lookup_credential("example.com")
    assert "docker-credential-doesnotexist" in str(info.value)


# ---------------------------------------------------------------- no leaks
def test_no_secret_in_output_logs_errors_or_reprs(token_registry, tls_registry, store,
                                                   store2, repo_name, capsys, debug_logs,
                                                   helper):
    texts: list[str] = []
    for reg in (token_registry, tls_registry):
        kw = {"credential": Credential(USER, PASSWORD), "settings": settings_for(reg)}
        store_image(store, "local/l:1", [{"l": b"leak?"}])
        events: list = []
        push(store, "local/l:1", f"{reg.host}/{repo_name}:1", progress=events.append, **kw)
        pull(store2, f"{reg.host}/{repo_name}:1", progress=events.append, **kw)
        texts += [" ".join((e.text, e.error or "", e.source)) for e in events]
        c = RegistryClient(reg.host, **kw)
        c.list_tags(repo_name)
        texts += [repr(c), repr(c.auth), repr(kw["credential"]), repr(c.auth._tokens)]
        # errors raised while authenticated
        for call in (lambda c=c: c.get_manifest(repo_name, "missing-tag"),
                     lambda c=c: c.put_manifest(repo_name, "x", b"{}", "application/json")):
            with pytest.raises(RegistryError) as info:
                call()
            texts += [str(info.value), repr(info.value), str(info.value.hint)]
        login(reg.host, USER, PASSWORD, settings=settings_for(reg))
        texts.append(repr(lookup_credential(reg.host)))
        # a helper failing with the secret in its output must not leak it either
    out, err = capsys.readouterr()
    texts += [out, err, debug_logs.text]
    blob = "\n".join(texts)
    assert "fetching manifest" in blob  # the errors were captured
    assert token_registry.issuer.tokens
    for reg in (token_registry, tls_registry):
        _assert_no_secrets(blob, reg)

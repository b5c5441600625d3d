"""Real test servers on 127.0.0.1: distribution's ``docker-registry`` in three set-ups (the
product's ``LocalRegistry``, plus a JWT token issuer that only tests need), a fault-injecting
HTTP proxy that can also play a hostile registry (``HOSTILE_PULL``/``PUSH``/``LOGIN``: malformed
manifests, configs, indexes, tokens and challenges, truncated and oversized bodies), and
registry clients configured for each. Each binds a free loopback port, writes only under its
temp dir and is stopped by the process/thread that started it."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import gzip
import hashlib
import http.client
import http.server
import json
import re
import secrets
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from nbcontainer.localregistry import LocalRegistry, free_port
from nbcontainer.oci import mediatypes as mt
from nbcontainer.registry import Credential, RegistryClient, RegistrySettings, RetryPolicy, Timeouts

USER, PASSWORD = "tester", "s3cret-Pa55word-xyz"
SERVICE, ISSUER = "nbtest-registry", "nbtest-issuer"


# ---------------------------------------------------------------- token issuer
class TokenIssuer:
    """Signs RS256 JWTs the registry verifies against ``token.crt`` (x5c chains to it).
    Authenticated users get what they ask for; anonymous users get pull only."""

    def __init__(self, d: Path) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)])
        now = dt.datetime.now(dt.UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(days=1))
                .not_valid_after(now + dt.timedelta(days=7))
                .sign(self.key, hashes.SHA256()))
        self.cert_path = d / "token.crt"
        self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
        self.pem_key = self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption())
        self.requests: list[dict] = []  # {"scopes": [...], "user": ..., "method": ...}
        self.tokens: list[str] = []
        self.refresh_tokens: dict[str, str] = {}  # refresh token → user
        self.expires_in = 300
        self.port = free_port()
        self.realm = f"http://127.0.0.1:{self.port}/token"
        issuer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a: object) -> None:
                pass

            def _user(self) -> str | None | bool:
                h = self.headers.get("Authorization", "")
                if not h.startswith("Basic "):
                    return None
                u, _, p = base64.b64decode(h[6:]).decode().partition(":")
                return u if (u, p) == (USER, PASSWORD) else False

            def _answer(self, user: str | None, scopes: list[str], method: str,
                        offline: bool) -> None:
                issuer.requests.append({"scopes": scopes, "user": user, "method": method})
                body = {"token": issuer.sign(user, scopes), "expires_in": issuer.expires_in,
                        "issued_at": dt.datetime.now(dt.UTC).isoformat()}
                body["access_token"] = body["token"]
                if offline and user:
                    rt = "rt-" + secrets.token_hex(16)
                    issuer.refresh_tokens[rt] = user
                    body["refresh_token"] = rt
                self._json(200, body)

            def _json(self, status: int, doc: dict) -> None:
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                q = parse_qs(urlsplit(self.path).query)
                user = self._user()
                if user is False:
                    self._json(401, {"details": "incorrect username or password"})
                    return
                self._answer(user, q.get("scope", []), "GET",  # type: ignore[arg-type]
                             q.get("offline_token") == ["true"])

            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(n).decode())
                scopes = (form.get("scope") or [""])[0].split()
                grant = (form.get("grant_type") or [""])[0]
                if grant == "refresh_token":
                    user = issuer.refresh_tokens.get((form.get("refresh_token") or [""])[0])
                    if not user:
                        self._json(401, {"error": "invalid_grant"})
                        return
                    self._answer(user, scopes, "POST", False)
                elif grant == "password":
                    if (form.get("username"), form.get("password")) != ([USER], [PASSWORD]):
                        self._json(401, {"error": "invalid_grant"})
                        return
                    self._answer(USER, scopes, "POST", True)
                else:
                    self._json(400, {"error": "unsupported_grant_type"})

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def sign(self, user: str | None, scopes: list[str]) -> str:
        import jwt

        access = []
        for scope in scopes:
            parts = scope.split(":")
            if len(parts) < 3:
                continue
            kind, name, actions = parts[0], ":".join(parts[1:-1]), parts[-1].split(",")
            if not user:
                actions = [a for a in actions if a == "pull"]
            access.append({"type": kind, "name": name, "actions": actions})
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": SERVICE, "sub": user or "", "exp": now + self.expires_in,
                  "nbf": now - 10, "iat": now, "jti": uuid.uuid4().hex, "access": access}
        token = jwt.encode(claims, self.pem_key, algorithm="RS256",
                           headers={"x5c": [self.x5c]})
        self.tokens.append(token)
        return token

    def start(self) -> TokenIssuer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------- registry
@dataclass
class Registry:
    """A ``LocalRegistry`` in one of the three set-ups: ``plain`` HTTP, ``tls`` with an
    htpasswd user, or ``token`` (Bearer tokens from a ``TokenIssuer`` started with it)."""

    mode: str  # plain | tls | token
    dir: Path
    issuer: TokenIssuer | None = None
    server: LocalRegistry | None = None

    @property
    def host(self) -> str:
        assert self.server is not None, "start() the registry first"
        return self.server.host

    @property
    def port(self) -> int:
        assert self.server is not None, "start() the registry first"
        return self.server.port

    @property
    def url(self) -> str:
        assert self.server is not None, "start() the registry first"
        return self.server.url

    @property
    def ca_root(self) -> Path | None:
        """A certs.d root: <root>/<host>/ca.crt."""
        return self.server.certs_root if self.server is not None else None

    @property
    def ca_dir(self) -> Path | None:
        """A dir holding only ca.crt (skopeo --cert-dir)."""
        root = self.ca_root
        return root / self.host if root is not None else None

    def start(self) -> Registry:
        if self.mode == "tls":
            self.server = LocalRegistry(self.dir, tls=True, user=USER, password=PASSWORD)
        elif self.mode == "token":
            self.dir.mkdir(parents=True, exist_ok=True)
            self.issuer = TokenIssuer(self.dir).start()
            self.server = LocalRegistry(self.dir, auth={"token": {
                "realm": self.issuer.realm, "service": SERVICE, "issuer": ISSUER,
                "rootcertbundle": str(self.issuer.cert_path)}})
        else:
            self.server = LocalRegistry(self.dir)
        try:
            self.server.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        if self.issuer is not None:
            self.issuer.stop()

    # skopeo flags for this registry as a destination ("dest") or source ("src")
    def skopeo_flags(self, side: str = "") -> list[str]:
        """``side`` is "src"/"dest" for ``skopeo copy``, "" for inspect."""
        p = f"--{side}-" if side else "--"
        flags = []
        if self.mode == "tls":
            flags += [f"{p}cert-dir", str(self.ca_dir)]
        else:
            flags += [f"{p}tls-verify=false"]
        if self.mode in ("tls", "token"):
            flags += [f"{p}creds", f"{USER}:{PASSWORD}"]
        return flags


# ---------------------------------------------------------------- fault proxy
@dataclass
class Fault:
    """Applies to requests whose method and path match; ``times`` = how many (None: all).

    ``respond`` answers in the registry's place (a hostile registry): ``status``, ``headers``
    and ``body`` as given; ``declared_length`` is the Content-Length sent (default: the body's,
    so a larger value truncates the body and closes the connection); ``close_delimited``
    sends no Content-Length at all and ends the body by closing."""

    method: str
    path: str  # regex
    kind: str  # status | reset | stall | corrupt | reset_request | respond
    times: int | None = 1
    status: int = 503
    retry_after: str | None = None
    after_bytes: int = 0
    stall: float = 5.0
    body: bytes = b""
    headers: dict[str, str] | None = None
    declared_length: int | None = None
    close_delimited: bool = False

    def matches(self, method: str, path: str) -> bool:
        return (self.times is None or self.times > 0) and method == self.method and \
            re.search(self.path, path) is not None


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    """One request: a matching fault decides, else it is forwarded to the registry."""

    protocol_version = "HTTP/1.1"
    server: _ProxyServer

    def log_message(self, *a: object) -> None:
        pass

    def _handle(self) -> None:
        proxy = self.server.proxy
        fault = proxy._take(self.command, self.path)
        n = int(self.headers.get("Content-Length") or 0)
        if fault and fault.kind == "reset_request":
            self.rfile.read(min(n, fault.after_bytes))
            proxy.log.append((self.command, self.path, "reset_request"))
            _rst(self.connection)
            self.close_connection = True
            return
        body = self.rfile.read(n) if n else b""
        if fault and fault.kind in ("respond", "status"):
            proxy.log.append((self.command, self.path, fault.status))
            (self._respond if fault.kind == "respond" else self._status)(fault)
            return
        self._forward(body, fault)

    def _status(self, fault: Fault) -> None:
        data = b'{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}' \
            if fault.status == 429 else b"service unavailable"
        self.send_response(fault.status)
        if fault.retry_after is not None:
            self.send_header("Retry-After", fault.retry_after)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _respond(self, fault: Fault) -> None:
        """The hostile registry: whatever the fault says, however broken."""
        self.send_response(fault.status)
        for k, v in (fault.headers or {}).items():
            self.send_header(k, v)
        length = len(fault.body) if fault.declared_length is None else fault.declared_length
        if fault.close_delimited or length != len(fault.body):
            self.send_header("Connection", "close")
            self.close_connection = True
        if not fault.close_delimited and "Content-Length" not in (fault.headers or {}):
            self.send_header("Content-Length", str(length))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(fault.body)
        self.wfile.flush()

    def _forward(self, body: bytes, fault: Fault | None) -> None:
        proxy = self.server.proxy
        conn = http.client.HTTPConnection("127.0.0.1", proxy.upstream, timeout=30)
        headers = {k: v for k, v in self.headers.items()}
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        proxy.log.append((self.command, self.path, resp.status))
        self.send_response(resp.status)
        length = resp.getheader("Content-Length")
        payload = None
        if length is None:
            payload = resp.read()
            length = str(len(payload))
        for k, v in resp.getheaders():
            if k.lower() in ("content-length", "transfer-encoding", "connection", "date",
                             "server"):
                continue
            self.send_header(k, v)
        self.send_header("Content-Length", length)
        self.end_headers()
        if self.command != "HEAD":
            self._copy_body(resp, payload, fault)
        conn.close()

    def _copy_body(self, resp: http.client.HTTPResponse, payload: bytes | None,
                   fault: Fault | None) -> None:
        sent = 0
        corrupted = False
        while True:
            chunk = payload if payload is not None else resp.read(65536)
            payload = b"" if payload is not None else None
            if not chunk:
                break
            if fault and fault.kind in ("reset", "stall") and \
                    sent + len(chunk) >= fault.after_bytes:
                self.wfile.write(chunk[: fault.after_bytes - sent])
                self.wfile.flush()
                if fault.kind == "stall":
                    time.sleep(fault.stall)
                _rst(self.connection)
                self.close_connection = True
                return
            if fault and fault.kind == "corrupt" and not corrupted:
                chunk = bytes([chunk[0] ^ 0xFF]) + chunk[1:]
                corrupted = True
            self.wfile.write(chunk)
            sent += len(chunk)

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle


class _ProxyServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    proxy: FaultProxy

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hangs up on a hostile answer (a 5 MiB manifest it refuses to read)
        is the point of the test, not an error worth a traceback."""
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class FaultProxy:
    """An HTTP/1.1 forwarding proxy in front of a plain-HTTP registry that injects faults,
    up to serving a whole hostile registry (see :data:`HOSTILE_PULL` and friends)."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream = upstream_port
        self.faults: list[Fault] = []
        self.log: list[tuple[str, str, int | str]] = []
        self.port = free_port()
        self._lock = threading.Lock()
        self.server = _ProxyServer(("127.0.0.1", self.port), _ProxyHandler)
        self.server.proxy = self
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for f in self.faults:
                if f.matches(method, path):
                    if f.times is not None:
                        f.times -= 1
                    return f
        return None

    def start(self) -> FaultProxy:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _rst(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0): what a dropped connection looks like to the client."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()


# ---------------------------------------------------------------- hostile registry
@dataclass(frozen=True)
class Hostile:
    """One way a registry (or what sits in front of it) can be hostile: the faults that make
    the proxy behave so for one repository, and a fragment of the one-line error that
    nbcontainer must end with."""

    name: str
    faults: Callable[[FaultProxy, str], list[Fault]]  # (proxy, repository) → faults
    expect: str


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _doc(**fields: object) -> bytes:
    return json.dumps(fields).encode()


def serve(repo: str, manifest: bytes, blobs: dict[str, bytes] | None = None, *,
          media_type: str = mt.OCI_MANIFEST, **kw: object) -> list[Fault]:
    """Faults that serve a fabricated image for ``repo``: its manifest under tag ``1`` and
    its digest (GET and HEAD), and its blobs; ``kw`` goes to the manifest's faults (a
    wrong length, more headers)."""
    headers = {"Content-Type": media_type, "Docker-Content-Digest": _digest(manifest)}
    headers.update(kw.pop("headers", {}))  # type: ignore[arg-type]
    path = rf"^/v2/{re.escape(repo)}/manifests/(1|{_digest(manifest)})$"
    faults = [Fault(m, path, "respond", times=None, status=200, body=manifest,
                    headers=headers, **kw) for m in ("GET", "HEAD")]  # type: ignore[arg-type]
    for digest, data in (blobs or {}).items():
        bpath = rf"^/v2/{re.escape(repo)}/blobs/{digest}$"
        faults += [Fault(m, bpath, "respond", times=None, status=200, body=data,
                         headers={"Content-Type": "application/octet-stream"})
                   for m in ("GET", "HEAD")]
    return faults


def image(repo: str, config: bytes | dict[str, object] | None = None, *, layers: int = 1,
          manifest: dict[str, object] | None = None, config_size: int | None = None,
          served_config: bytes | None = None) -> list[Fault]:
    """A fabricated one-layer image: ``config`` (bytes, or fields over a valid config),
    ``manifest`` fields over the valid manifest, and what is served as the config blob."""
    layer = _valid_layer()
    if not isinstance(config, bytes):
        base: dict[str, object] = {"architecture": "amd64", "os": "linux", "config": {},
                                   "rootfs": {"type": "layers",
                                              "diff_ids": [layer[1]] * layers}}
        config = json.dumps({**base, **(config or {})}).encode()
    doc: dict[str, object] = {
        "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_CONFIG, "digest": _digest(config),
                   "size": len(config) if config_size is None else config_size},
        "layers": [{"mediaType": mt.OCI_LAYER_GZIP, "digest": _digest(layer[0]),
                    "size": len(layer[0])}] * layers,
        **(manifest or {})}
    return serve(repo, json.dumps(doc).encode(),
                 {_digest(config): served_config if served_config is not None else config,
                  _digest(layer[0]): layer[0]})


def _valid_layer() -> tuple[bytes, str]:
    """(gzip blob, diff_id) of a one-file tar."""
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo("a")
        info.size, info.mtime = 1, 0
        tf.addfile(info, io.BytesIO(b"a"))
    raw = buf.getvalue()
    return gzip.compress(raw, mtime=0), _digest(raw)


def index(repo: str, entries: list[dict[str, object]], children: dict[str, bytes] | None = None
          ) -> list[Fault]:
    """A fabricated index (and child manifests, served by digest)."""
    data = _doc(schemaVersion=2, mediaType=mt.OCI_INDEX, manifests=entries)
    faults = serve(repo, data, media_type=mt.OCI_INDEX)
    for digest, child in (children or {}).items():
        faults += [Fault(m, rf"^/v2/{re.escape(repo)}/manifests/{digest}$", "respond",
                         times=None, status=200, body=child,
                         headers={"Content-Type": mt.OCI_MANIFEST,
                                  "Docker-Content-Digest": digest}) for m in ("GET", "HEAD")]
    return faults


def _entry(child: bytes, **changes: object) -> dict[str, object]:
    return {"mediaType": mt.OCI_MANIFEST, "digest": _digest(child), "size": len(child),
            "platform": {"os": "linux", "architecture": "amd64"}, **changes}


def _child() -> bytes:
    return _doc(schemaVersion=2, mediaType=mt.OCI_MANIFEST, config={
        "mediaType": mt.OCI_CONFIG, "digest": _digest(b"{}"), "size": 2}, layers=[])


def challenge(proxy: FaultProxy, header: str, token: Fault | None = None) -> list[Fault]:
    """Every request is refused with ``WWW-Authenticate: header``; ``token`` answers
    ``/token`` on the proxy (the realm the challenges name)."""
    return ([token] if token else []) + [
        Fault(m, r"^/v2/", "respond", times=None, status=401,
              headers={"WWW-Authenticate": header.replace("{proxy}", proxy.host)},
              body=b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}')
        for m in ("GET", "HEAD", "POST", "PUT", "PATCH")]


def token(body: bytes, status: int = 200, **kw: object) -> Callable[[FaultProxy, str],
                                                                      list[Fault]]:
    """A token service on the proxy answering ``body``."""
    def faults(proxy: FaultProxy, repo: str) -> list[Fault]:
        return challenge(proxy, 'Bearer realm="http://{proxy}/token",service="hostile"',
                         Fault("GET", r"^/token", "respond", times=None, status=status,
                               body=body, headers={"Content-Type": "application/json"},
                               **kw))  # type: ignore[arg-type]
    return faults


BIG_JSON = b'{"schemaVersion":2,"annotations":{"a":"' + b"x" * (5 << 20) + b'"}}'
ESCAPES = _doc(errors=[{"code": "MANIFEST_UNKNOWN\n", "message": "gone\x1b[2J\nreally"}])
_MANIFEST = json.loads(_child())

# Pull: every mode ends in a one-line error, exit 1, no traceback, fsck clean, no tag.
HOSTILE_PULL = [
    Hostile("manifest-not-json", lambda p, r: serve(r, b"{oops"), "not valid JSON"),
    Hostile("manifest-media-type-list", lambda p, r: serve(
        r, _doc(**{**_MANIFEST, "mediaType": [mt.OCI_MANIFEST]})),
        "manifest.mediaType: expected a string, got list"),
    Hostile("manifest-annotations-list", lambda p, r: serve(
        r, _doc(**{**_MANIFEST, "annotations": ["a=b"]})),
        "manifest.annotations: expected an object of strings, got list"),
    Hostile("manifest-layer-size-string", lambda p, r: image(
        r, manifest={"layers": [{"mediaType": mt.OCI_LAYER_GZIP, "digest": _digest(b"x"),
                                 "size": "1"}]}),
        "manifest.layers[0].size: expected an integer, got str"),
    Hostile("manifest-schema1", lambda p, r: serve(r, _doc(schemaVersion=1, fsLayers=[]),
                                                   media_type="application/json"),
            "unsupported schemaVersion 1"),
    Hostile("manifest-index-in-disguise", lambda p, r: serve(
        r, _doc(schemaVersion=2, mediaType=mt.OCI_INDEX, manifests=[])),
        "says it is application/vnd.oci.image.index.v1+json but was served as"),
    Hostile("manifest-over-4mib", lambda p, r: serve(r, BIG_JSON), "larger than 4194304"),
    Hostile("manifest-over-4mib-unannounced", lambda p, r: serve(r, BIG_JSON,
                                                                 close_delimited=True),
            "larger than 4194304"),
    Hostile("manifest-truncated", lambda p, r: serve(r, _child(), declared_length=4000),
            "broke off"),
    Hostile("manifest-digest-header-lies", lambda p, r: serve(
        r, _child(), headers={"Docker-Content-Digest": _digest(b"other")}),
        "does not match its digest"),
    Hostile("manifest-error-with-escapes", lambda p, r: [Fault(
        "GET", rf"^/v2/{r}/manifests/", "respond", times=None, status=404, body=ESCAPES)],
        "MANIFEST_UNKNOWN: gone [2J really"),
    Hostile("manifest-redirect-loop", lambda p, r: [Fault(
        "GET", rf"^/v2/{r}/manifests/", "respond", times=None, status=307,
        headers={"Location": f"/v2/{r}/manifests/1"})], "too many redirects"),
    Hostile("manifest-redirect-to-a-file", lambda p, r: [Fault(
        "GET", rf"^/v2/{r}/manifests/", "respond", times=None, status=302,
        headers={"Location": "file:///etc/passwd"})],
        "invalid redirect Location header"),
    Hostile("config-history-string", lambda p, r: image(r, {"history": ["oops"]}),
            "config.history[0]: expected an object, got str"),
    Hostile("config-healthcheck-string", lambda p, r: image(
        r, {"config": {"Healthcheck": "CMD true"}}),
        "config.config.Healthcheck: expected an object, got str"),
    Hostile("config-env-number", lambda p, r: image(r, {"config": {"Env": 5}}),
            "config.config.Env: expected a list of strings, got int"),
    Hostile("config-not-json", lambda p, r: image(r, b"\x00\xff"), "not valid JSON"),
    Hostile("config-diff-ids-count", lambda p, r: image(
        r, {"rootfs": {"type": "layers", "diff_ids": []}}), "0 diff_ids for 1 layers"),
    Hostile("config-over-limit", lambda p, r: image(r, config_size=100 << 20),
            "refused (more than"),
    Hostile("config-wrong-bytes", lambda p, r: image(r, served_config=b"{}" * 400),
            "than its declared"),
    Hostile("index-platform-string", lambda p, r: index(
        r, [_entry(_child(), platform="linux/amd64")]),
        "index.manifests[0].platform: expected an object, got str"),
    Hostile("index-size-negative", lambda p, r: index(r, [_entry(_child(), size=-1)]),
            "index.manifests[0].size: -1 is out of range"),
    Hostile("index-child-size-lies", lambda p, r: index(
        r, [_entry(_child(), size=len(_child()) + 1)], {_digest(_child()): _child()}),
        "the index says"),
    Hostile("index-child-not-json", lambda p, r: index(
        r, [_entry(b"{oops")], {_digest(b"{oops"): b"{oops"}), "not valid JSON"),
    Hostile("challenge-without-realm", lambda p, r: challenge(p, 'Bearer service="x"'),
            "named no realm"),
    Hostile("challenge-realm-not-http", lambda p, r: challenge(
        p, 'Bearer realm="file:///etc/passwd",service="x"'), "invalid token realm"),
    Hostile("challenge-realm-broken-url", lambda p, r: challenge(
        p, 'Bearer realm="http://[::1",service="x"'), "invalid token realm"),
    Hostile("challenge-unknown-scheme", lambda p, r: challenge(p, "Negotiate abc=="),
            "failed (401)"),
    Hostile("token-not-json", token(b"<html>oops</html>"), "returned invalid JSON"),
    Hostile("token-not-an-object", token(b'["t"]'), "returned invalid JSON"),
    Hostile("token-missing", token(b'{"expires_in": 60}'), "returned no token"),
    Hostile("token-with-newline", token(b'{"token": "abc\\r\\nX-Evil: 1"}'),
            "malformed token"),
    Hostile("token-huge", token(b'{"token": "' + b"t" * (2 << 20) + b'"}'), "larger than"),
    Hostile("token-truncated", token(b'{"token": "abc"}', declared_length=500), "broke off"),
    Hostile("token-denied-html", token(b"<html>no</html>", status=403),
            "authentication to 127.0.0.1"),
]

# Push: the pushing store is left as it was.
HOSTILE_PUSH = [
    Hostile("upload-without-location", lambda p, r: [Fault(
        "POST", rf"^/v2/{r}/blobs/uploads/", "respond", times=None, status=202)],
        "without a Location header"),
    Hostile("upload-location-broken", lambda p, r: [Fault(
        "POST", rf"^/v2/{r}/blobs/uploads/", "respond", times=None, status=202,
        headers={"Location": "http://[::1"})], "invalid upload Location header"),
    Hostile("upload-location-file", lambda p, r: [Fault(
        "POST", rf"^/v2/{r}/blobs/uploads/", "respond", times=None, status=202,
        headers={"Location": "file:///tmp/x"})], "not an http(s) URL"),
    Hostile("blobs-said-to-exist", lambda p, r: [Fault(
        "HEAD", rf"^/v2/{r}/blobs/", "respond", times=None, status=200,
        headers={"Content-Length": "²"})], "MANIFEST_BLOB_UNKNOWN"),
    Hostile("manifest-digest-rewritten", lambda p, r: [Fault(
        "PUT", rf"^/v2/{r}/manifests/", "respond", times=None, status=201,
        headers={"Docker-Content-Digest": _digest(b"other")})], "registry stored manifest"),
    Hostile("manifest-413-html", lambda p, r: [Fault(
        "PUT", rf"^/v2/{r}/manifests/", "respond", times=None, status=413,
        body=b"<html><body>too large</body></html>")], "failed (413): HTTP 413"),
    Hostile("error-with-escapes", lambda p, r: [Fault(
        "PUT", rf"^/v2/{r}/manifests/", "respond", times=None, status=400, body=ESCAPES)],
        "gone [2J really"),
    Hostile("token-not-json", token(b"<html>oops</html>"), "returned invalid JSON"),
    Hostile("challenge-realm-not-http", lambda p, r: challenge(
        p, 'Bearer realm="file:///etc/passwd",service="x"'), "invalid token realm"),
]

# Login: no credentials are saved.
HOSTILE_LOGIN = [
    Hostile("token-not-json", token(b"<html>oops</html>"), "returned invalid JSON"),
    Hostile("token-with-newline", token(b'{"token": "abc\\r\\nX-Evil: 1"}'),
            "malformed token"),
    Hostile("token-denied", token(b'{"details":"incorrect username or password"}',
                                  status=401), "authentication to 127.0.0.1"),
    Hostile("challenge-without-realm", lambda p, r: challenge(p, 'Bearer service="x"'),
            "named no realm"),
    Hostile("challenge-realm-broken-url", lambda p, r: challenge(
        p, 'Bearer realm="http://[::1",service="x"'), "invalid token realm"),
    Hostile("basic-always-401", lambda p, r: challenge(p, 'Basic realm="x"'),
            "failed (401)"),
]


# ---------------------------------------------------------------- clients
# Short back-offs: the fault tests retry many times.
FAST_RETRY = RetryPolicy(attempts=4, backoff=0.05, max_backoff=0.2, max_retry_after=3.0)


def settings_for(reg: Registry) -> RegistrySettings:
    roots = (reg.ca_root,) if reg.ca_root else ()
    return RegistrySettings(certs_dirs=roots)


def credential_for(reg: Registry) -> Credential | None:
    return Credential(USER, PASSWORD) if reg.mode != "plain" else None


def client_for(reg: Registry, **kw) -> RegistryClient:
    kw.setdefault("credential", credential_for(reg))
    kw.setdefault("retry", FAST_RETRY)
    return RegistryClient(reg.host, settings=settings_for(reg), **kw)


def proxy_client(proxy: FaultProxy, **kw) -> RegistryClient:
    kw.setdefault("retry", FAST_RETRY)
    kw.setdefault("timeouts", Timeouts(connect=2, read=1.0))
    return RegistryClient(proxy.host, settings=RegistrySettings(), credential=None, **kw)

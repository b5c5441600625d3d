"""Real test servers on 127.0.0.1: distribution's ``docker-registry`` in three set-ups (the
product's ``LocalRegistry``, plus a JWT token issuer that only tests need), a fault-injecting
HTTP proxy, and registry clients configured for each. Each binds a free loopback port,
writes only under its temp dir and is stopped by the process/thread that started it."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
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
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from nbcontainer.localregistry import LocalRegistry, free_port
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
    """Applies to requests whose method and path match; ``times`` = how many (None: all)."""

    method: str
    path: str  # regex
    kind: str  # status | reset | stall | corrupt | reset_request
    times: int | None = 1
    status: int = 503
    retry_after: str | None = None
    after_bytes: int = 0
    stall: float = 5.0

    def matches(self, method: str, path: str) -> bool:
        return (self.times is None or self.times > 0) and method == self.method and \
            re.search(self.path, path) is not None


class FaultProxy:
    """An HTTP/1.1 forwarding proxy in front of a plain-HTTP registry that injects faults."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream = upstream_port
        self.faults: list[Fault] = []
        self.log: list[tuple[str, str, int | str]] = []
        self.port = free_port()
        self._lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: object) -> None:
                pass

            def _handle(self) -> None:
                fault = proxy._take(self.command, self.path)
                n = int(self.headers.get("Content-Length") or 0)
                if fault and fault.kind == "reset_request":
                    self.rfile.read(min(n, fault.after_bytes))
                    proxy.log.append((self.command, self.path, "reset_request"))
                    _rst(self.connection)
                    self.close_connection = True
                    return
                body = self.rfile.read(n) if n else b""
                if fault and fault.kind == "status":
                    proxy.log.append((self.command, self.path, fault.status))
                    data = b'{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}' \
                        if fault.status == 429 else b"service unavailable"
                    self.send_response(fault.status)
                    if fault.retry_after is not None:
                        self.send_header("Retry-After", fault.retry_after)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
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
                    if k.lower() in ("content-length", "transfer-encoding", "connection",
                                     "date", "server"):
                        continue
                    self.send_header(k, v)
                self.send_header("Content-Length", length)
                self.end_headers()
                if self.command == "HEAD":
                    conn.close()
                    return
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
                        conn.close()
                        return
                    if fault and fault.kind == "corrupt" and not corrupted:
                        chunk = bytes([chunk[0] ^ 0xFF]) + chunk[1:]
                        corrupted = True
                    self.wfile.write(chunk)
                    sent += len(chunk)
                conn.close()

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
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

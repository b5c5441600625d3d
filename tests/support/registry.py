"""Real test servers on 127.0.0.1: distribution's ``docker-registry`` in three set-ups, a JWT
token issuer for it, and a fault-injecting HTTP proxy. Each binds a free loopback port,
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
import subprocess
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

USER, PASSWORD = "tester", "s3cret-Pa55word-xyz"
SERVICE, ISSUER = "nbtest-registry", "nbtest-issuer"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, ok: tuple[int, ...], timeout: float = 10.0, ctx=None) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1, context=ctx) as r:
                if r.status in ok:
                    return
        except urllib.error.HTTPError as e:
            if e.code in ok:
                return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server at {url} did not come up")


# ---------------------------------------------------------------- certificates
def make_tls_cert(d: Path) -> tuple[Path, Path]:
    key, crt = d / "domain.key", d / "domain.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "7",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(key), "-out", str(crt)], check=True, capture_output=True)
    return crt, key


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
    mode: str  # plain | tls | token
    dir: Path
    port: int = 0
    proc: subprocess.Popen | None = None
    issuer: TokenIssuer | None = None
    ca_root: Path | None = None  # a certs.d root: <root>/<host>/ca.crt
    ca_dir: Path | None = None  # a dir holding only ca.crt (skopeo --cert-dir)
    extra: dict = field(default_factory=dict)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.mode == 'tls' else 'http'}://{self.host}"

    def start(self) -> Registry:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        http_conf: dict = {"addr": self.host, "secret": secrets.token_hex(16)}
        conf: dict = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(self.dir / "storage")},
                        "delete": {"enabled": True}},
            "http": http_conf,
        }
        if self.mode == "tls":
            crt, key = make_tls_cert(self.dir)
            http_conf["tls"] = {"certificate": str(crt), "key": str(key)}
            pw = subprocess.run(["htpasswd", "-Bbn", USER, PASSWORD], check=True,
                                capture_output=True).stdout
            (self.dir / "htpasswd").write_bytes(pw)
            conf["auth"] = {"htpasswd": {"realm": "test", "path": str(self.dir / "htpasswd")}}
            self.ca_root = self.dir / "certs.d"
            (self.ca_root / self.host).mkdir(parents=True)
            (self.ca_root / self.host / "ca.crt").write_bytes(crt.read_bytes())
            self.ca_dir = self.ca_root / self.host
        elif self.mode == "token":
            self.issuer = TokenIssuer(self.dir).start()
            conf["auth"] = {"token": {"realm": self.issuer.realm, "service": SERVICE,
                                      "issuer": ISSUER,
                                      "rootcertbundle": str(self.issuer.cert_path)}}
        (self.dir / "config.yml").write_text(json.dumps(conf))  # JSON is YAML
        log = open(self.dir / "registry.log", "wb")  # noqa: SIM115 - lives with the process
        self.proc = subprocess.Popen(["docker-registry", "serve", str(self.dir / "config.yml")],
                                     stdout=log, stderr=subprocess.STDOUT)
        ctx = None
        if self.mode == "tls":
            import ssl
            ctx = ssl.create_default_context(cafile=str(self.ca_dir / "ca.crt"))
        _wait_http(self.url + "/v2/", (200, 401), ctx=ctx)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
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


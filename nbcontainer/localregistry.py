"""A registry on 127.0.0.1 for classrooms, CI and offline demos.

Runs distribution's ``docker-registry`` binary (Debian: ``apt-get install docker-registry``)
from a scratch directory that holds its configuration, storage and log: plain HTTP, or TLS
with a self-signed certificate for 127.0.0.1 and, optionally, one htpasswd (bcrypt) user.
nbcontainer reaches a plain one through ``NBCONTAINER_REGISTRY_MIRRORS=http://<host>`` or
by its host name (loopback registries may speak HTTP); a TLS one through
``NBCONTAINER_CERTS_DIR=<certs_root>``, the ``certs.d`` layout Docker and podman read.

    with LocalRegistry(Path("/tmp/reg"), tls=True, user="student", password=pw) as reg:
        ...  # push to f"{reg.host}/course/image:1"
"""

from __future__ import annotations

import json
import secrets
import shutil
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from .errors import NbcontainerError

BINARY = "docker-registry"
_START_ATTEMPTS = 3  # a free port can be taken between choosing it and the server's bind


class LocalRegistryError(NbcontainerError):
    """A local registry could not be set up or did not come up."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LocalRegistry:
    """One ``docker-registry`` process serving from ``dir`` on 127.0.0.1.

    ``tls`` adds a self-signed certificate; ``user``/``password`` an htpasswd user;
    ``auth`` is a distribution ``auth:`` section for set-ups this class does not make
    itself (a token service, say). ``port`` 0 picks a free one."""

    dir: Path
    tls: bool = False
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    auth: dict[str, Any] | None = None
    port: int = 0
    binary: str = BINARY
    timeout: float = 15.0
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _log: IO[bytes] | None = field(default=None, init=False, repr=False)

    # ------------------------------------------------------------------ where it is
    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}"

    @property
    def ca_cert(self) -> Path | None:
        """The certificate clients must trust (TLS only)."""
        return self.dir / "domain.crt" if self.tls else None

    @property
    def certs_root(self) -> Path | None:
        """A ``certs.d`` root holding ``<host>/ca.crt`` (TLS only)."""
        return self.dir / "certs.d" if self.tls else None

    @property
    def log_path(self) -> Path:
        return self.dir / "registry.log"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # ------------------------------------------------------------------ life cycle
    def start(self) -> LocalRegistry:
        """Write the configuration, start the server and wait until ``/v2/`` answers."""
        self._check_settings()
        if shutil.which(self.binary) is None:
            raise LocalRegistryError(f"{self.binary} is not installed",
                                     hint="apt-get install docker-registry")
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.user is not None:
            self._write_htpasswd()
        pick_port = self.port == 0
        attempt = 0
        while True:
            attempt += 1
            if pick_port:
                self.port = free_port()
            if self.tls:
                self._write_certificate()
            try:
                self._launch()
                return self
            except LocalRegistryError:
                self.stop()
                if not (pick_port and attempt < _START_ATTEMPTS and
                        "address already in use" in self._log_tail()):
                    raise

    def stop(self) -> None:
        """Stop the server (its directory stays, with the storage and the log)."""
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> LocalRegistry:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # ------------------------------------------------------------------ set-up
    def _check_settings(self) -> None:
        if (self.user is None) != (self.password is None):
            raise LocalRegistryError("a local registry user needs both a name and a password",
                                     hint="pass user= and password= together")
        if self.user is not None and self.auth is not None:
            raise LocalRegistryError("a local registry takes an htpasswd user or an auth "
                                     "section, not both", hint="drop user= or auth=")
        if self.user is not None and ":" in self.user:
            raise LocalRegistryError(f"user name {self.user!r} contains ':'",
                                     hint="htpasswd separates name and hash with ':'")

    def config(self) -> dict[str, Any]:
        """distribution's configuration for this registry (JSON is YAML)."""
        http: dict[str, Any] = {"addr": self.host, "secret": secrets.token_hex(16)}
        conf: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(self.dir / "storage")},
                        "delete": {"enabled": True}},
            "http": http,
        }
        if self.tls:
            http["tls"] = {"certificate": str(self.dir / "domain.crt"),
                           "key": str(self.dir / "domain.key")}
        if self.user is not None:
            conf["auth"] = {"htpasswd": {"realm": "nbcontainer-local",
                                         "path": str(self.dir / "htpasswd")}}
        elif self.auth is not None:
            conf["auth"] = self.auth
        return conf

    def _write_certificate(self) -> None:
        """A self-signed certificate for 127.0.0.1 and localhost, and the certs.d copy."""
        key, crt = self.dir / "domain.key", self.dir / "domain.crt"
        _tool(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
               "-subj", "/CN=localhost",
               "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
               "-keyout", str(key), "-out", str(crt)], package="openssl")
        root = self.dir / "certs.d"
        shutil.rmtree(root, ignore_errors=True)
        host_dir = root / self.host
        host_dir.mkdir(parents=True)
        (host_dir / "ca.crt").write_bytes(crt.read_bytes())

    def _write_htpasswd(self) -> None:
        assert self.user is not None and self.password is not None
        # -i: the password comes on stdin, not on a command line other users can read
        line = _tool(["htpasswd", "-niB", self.user], package="apache2-utils",
                     stdin=self.password.encode())
        (self.dir / "htpasswd").write_bytes(line)

    def _launch(self) -> None:
        conf = self.dir / "config.yml"
        conf.write_text(json.dumps(self.config(), indent=1))
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - lives with the process
        self._proc = subprocess.Popen([self.binary, "serve", str(conf)], stdout=self._log,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self._wait_ready()

    def _wait_ready(self) -> None:
        ctx = ssl.create_default_context(cafile=str(self.ca_cert)) if self.tls else None
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise LocalRegistryError(
                    f"{self.binary} on {self.host} exited during start-up: "
                    f"{self._log_tail() or 'no output'}", hint=f"see {self.log_path}")
            if _answers(self.url + "/v2/", ctx):
                return
            time.sleep(0.05)
        raise LocalRegistryError(f"{self.binary} on {self.host} did not answer within "
                                 f"{self.timeout:g}s", hint=f"see {self.log_path}")

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:].strip()
        except OSError:
            return ""


def _answers(url: str, ctx: ssl.SSLContext | None) -> bool:
    """``/v2/`` answers 200, or 401 when auth is on."""
    try:
        with urllib.request.urlopen(url, timeout=1, context=ctx):
            return True
    except urllib.error.HTTPError as e:
        return e.code == 401
    except OSError:
        return False


def _tool(argv: list[str], *, package: str, stdin: bytes | None = None) -> bytes:
    if shutil.which(argv[0]) is None:
        raise LocalRegistryError(f"{argv[0]} is not installed", hint=f"apt-get install {package}")
    proc = subprocess.run(argv, input=stdin, capture_output=True)
    if proc.returncode != 0:
        raise LocalRegistryError(f"{argv[0]} failed: {proc.stderr.decode(errors='replace')}",
                                 hint="the local registry's TLS/password set-up needs it")
    return proc.stdout

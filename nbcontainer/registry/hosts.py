"""Per-registry connection settings: API host names, insecure registries, CA directories.

Where the settings come from, later sources adding to earlier ones:

* Docker's ``/etc/docker/daemon.json`` (``insecure-registries``, ``registry-mirrors``), so a
  machine set up for Docker works unchanged;
* ``$NBCONTAINER_REGISTRIES_CONF`` or ``~/.config/nbcontainer/registries.json`` (same keys);
* environment: ``NBCONTAINER_INSECURE_REGISTRIES`` (comma-separated hosts or CIDRs),
  ``NBCONTAINER_REGISTRY_MIRRORS`` (comma-separated URLs for docker.io),
  ``NBCONTAINER_CERTS_DIR`` (colon-separated extra ``certs.d`` roots, searched first).

"Plain HTTP allowed", "skip TLS verification" and "extra CA" are kept apart on purpose (users
keep tripping over clients that mix them up). Loopback registries (``localhost``,
``127.0.0.0/8``, ``::1``) may fall back to plain HTTP, as in Docker, but HTTPS on them is still
verified; registries listed as insecure may use plain HTTP *and* unverified HTTPS, as in Docker.
"""

from __future__ import annotations

import ipaddress
import json
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

DOCKER_HUB_DOMAINS = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
DOCKER_HUB_API = "registry-1.docker.io"
DOCKER_HUB_AUTH_KEY = "https://index.docker.io/v1/"


def api_host(domain: str) -> str:
    """Where the ``/v2/`` API of a reference's domain lives."""
    return DOCKER_HUB_API if domain in DOCKER_HUB_DOMAINS else domain


def split_host_port(host: str) -> tuple[str, int | None]:
    if host.startswith("["):  # [::1]:5000
        addr, _, rest = host[1:].partition("]")
        return addr, int(rest[1:]) if rest.startswith(":") else None
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit() and ":" not in name:
        return name, int(port)
    return host, None


def is_loopback(host: str) -> bool:
    name, _ = split_host_port(host)
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _env_list(name: str, sep: str = ",") -> list[str]:
    return [x.strip() for x in os.environ.get(name, "").split(sep) if x.strip()]


def user_config_path() -> Path:
    env = os.environ.get("NBCONTAINER_REGISTRIES_CONF")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(xdg) / "nbcontainer" / "registries.json"


@dataclass(frozen=True)
class RegistrySettings:
    insecure: tuple[str, ...] = ()
    mirrors: tuple[str, ...] = ()
    certs_dirs: tuple[Path, ...] = ()

    @classmethod
    def load(cls) -> RegistrySettings:
        insecure: list[str] = []
        mirrors: list[str] = []
        sources = [Path("/etc/docker/daemon.json"), user_config_path()]
        for src in sources:
            data = _read_json(src)
            insecure += [str(x) for x in data.get("insecure-registries") or []]
            mirrors += [str(x) for x in data.get("registry-mirrors") or []]
        insecure += _env_list("NBCONTAINER_INSECURE_REGISTRIES")
        env_mirrors = _env_list("NBCONTAINER_REGISTRY_MIRRORS")
        if env_mirrors:  # an explicit env var is the user's choice for this process
            mirrors = env_mirrors
        certs = [Path(p).expanduser() for p in _env_list("NBCONTAINER_CERTS_DIR", ":")]
        xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
        certs += [Path(xdg) / "containers" / "certs.d", Path("/etc/containers/certs.d"),
                  Path("/etc/docker/certs.d")]
        return cls(tuple(insecure), tuple(mirrors), tuple(certs))

    def is_insecure(self, host: str) -> bool:
        """Listed by the user as insecure (plain HTTP and unverified TLS allowed)."""
        name, _ = split_host_port(host)
        for entry in self.insecure:
            entry = entry.strip().removeprefix("http://").removeprefix("https://").rstrip("/")
            if entry in (host, name):
                return True
            if "/" in entry:
                try:
                    if ipaddress.ip_address(name) in ipaddress.ip_network(entry, strict=False):
                        return True
                except ValueError:
                    continue
        return False

    def allows_http(self, host: str) -> bool:
        return is_loopback(host) or self.is_insecure(host)

    def cert_dir_files(self, host: str) -> tuple[list[Path], list[tuple[Path, Path]]]:
        """CA files (``*.crt``) and client pairs (``x.cert`` + ``x.key``) for ``host``,
        from the first ``certs.d`` root that has a directory for it (Docker's layout)."""
        cas: list[Path] = []
        pairs: list[tuple[Path, Path]] = []
        for root in self.certs_dirs:
            d = root / host
            if not d.is_dir():
                continue
            for p in sorted(d.iterdir()):
                if p.suffix == ".crt":
                    cas.append(p)
                elif p.suffix == ".cert" and p.with_suffix(".key").is_file():
                    pairs.append((p, p.with_suffix(".key")))
        return cas, pairs

    def ssl_context(self, host: str, verify: bool = True) -> ssl.SSLContext:
        ctx = ssl.create_default_context()  # the system store
        cas, pairs = self.cert_dir_files(host)
        for ca in cas:
            ctx.load_verify_locations(cafile=str(ca))
        for cert, key in pairs:
            ctx.load_cert_chain(str(cert), str(key))
        if not verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

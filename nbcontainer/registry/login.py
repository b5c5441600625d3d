"""``login``/``logout``: check credentials against the registry, then save them like Docker."""

from __future__ import annotations

from pathlib import Path

from ..errors import RegistryError
from .client import RegistryClient
from .credentials import Credential, erase_credential, store_credential
from .errors import AuthenticationError
from .hosts import DOCKER_HUB_DOMAINS, RegistrySettings


def registry_domain(registry: str | None) -> str:
    """``https://index.docker.io/v1/``, ``registry-1.docker.io``, ``None`` → ``docker.io``;
    ``https://host:5000/`` → ``host:5000``."""
    if not registry:
        return "docker.io"
    text = registry.strip()
    for prefix in ("https://", "http://"):
        text = text.removeprefix(prefix)
    text = text.split("/", 1)[0]
    if not text:
        raise RegistryError(f"invalid registry {registry!r}", hint="give a host, e.g. ghcr.io")
    return "docker.io" if text in DOCKER_HUB_DOMAINS else text


def login(
    registry: str | None, username: str, password: str, *, config_path: Path | None = None,
    tls_verify: bool | None = None, settings: RegistrySettings | None = None,
    verify: bool = True,
) -> str:
    """Verify ``username``/``password`` with the registry and save them; returns where they
    were saved (the config file, or the credential helper)."""
    domain = registry_domain(registry)
    if not username or not password:
        raise RegistryError("login needs a user name and a password",
                            hint="use -u USER and --password-stdin")
    cred = Credential(username, password)
    if verify:
        with RegistryClient(domain, credential=cred, tls_verify=tls_verify,
                            settings=settings) as client:
            client.ping()
            ch = client.auth.challenge
            if ch is not None:
                if ch.scheme == "bearer":
                    client.auth.headers(())  # a token for no scope proves the password
                else:
                    resp = client.request("GET", "/v2/", action=f"logging in to {domain}")
                    resp.close()
                    if resp.status != 200:
                        raise AuthenticationError(f"login to {domain} failed", status=resp.status)
    return store_credential(domain, cred, config_path)


def logout(registry: str | None, *, config_path: Path | None = None) -> bool:
    """Forget saved credentials; False when there were none."""
    return erase_credential(registry_domain(registry), config_path)

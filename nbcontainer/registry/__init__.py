"""Registry client: pull and push images, log in and out, list tags.

The CLI and the notebook call only what is exported here::

    pull(store, "debian:bookworm", platform=None, all_platforms=False, progress=fn) -> Digest
    push(store, "localhost:5000/app:1", dest_ref=None, progress=fn, digestfile=None) -> Digest
    login(registry, username, password) -> str          # where the credentials went
    logout(registry) -> bool
    list_tags("localhost:5000/app") -> list[str]

:class:`RegistryClient` is the protocol client for one registry when more control is needed.
"""

from __future__ import annotations

from ..oci.reference import Reference
from .client import AUTO, RegistryClient
from .credentials import Credential
from .credentials import lookup as lookup_credential
from .errors import AuthenticationError, RegistryResponseError, TransportError
from .hosts import RegistrySettings
from .login import login, logout, registry_domain
from .pull import PullResult, pull, pull_image
from .push import PushResult, push, push_image
from .transport import RetryPolicy, Timeouts


def list_tags(
    repository: str | Reference, *, tls_verify: bool | None = None,
    credential: Credential | str | None = AUTO, settings: RegistrySettings | None = None,
) -> list[str]:
    """Tags of a repository (``localhost:5000/app``, ``debian``), sorted, all pages."""
    ref = repository if isinstance(repository, Reference) else \
        Reference.parse(repository, default_tag=False)
    with RegistryClient(ref.domain, tls_verify=tls_verify, credential=credential,
                        settings=settings) as client:
        return sorted(client.list_tags(ref.path))


def catalog(
    registry: str, *, tls_verify: bool | None = None,
    credential: Credential | str | None = AUTO, settings: RegistrySettings | None = None,
) -> list[str]:
    """Repositories of a registry (``/v2/_catalog``), where the registry allows it."""
    with RegistryClient(registry_domain(registry), tls_verify=tls_verify,
                        credential=credential, settings=settings) as client:
        return client.catalog()


__all__ = [
    "AUTO", "AuthenticationError", "Credential", "PullResult", "PushResult", "RegistryClient",
    "RegistryResponseError", "RegistrySettings", "RetryPolicy", "Timeouts", "TransportError",
    "catalog", "list_tags", "login", "logout", "lookup_credential", "pull", "pull_image",
    "push", "push_image", "registry_domain",
]

"""Pull-through mirrors for Docker Hub (``registry-mirrors`` as in Docker's daemon.json).

Mirrors are tried in order for *pulls* from docker.io; the first one that answers the
manifest serves the blobs too; if all fail, Docker Hub itself is used. Pushes never go to a
mirror.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from .hosts import DOCKER_HUB_DOMAINS, RegistrySettings


@dataclass(frozen=True)
class Endpoint:
    """One place to send ``/v2/`` requests for a reference's domain."""

    host: str  # host[:port]
    scheme: str | None = None  # None = decide (https, or http where allowed)
    mirror: bool = False

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}" if self.scheme else self.host


def parse_mirror(url: str) -> Endpoint:
    if "://" not in url:
        url = "https://" + url
    parts = urlsplit(url)
    if not parts.netloc:
        raise ValueError(f"invalid mirror URL {url!r}")
    return Endpoint(parts.netloc, parts.scheme or "https", mirror=True)


def pull_endpoints(domain: str, api_host: str, settings: RegistrySettings) -> list[Endpoint]:
    endpoints: list[Endpoint] = []
    if domain in DOCKER_HUB_DOMAINS:
        for m in settings.mirrors:
            try:
                endpoints.append(parse_mirror(m))
            except ValueError:
                continue
    endpoints.append(Endpoint(api_host))
    return endpoints

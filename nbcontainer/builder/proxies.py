"""Proxy settings for RUN steps, as BuildKit's predefined proxy build args.

``HTTP_PROXY``, ``HTTPS_PROXY``, ``FTP_PROXY``, ``NO_PROXY`` and ``ALL_PROXY`` (either case)
reach every RUN without an ``ARG``, and stay out of the image config, history, provenance and
cache keys (a proxy URL often carries a password). Three sources, per name (either case):

1. ``--build-arg`` (as with docker: declared with ``ARG``, it is an ordinary build arg);
2. ``proxies.default`` of ``~/.docker/config.json`` (``$DOCKER_CONFIG``): the setting docker
   applies to containers and builds, so it wins over the environment, which may name a
   proxy only the host can reach;
3. this process's environment (what the notebook's own pip and curl use).

The source that sets a name decides both of its cases; a value given in one case only is
given in both (docker does so for config.json; curl reads ``http_proxy`` in lower case only,
other tools the upper case). Values from 2 and 3 never feed a declared ``ARG``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

NAMES = ("HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY")
CONFIG_KEYS = {"HTTP_PROXY": "httpProxy", "HTTPS_PROXY": "httpsProxy",
               "FTP_PROXY": "ftpProxy", "NO_PROXY": "noProxy", "ALL_PROXY": "allProxy"}


def _both_cases(name: str, upper: str | None, lower: str | None) -> dict[str, str]:
    if upper is None and lower is None:
        return {}
    return {name: upper if upper is not None else str(lower),
            name.lower(): lower if lower is not None else str(upper)}


def from_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The proxy variables of ``environ`` (default: this process's), both cases filled."""
    env = os.environ if environ is None else environ
    out: dict[str, str] = {}
    for name in NAMES:
        out.update(_both_cases(name, env.get(name) or None, env.get(name.lower()) or None))
    return out


def docker_config_path() -> Path:
    """``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json`` (registry/credentials.py's
    rule; not imported from there, so a cached build loads no registry client)."""
    base = os.environ.get("DOCKER_CONFIG")
    return (Path(base).expanduser() if base else Path.home() / ".docker") / "config.json"


def from_docker_config(path: Path | None = None) -> dict[str, str]:
    """``proxies.default`` of docker's client configuration, both cases of each name; an
    unreadable or malformed file gives nothing (docker builds without it too)."""
    try:
        doc = json.loads((path or docker_config_path()).read_text())
        proxies = doc.get("proxies", {}).get("default", {})
    except (OSError, ValueError, AttributeError):
        return {}
    out: dict[str, str] = {}
    if not isinstance(proxies, dict):
        return out
    for name, key in CONFIG_KEYS.items():
        value = proxies.get(key)
        if isinstance(value, str) and value:
            out.update(_both_cases(name, value, value))
    return out


def ambient(environ: Mapping[str, str] | None = None,
            config: Path | None = None) -> dict[str, str]:
    """The proxies a build finds around it: docker's configuration over the environment."""
    return overlay(from_environment(environ), from_docker_config(config))


def overlay(below: Mapping[str, str], above: Mapping[str, str]) -> dict[str, str]:
    """``below`` with every name (both cases) that ``above`` sets taken from ``above``."""
    out = dict(below)
    for name in NAMES:
        if name in above or name.lower() in above:
            out.pop(name, None)
            out.pop(name.lower(), None)
            out.update({k: above[k] for k in (name, name.lower()) if k in above})
    return out


def redact(value: str) -> str:
    """A proxy URL without its password (``http://user:***@host:3128``), for ``info``."""
    try:
        parts = urlsplit(value if "://" in value else "//" + value)
    except ValueError:
        return "***"
    if parts.password is None:
        return value
    netloc = parts.netloc.rsplit("@", 1)[1]
    return value.replace(parts.netloc, f"{parts.username}:***@{netloc}", 1)

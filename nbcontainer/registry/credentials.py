"""Where credentials live: Docker's ``config.json``, credential helpers, containers' auth.json.

Lookup order (as go-containerregistry): ``$DOCKER_CONFIG/config.json`` or
``~/.docker/config.json`` (``credHelpers[host]``, else ``credsStore``, else ``auths``), then
``$REGISTRY_AUTH_FILE``, then ``$XDG_RUNTIME_DIR/containers/auth.json``. ``login`` and
``logout`` write Docker's file the way ``docker login`` does, through the configured helper
when there is one. Secrets are registered for redaction as soon as they are read, and never
appear in a repr.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import RegistryError
from .errors import redact, register_secret
from .hosts import DOCKER_HUB_AUTH_KEY, DOCKER_HUB_DOMAINS

IDENTITY_TOKEN_USER = "<token>"


@dataclass(frozen=True)
class Credential:
    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)  # OAuth2 refresh token

    def __post_init__(self) -> None:
        register_secret(self.password)
        register_secret(self.identity_token)
        if self.username and self.password:
            register_secret(self.basic_value())

    def __repr__(self) -> str:
        return f"Credential(username={self.username!r}, secret=***)"

    def basic_value(self) -> str:
        return base64.b64encode(f"{self.username}:{self.password}".encode()).decode()

    @property
    def empty(self) -> bool:
        return not (self.password or self.identity_token)


def auth_key(domain: str) -> str:
    """The key Docker uses for a registry in ``auths``/helpers (Docker Hub's is a URL)."""
    return DOCKER_HUB_AUTH_KEY if domain in DOCKER_HUB_DOMAINS else domain


def _normalize_key(key: str) -> str:
    key = key.strip()
    for prefix in ("https://", "http://"):
        key = key.removeprefix(prefix)
    key = key.split("/", 1)[0]
    return "docker.io" if key in DOCKER_HUB_DOMAINS else key


def docker_config_path() -> Path:
    base = os.environ.get("DOCKER_CONFIG")
    return (Path(base).expanduser() if base else Path.home() / ".docker") / "config.json"


def auth_file_paths() -> list[Path]:
    paths = [docker_config_path()]
    if os.environ.get("REGISTRY_AUTH_FILE"):
        paths.append(Path(os.environ["REGISTRY_AUTH_FILE"]).expanduser())
    if os.environ.get("XDG_RUNTIME_DIR"):
        paths.append(Path(os.environ["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
    return paths


def _read_config(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise RegistryError(
            f"cannot read credentials file {path}: {type(e).__name__}",
            hint="fix or remove the file (it must be JSON like Docker's config.json)",
        ) from e  # where the JSON breaks, or why the file cannot be read
    return data if isinstance(data, dict) else {}


def _decode_auth_entry(entry: object) -> Credential | None:
    # Tolerate empty {} entries (Docker Desktop writes them when a helper holds the secret).
    if not isinstance(entry, dict):
        return None
    token = entry.get("identitytoken") or ""
    user, password = entry.get("username") or "", entry.get("password") or ""
    if entry.get("auth"):
        try:
            user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
    cred = Credential(user, password, token)
    return None if cred.empty else cred


def _find_entry(auths: dict, domain: str) -> object:
    want = _normalize_key(domain)
    if domain in auths:
        return auths[domain]
    for key, entry in auths.items():
        if _normalize_key(key) == want:
            return entry
    return None


# ---------------------------------------------------------------- credential helpers
def _helper(name: str, action: str, payload: str) -> str:
    exe = f"docker-credential-{name}"
    try:
        proc = subprocess.run([exe, action], input=payload.encode(), capture_output=True,
                              timeout=60, check=False)
    except FileNotFoundError:
        raise RegistryError(
            f"credential helper {exe} is not installed",
            hint="install it, or remove credsStore/credHelpers from your Docker config",
        ) from None
    except subprocess.TimeoutExpired:
        raise RegistryError(f"credential helper {exe} did not answer within 60 s") from None
    out = proc.stdout.decode("utf-8", "replace")
    if proc.returncode != 0:
        text = (out.strip() or proc.stderr.decode("utf-8", "replace").strip())
        if action == "get" and "credentials not found" in text.lower():
            return ""
        if action == "erase" and "not found" in text.lower():
            return ""
        raise RegistryError(
            f"credential helper {exe} {action} failed: {redact(text.splitlines()[0] if text else str(proc.returncode))[:200]}"
        )
    return out


def helper_get(name: str, server: str) -> Credential | None:
    out = _helper(name, "get", server)
    if not out.strip():
        return None
    try:
        doc = json.loads(out)
    except ValueError:
        # no cause: the helper's answer holds the secret
        raise RegistryError(f"credential helper docker-credential-{name} returned invalid JSON") from None
    user, secret = doc.get("Username") or "", doc.get("Secret") or ""
    if user == IDENTITY_TOKEN_USER:
        return Credential("", "", secret)
    cred = Credential(user, secret)
    return None if cred.empty else cred


def helper_store(name: str, server: str, cred: Credential) -> None:
    user, secret = (IDENTITY_TOKEN_USER, cred.identity_token) if cred.identity_token \
        else (cred.username, cred.password)
    _helper(name, "store", json.dumps({"ServerURL": server, "Username": user, "Secret": secret}))


def helper_erase(name: str, server: str) -> None:
    _helper(name, "erase", server)


# ---------------------------------------------------------------- lookup
def _helper_name(config: dict, domain: str) -> str | None:
    helpers = config.get("credHelpers") or {}
    if isinstance(helpers, dict):
        for key, name in helpers.items():
            if _normalize_key(key) == _normalize_key(domain) and name:
                return str(name)
    store = config.get("credsStore")
    return str(store) if store else None


def lookup(domain: str) -> Credential | None:
    """Credentials for a reference's domain (``docker.io``, ``ghcr.io``, ``host:5000``)."""
    for i, path in enumerate(auth_file_paths()):
        config = _read_config(path)
        if not config:
            continue
        if i == 0:  # helpers are a Docker config feature
            helper = _helper_name(config, domain)
            if helper:
                cred = helper_get(helper, auth_key(domain))
                if cred is None and auth_key(domain) != domain:
                    cred = helper_get(helper, domain)
                if cred is not None:
                    return cred
                # Docker also falls back to auths when a helper knows nothing.
        cred = _decode_auth_entry(_find_entry(config.get("auths") or {}, domain))
        if cred is not None:
            return cred
    return None


# ---------------------------------------------------------------- writing
def _write_config(path: Path, config: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".config-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(config, f, indent="\t")
            f.write("\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def store_credential(domain: str, cred: Credential, path: Path | None = None) -> str:
    """Save like ``docker login``; returns where ("helper <name>" or the file path)."""
    path = path or docker_config_path()
    config = _read_config(path)
    key = auth_key(domain)
    helper = _helper_name(config, domain)
    auths = config.setdefault("auths", {})
    if helper:
        helper_store(helper, key, cred)
        auths[key] = {}  # as Docker: an empty entry marks the registry as logged in
        _write_config(path, config)
        return f"credential helper docker-credential-{helper}"
    entry: dict[str, str] = {}
    if cred.identity_token:
        entry["identitytoken"] = cred.identity_token
        entry["auth"] = base64.b64encode(f"{cred.username}:".encode()).decode()
    else:
        entry["auth"] = cred.basic_value()
    for k in [k for k in auths if _normalize_key(k) == _normalize_key(domain) and k != key]:
        del auths[k]
    auths[key] = entry
    _write_config(path, config)
    return str(path)


def erase_credential(domain: str, path: Path | None = None) -> bool:
    """Forget credentials like ``docker logout``; False when there were none."""
    path = path or docker_config_path()
    config = _read_config(path)
    found = False
    helper = _helper_name(config, domain)
    if helper:
        found = helper_get(helper, auth_key(domain)) is not None
        if found:
            helper_erase(helper, auth_key(domain))
    auths = config.get("auths") or {}
    for k in [k for k in auths if _normalize_key(k) == _normalize_key(domain)]:
        del auths[k]
        found = True
    if found:
        _write_config(path, config)
    return found

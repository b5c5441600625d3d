"""The auth handshake: ``WWW-Authenticate`` challenges, Basic, and Bearer tokens per scope.

Tokens are cached per (realm, service, scope set) and a cached token is reused only for
requests its scopes cover. A 401 whose challenge names a scope we have not got (a push after
a pull-only HEAD: the oras-py bug) fetches a new token for the union instead of reusing the old
one. Refresh/identity tokens use the OAuth2 ``POST`` form, falling back to ``GET``.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

from ..errors import RegistryError
from . import responses
from .credentials import Credential
from .errors import AuthenticationError, register_secret, response_error
from .transport import Response, Transport

_PARAM_RE = re.compile(r'([A-Za-z0-9_-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)')
CLIENT_ID = "nbcontainer"


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lower case: "bearer" or "basic"
    params: dict[str, str] = field(default_factory=dict)

    @property
    def scopes(self) -> tuple[str, ...]:
        return tuple(self.params.get("scope", "").split()) if self.params.get("scope") else ()


def parse_challenges(header: str | None) -> list[Challenge]:
    """Parse ``WWW-Authenticate`` (a few registries send several challenges in one header)."""
    if not header:
        return []
    out: list[Challenge] = []
    for m in re.finditer(r"(?:^|,)\s*(Bearer|Basic)\s+", header, re.IGNORECASE):
        start = m.end()
        nxt = re.search(r",\s*(Bearer|Basic)\s+", header[start:], re.IGNORECASE)
        chunk = header[start: start + nxt.start()] if nxt else header[start:]
        params = {k.lower(): (v[1:-1].replace('\\"', '"') if v.startswith('"') else v)
                  for k, v in _PARAM_RE.findall(chunk)}
        out.append(Challenge(m.group(1).lower(), params))
    if not out and header.strip().lower() in ("basic", "bearer"):
        out.append(Challenge(header.strip().lower()))
    return out


def merge_scopes(*groups: Iterable[str]) -> tuple[str, ...]:
    """Union of scopes, merging actions per resource: ``repository:a:pull`` +
    ``repository:a:push`` → ``repository:a:pull,push``."""
    resources: dict[str, set[str]] = {}
    order: list[str] = []
    for group in groups:
        for scope in group:
            kind_name, _, actions = scope.rpartition(":")
            if not kind_name:
                continue
            if kind_name not in resources:
                resources[kind_name] = set()
                order.append(kind_name)
            resources[kind_name].update(a for a in actions.split(",") if a)
    return tuple(f"{k}:{','.join(sorted(resources[k]))}" for k in order)


def covers(have: tuple[str, ...], need: tuple[str, ...]) -> bool:
    got: dict[str, set[str]] = {}
    for s in have:
        k, _, a = s.rpartition(":")
        got.setdefault(k, set()).update(a.split(","))
    for s in need:
        k, _, a = s.rpartition(":")
        if k not in got:
            return False
        if "*" not in got[k] and not set(a.split(",")) <= got[k]:
            return False
    return True


def repo_scope(repo: str, *actions: str) -> str:
    return f"repository:{repo}:{','.join(actions)}"


@dataclass
class _Token:
    value: str = field(repr=False)
    scopes: tuple[str, ...]
    expires: float

    def __repr__(self) -> str:
        return f"_Token(scopes={self.scopes}, value=***)"


class Authenticator:
    """Answers "which Authorization header for this request?" for one registry host."""

    def __init__(
        self, transport: Transport, registry: str,
        credential: Callable[[], Credential | None],
    ) -> None:
        self.transport = transport
        self.registry = registry
        self._credential_fn = credential
        self._credential: Credential | None = None
        self._credential_loaded = False
        self.challenge: Challenge | None = None
        self._tokens: dict[tuple[str, str], list[_Token]] = {}
        self._refresh_token: str = ""
        self._lock = threading.RLock()
        self.token_requests = 0  # for tests and diagnostics

    def __repr__(self) -> str:
        scheme = self.challenge.scheme if self.challenge else "unknown"
        return f"Authenticator(registry={self.registry!r}, scheme={scheme!r})"

    @property
    def credential(self) -> Credential | None:
        with self._lock:
            if not self._credential_loaded:
                self._credential = self._credential_fn()
                self._credential_loaded = True
            return self._credential

    def set_challenge(self, header: str | None) -> None:
        challenges = parse_challenges(header)
        # Prefer Bearer when a registry offers both.
        challenges.sort(key=lambda c: c.scheme != "bearer")
        if challenges:
            with self._lock:
                self.challenge = challenges[0]

    # ------------------------------------------------------------------ headers
    def headers(self, scopes: tuple[str, ...]) -> dict[str, str]:
        ch = self.challenge
        if ch is None:
            return {}
        if ch.scheme == "basic":
            cred = self.credential
            if cred is not None and cred.password:
                return {"Authorization": f"Basic {cred.basic_value()}"}
            return {}
        token = self._cached(ch, scopes)
        if token is None:
            token = self._fetch(ch, scopes)
        return {"Authorization": f"Bearer {token.value}"}

    def retry_after_401(
        self, www_authenticate: str | None, scopes: tuple[str, ...], sent: dict[str, str],
    ) -> bool:
        """After a 401: learn the challenge, get a token covering what the server asks for.
        Returns True when a retry may succeed (something new to send)."""
        old = self.challenge
        self.set_challenge(www_authenticate)
        ch = self.challenge
        if ch is None:
            return False
        if ch.scheme == "basic":
            cred = self.credential
            return bool(cred and cred.password) and (
                old is None or old.scheme != "basic" or "Authorization" not in sent)
        need = merge_scopes(scopes, ch.scopes)
        token = self._fetch(ch, need)
        return sent.get("Authorization") != f"Bearer {token.value}"

    # ------------------------------------------------------------------ tokens
    def _key(self, ch: Challenge) -> tuple[str, str]:
        return ch.params.get("realm", ""), ch.params.get("service", "")

    def _cached(self, ch: Challenge, scopes: tuple[str, ...]) -> _Token | None:
        now = time.time()
        with self._lock:
            tokens = self._tokens.get(self._key(ch), [])
            tokens[:] = [t for t in tokens if t.expires > now]
            for t in tokens:
                if covers(t.scopes, scopes):
                    return t
        return None

    def _fetch(self, ch: Challenge, scopes: tuple[str, ...]) -> _Token:
        realm, service = self._key(ch)
        if not realm:
            raise AuthenticationError(
                f"{self.registry} asked for a bearer token but named no realm",
                status=401, code="UNAUTHORIZED")
        try:
            realm = responses.resolve_url(realm, realm, "token realm", self.registry)
        except RegistryError as e:
            raise AuthenticationError(e.message, status=401, code="UNAUTHORIZED",
                                      hint=e.hint) from None
        scopes = merge_scopes(scopes)
        with self._lock:
            self.token_requests += 1
            cred = self.credential
            refresh = self._refresh_token or (cred.identity_token if cred else "")
            doc = None
            if refresh:
                doc = self._oauth_refresh(realm, service, scopes, refresh)
            if doc is None:
                doc = self._get_token(realm, service, scopes, cred)
            register_secret(doc.token)
            if doc.refresh_token:
                self._refresh_token = doc.refresh_token
                register_secret(self._refresh_token)
            # Renew a little early so a long transfer never sends an expired token.
            token = _Token(doc.token, scopes, time.time() + doc.expires_in - 10)
            self._tokens.setdefault((realm, service), []).insert(0, token)
            return token

    def _get_token(
        self, realm: str, service: str, scopes: tuple[str, ...], cred: Credential | None,
    ) -> responses.TokenResponse:
        query: list[tuple[str, str]] = []
        if service:
            query.append(("service", service))
        query += [("scope", s) for s in scopes]
        headers = {}
        if cred is not None and cred.password:
            headers["Authorization"] = f"Basic {cred.basic_value()}"
            query.append(("account", cred.username))
        sep = "&" if urlsplit(realm).query else "?"
        url = realm + (sep + urlencode(query) if query else "")
        resp = self.transport.request("GET", url, headers=headers, what="token request")
        return self._token_doc(resp)

    def _oauth_refresh(
        self, realm: str, service: str, scopes: tuple[str, ...], refresh: str,
    ) -> responses.TokenResponse | None:
        form = urlencode({"grant_type": "refresh_token", "refresh_token": refresh,
                          "service": service, "scope": " ".join(scopes),
                          "client_id": CLIENT_ID}).encode()
        resp = self.transport.request(
            "POST", realm, body=form, what="token request",
            headers={"Content-Type": "application/x-www-form-urlencoded"})
        if resp.status in (404, 405):  # no OAuth2 endpoint: use GET with credentials
            resp.snippet()
            return None
        return self._token_doc(resp)

    def _token_doc(self, resp: Response) -> responses.TokenResponse:
        status = resp.status
        if status != 200:
            body = resp.snippet()
            err = response_error(status, body, action="authenticating", registry=self.registry)
            if status in (401, 403):
                hint = (f"check the user name and password for {self.registry}, or log in "
                        f"with `nbcontainer login {self.registry}`")
                raise AuthenticationError(
                    f"authentication to {self.registry} failed ({status}): incorrect credentials "
                    "or access denied", status=status, code="UNAUTHORIZED", hint=hint)
            raise err
        body = resp.read(responses.MAX_TOKEN_BODY, f"the token response of {self.registry}")
        return responses.token_response(body, self.registry)

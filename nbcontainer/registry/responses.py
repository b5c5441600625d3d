"""What registries send, read strictly: the headers the protocol depends on and the small JSON
bodies (token responses, tag and repository lists).

A registry, a proxy in front of it or a token service can send anything. Each reader here
returns a typed value or raises :class:`~nbcontainer.errors.RegistryError` saying which
header or field was wrong; none lets a malformed value through to become a crash later
(``int()`` of a 5,000-digit length, ``urljoin`` of ``http://[::1``, a token with a newline
that would split the ``Authorization`` header). Challenges (``WWW-Authenticate``) are parsed in
:mod:`.auth`, error bodies in :mod:`.errors`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from ..errors import NbcontainerError, RegistryError
from ..oci.digest import Digest

_LINK_RE = re.compile(r'<([^>]*)>\s*;\s*rel="?next"?', re.IGNORECASE)
# Upload progress: "0-<last byte>" (distribution answers "0-0" for an empty upload too).
_RANGE_RE = re.compile(r"\s*(?:bytes=)?0-(\d{1,18})\s*")
_CONTENT_RANGE_RE = re.compile(r"\s*bytes\s+(\d{1,18})-(\d{1,18})(?:/(?:\d{1,18}|\*))?\s*")
# RFC 6750 b64token: what may follow "Bearer " without breaking the header.
_TOKEN_RE = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
MAX_TOKEN_BODY = 1 << 20
MAX_LIST_BODY = 16 << 20
# A token is renewed this long before it expires; the service's own lifetime, clamped so a
# hostile expires_in can neither make us ask for a token per request nor keep one forever.
MIN_TOKEN_LIFETIME, MAX_TOKEN_LIFETIME = 60, 24 * 3600


def _bad(what: str, value: str | None, why: str, registry: str = "") -> RegistryError:
    shown = repr(value[:120]) if value is not None else "nothing"
    at = f" from {registry}" if registry else ""
    return RegistryError(f"invalid {what}{at}: {shown} ({why})",
                         hint="the registry (or a proxy in front of it) answered outside the "
                         "distribution protocol; nothing was stored")


def resolve_url(base: str, ref: str, what: str, registry: str = "") -> str:
    """``ref`` (absolute or relative to ``base``) as an absolute http(s) URL."""
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in ref):  # no spaces or control characters
        raise _bad(what, ref, "not a URL", registry)
    try:
        url = urljoin(base, ref)
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as e:
        raise _bad(what, ref, str(e), registry) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _bad(what, ref, "not an http(s) URL", registry)
    return url


def same_origin(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme, pa.netloc) == (pb.scheme, pb.netloc)


def location(value: str | None, current: str, registry: str = "") -> str:
    """An upload session's ``Location`` (the newest one is always the one to use)."""
    if not value:
        raise RegistryError(f"{registry or 'the registry'} answered an upload request without "
                            "a Location header", hint="the registry does not follow the "
                            "distribution protocol; nothing was stored")
    return resolve_url(current, value, "upload Location header", registry)


def next_page(link: str | None, current: str, registry: str = "") -> str | None:
    """The ``rel="next"`` target of a ``Link`` header; it must stay on the same registry,
    where our credentials may go."""
    m = _LINK_RE.search(link) if link else None
    if m is None:
        return None
    url = resolve_url(current, m.group(1), "Link header", registry)
    if not same_origin(url, current):
        raise _bad("Link header", link, "the next page is on another host", registry)
    return url


def upload_range(value: str | None) -> int | None:
    """Bytes an interrupted upload holds (``Range: 0-<last>``); None when not said."""
    m = _RANGE_RE.fullmatch(value) if value else None
    if m is None:
        return None
    last = int(m.group(1))
    # "0-0" means empty as often as one byte: resuming from 0 is always safe.
    return last + 1 if last > 0 else 0


def content_range_start(value: str | None) -> int | None:
    """Where a 206 body starts (``Content-Range: bytes <start>-<end>/<size>``)."""
    m = _CONTENT_RANGE_RE.fullmatch(value) if value else None
    if m is None or int(m.group(2)) < int(m.group(1)):
        return None
    return int(m.group(1))


def content_digest(value: str | None, what: str, registry: str = "") -> Digest | None:
    """``Docker-Content-Digest``; None when absent."""
    if value is None:
        return None
    try:
        return Digest.parse(value.strip())
    except NbcontainerError:
        raise _bad(f"Docker-Content-Digest header of {what}", value, "not a digest",
                   registry) from None


@dataclass(frozen=True)
class TokenResponse:
    token: str
    expires_in: int
    refresh_token: str | None = None


def token_response(body: bytes, registry: str) -> TokenResponse:
    """A token service's JSON: ``token`` or ``access_token`` (a b64token), ``expires_in``
    (seconds, default 60), ``refresh_token``."""
    doc = _json_object(body, f"the token service of {registry}")
    value = doc.get("token") or doc.get("access_token")
    if not isinstance(value, str) or not value:
        raise RegistryError(f"the token service of {registry} returned no token",
                            hint="check the registry's auth configuration")
    if not _TOKEN_RE.fullmatch(value):
        raise RegistryError(f"the token service of {registry} returned a malformed token",
                            hint="a bearer token is letters, digits and -._~+/ only")
    refresh = doc.get("refresh_token")
    if refresh is not None and (not isinstance(refresh, str) or not _TOKEN_RE.fullmatch(refresh)):
        refresh = None  # optional: a bad one only costs a fresh login later
    expires = doc.get("expires_in")
    if not isinstance(expires, int | float) or isinstance(expires, bool) or expires != expires:
        expires = MIN_TOKEN_LIFETIME  # absent or malformed: the spec's default (60 s)
    lifetime = int(min(max(expires, MIN_TOKEN_LIFETIME), MAX_TOKEN_LIFETIME))
    return TokenResponse(value, lifetime, refresh)


def name_list(body: bytes, key: str, what: str) -> list[str]:
    """``{"tags": [...]}`` / ``{"repositories": [...]}``: a list of strings (null: empty)."""
    doc = _json_object(body, what)
    items = doc.get(key)
    if items is None:
        return []
    if not isinstance(items, list) or not all(isinstance(x, str) for x in items):
        raise RegistryError(f"{what}: {key!r} is not a list of names",
                            hint="the registry answered outside the distribution protocol")
    return items


def _json_object(body: bytes, what: str) -> dict[str, object]:
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        doc = None
    if not isinstance(doc, dict):
        raise RegistryError(f"{what} returned invalid JSON (expected an object)",
                            hint="the registry answered outside the distribution protocol")
    return doc

"""Registry failures → one clear :class:`RegistryError` with a hint, and secret redaction.

Registries answer ``{"errors":[{"code","message","detail"}]}``; some (Docker Hub's 429,
distribution's unroutable paths) answer plain text. Either way the user gets one line saying
what failed and one hint saying what to do. Every message passes through :func:`redact` so a
password or token that reached a URL, a header echo or a helper's output is never shown.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any

from ..errors import RegistryError

_SECRETS: set[str] = set()
_SECRETS_LOCK = threading.Lock()
REDACTED = "***"


def register_secret(value: str | None) -> None:
    """Remember a credential or token so :func:`redact` masks it wherever it shows up."""
    if value and len(value) >= 4:  # very short strings would mask ordinary words
        with _SECRETS_LOCK:
            _SECRETS.add(value)


def redact(text: str) -> str:
    if not text:
        return text
    with _SECRETS_LOCK:
        secrets = sorted(_SECRETS, key=len, reverse=True)
    for s in secrets:
        if s in text:
            text = text.replace(s, REDACTED)
    return text


class RegistryResponseError(RegistryError):
    """A registry answered with an error status. ``code`` is the first distribution error
    code (``MANIFEST_UNKNOWN``, ``DENIED`` …) or ``None`` for plain-text bodies."""

    def __init__(
        self, message: str, *, status: int, code: str | None = None,
        hint: str | None = None, retry_after: float | None = None,
    ) -> None:
        super().__init__(redact(message), hint=redact(hint) if hint else None)
        self.status = status
        self.code = code
        self.retry_after = retry_after

    @property
    def not_found(self) -> bool:
        return self.status == 404 or (self.code or "").endswith("_UNKNOWN")


class AuthenticationError(RegistryResponseError):
    """401/403: missing, wrong or insufficient credentials."""


class TransportError(RegistryError):
    """The registry could not be reached or the connection broke (after retries)."""


_HINTS = {
    "UNAUTHORIZED": "log in with `nbcontainer login {registry}` (or check the user name and "
    "password you gave)",
    "DENIED": "the credentials for {registry} are not allowed to do this; check the repository "
    "name and your permissions",
    "NAME_UNKNOWN": "the repository {repo} does not exist on {registry}; check the name "
    "(Docker Hub's official images live under library/)",
    "NAME_INVALID": "repository names are lowercase letters, digits and . _ - separators",
    "MANIFEST_UNKNOWN": "the tag or digest does not exist; `nbcontainer ls {registry}/{repo}` "
    "lists the tags",
    "MANIFEST_BLOB_UNKNOWN": "the registry is missing a layer the manifest refers to; push the "
    "image again",
    "MANIFEST_INVALID": "the registry rejected the manifest (too large or of a type it does "
    "not support)",
    "BLOB_UNKNOWN": "the registry does not have this blob; the image may be incomplete there",
    "BLOB_UPLOAD_UNKNOWN": "the upload session expired; retry the push",
    "BLOB_UPLOAD_INVALID": "the upload session is no longer valid; retry the push",
    "DIGEST_INVALID": "the uploaded content did not match its digest; run `nbcontainer fsck` "
    "and retry",
    "SIZE_INVALID": "the uploaded content has the wrong size; run `nbcontainer fsck` and retry",
    "TOOMANYREQUESTS": "the registry is rate-limiting you; wait a while, or log in (Docker "
    "Hub allows authenticated users more pulls)",
    "UNSUPPORTED": "the registry does not support this operation",
}
_STATUS_HINTS = {
    401: _HINTS["UNAUTHORIZED"],
    403: _HINTS["DENIED"],
    404: "check the registry, repository and tag",
    405: "the registry does not allow this operation (deletes may be disabled)",
    413: "the registry refused the request as too large",
    429: _HINTS["TOOMANYREQUESTS"],
}


_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\s]+")


def one_line(text: str, limit: int = 300) -> str:
    """A server's text made safe to show: one line (no newlines, no terminal escape
    sequences), at most ``limit`` characters."""
    text = _CONTROL_RE.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_error_body(body: bytes) -> list[dict[str, Any]]:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return []
    errs = doc.get("errors") if isinstance(doc, dict) else None
    if not isinstance(errs, list):
        # token servers answer {"details": "..."} or {"error": "...", "error_description": ...}
        if isinstance(doc, dict) and (doc.get("details") or doc.get("error")):
            return [{"code": "UNAUTHORIZED", "message": doc.get("details") or doc.get("error")}]
        return []
    return [e for e in errs if isinstance(e, dict)]


def response_error(
    status: int, body: bytes, *, action: str, registry: str, repo: str = "",
    retry_after: float | None = None,
) -> RegistryResponseError:
    """Build the error for a failed request; ``action`` says what we were doing, e.g.
    ``pulling manifest library/debian:12``."""
    errs = [(one_line(str(e.get("code", "")).upper(), 40), one_line(str(e.get("message") or "")))
            for e in parse_error_body(body)[:3]]
    code = errs[0][0] or None if errs else None
    if errs:
        text = "; ".join(f"{c}: {m}".rstrip(": ") for c, m in errs)
    else:
        snippet = one_line(body[:200].decode("utf-8", "replace"))
        text = snippet if snippet and "<html" not in snippet.lower() else f"HTTP {status}"
    if status == 429 and code is None:
        code = "TOOMANYREQUESTS"
    template = _HINTS.get(code or "") or _STATUS_HINTS.get(status)
    hint = template.format(registry=registry, repo=repo or "<repository>") if template else None
    message = f"{action} on {registry} failed ({status}): {text}"
    cls = AuthenticationError if status in (401, 403) or code in ("UNAUTHORIZED", "DENIED") \
        else RegistryResponseError
    return cls(message, status=status, code=code, hint=hint, retry_after=retry_after)

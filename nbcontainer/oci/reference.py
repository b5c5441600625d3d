"""Image references, parsed and normalized exactly as Docker does (distribution/reference).

``ubuntu`` → ``docker.io/library/ubuntu:latest``; ``localhost:5000/a/b@sha256:…`` keeps its
registry; ``host:port/ns/repo:tag@digest`` keeps both tag and digest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from ..errors import ReferenceFormatError
from .digest import Digest

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
# Used with fullmatch (``$`` would accept a trailing newline); ASCII: Go's \w is [0-9A-Za-z_].
_DOMAIN_RE = re.compile(
    rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
)
_PATH_COMPONENT_RE = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG_RE = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
_ANCHORED_HEX64 = re.compile(r"[a-f0-9]{64}")

_FORMAT_HINT = "a reference looks like [registry[:port]/]name[:tag][@sha256:digest]"


def _fail(text: str, why: str) -> ReferenceFormatError:
    return ReferenceFormatError(f"invalid reference format {text!r}: {why}", hint=_FORMAT_HINT)


def valid_tag(tag: str) -> bool:
    return isinstance(tag, str) and bool(_TAG_RE.fullmatch(tag))


@dataclass(frozen=True, slots=True)
class Reference:
    """A normalized reference. ``tag`` and ``digest`` may both be set (the digest wins)."""

    domain: str
    path: str
    tag: str | None = None
    digest: Digest | None = None

    # ------------------------------------------------------------------ parsing
    @classmethod
    def parse(cls, text: str, *, default_tag: bool = True) -> Reference:
        """Parse and normalize like ``docker pull``; without tag or digest, ``:latest`` is added
        when ``default_tag`` is true."""
        if not isinstance(text, str) or not text:
            raise _fail(str(text), "empty reference")
        if text != text.strip() or any(c.isspace() for c in text):
            raise _fail(text, "whitespace is not allowed")
        if _ANCHORED_HEX64.fullmatch(text):
            raise _fail(text, "cannot specify 64-byte hexadecimal strings as a name")
        rest, digest = text, None
        if "@" in rest:
            rest, _, dig = rest.partition("@")
            try:
                digest = Digest.parse(dig)
            except ReferenceFormatError as e:
                raise _fail(text, e.message) from None
        tag = None
        slash = rest.rfind("/")
        colon = rest.rfind(":")
        if colon > slash:
            rest, tag = rest[:colon], rest[colon + 1 :]
            if not valid_tag(tag):
                raise _fail(
                    text, f"tag {tag!r} must match [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}"
                )
        domain, path = _split_domain(rest, text)
        components = path.split("/")
        for comp in components:
            if not _PATH_COMPONENT_RE.fullmatch(comp):
                if comp.lower() != comp and _PATH_COMPONENT_RE.fullmatch(comp.lower()):
                    raise _fail(text, f"repository name ({path}) must be lowercase")
                raise _fail(
                    text,
                    f"repository name component {comp!r} must be lowercase letters, digits "
                    "and separators (., _, __, -)",
                )
        full = f"{domain}/{path}"
        if len(full) > NAME_TOTAL_LENGTH_MAX:
            raise _fail(text, f"repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters")
        if tag is None and digest is None and default_tag:
            tag = DEFAULT_TAG
        return cls(domain, path, tag, digest)

    # ------------------------------------------------------------------ views
    @property
    def repository(self) -> str:
        """``domain/path``: the name without tag or digest."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_repository(self) -> str:
        """The short form Docker prints: ``ubuntu``, ``user/app``, ``localhost:5000/x``."""
        if self.domain == DEFAULT_DOMAIN:
            return self.path.removeprefix(OFFICIAL_REPO_PREFIX)
        return self.repository

    @property
    def familiar(self) -> str:
        return self._format(self.familiar_repository)

    @property
    def identifier(self) -> str:
        """What goes after ``/manifests/``: the digest if known, else the tag."""
        if self.digest is not None:
            return str(self.digest)
        return self.tag or DEFAULT_TAG

    def _format(self, repo: str) -> str:
        s = repo
        if self.tag:
            s += f":{self.tag}"
        if self.digest:
            s += f"@{self.digest}"
        return s

    def __str__(self) -> str:
        return self._format(self.repository)

    def with_tag(self, tag: str) -> Reference:
        if not valid_tag(tag):
            raise _fail(tag, "invalid tag")
        return replace(self, tag=tag, digest=None)

    def with_digest(self, digest: Digest | str) -> Reference:
        return replace(self, digest=Digest.parse(str(digest)))

    def without_digest(self) -> Reference:
        return replace(self, digest=None)


def _split_domain(name: str, original: str) -> tuple[str, str]:
    if not name:
        raise _fail(original, "empty repository name")
    first, sep, remainder = name.partition("/")
    is_domain = sep and (
        "." in first or ":" in first or first == "localhost" or first.lower() != first
    )
    if is_domain:
        if not _DOMAIN_RE.fullmatch(first):
            raise _fail(original, f"invalid registry host {first!r}")
        domain, path = first, remainder
        if domain == LEGACY_DEFAULT_DOMAIN:
            domain = DEFAULT_DOMAIN
    else:
        domain, path = DEFAULT_DOMAIN, name
    if not path:
        raise _fail(original, "empty repository name")
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = OFFICIAL_REPO_PREFIX + path
    return domain, path


def parse(text: str) -> Reference:
    return Reference.parse(text)

"""Content digests (``algorithm:hex``) and streaming hashers."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from ..errors import ReferenceFormatError

# sha256 is what we write; sha512 is accepted when reading (image-spec "registered algorithms").
_HEX_LEN = {"sha256": 64, "sha512": 128}
_LOWER_HEX = re.compile(r"[0-9a-f]+")
_DIGEST_RE = re.compile(r"([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)")


@dataclass(frozen=True, order=True, slots=True)
class Digest:
    algorithm: str
    hex: str

    @classmethod
    def parse(cls, text: str) -> Digest:
        if isinstance(text, Digest):
            return text
        m = _DIGEST_RE.fullmatch(text) if isinstance(text, str) else None
        if not m:
            raise ReferenceFormatError(
                f"invalid digest {text!r}", hint="a digest looks like sha256:<64 hex characters>"
            )
        alg, hexpart = m.group(1), m.group(2)
        want = _HEX_LEN.get(alg)
        if want is None:
            raise ReferenceFormatError(
                f"unsupported digest algorithm {alg!r} in {text!r}", hint="use sha256 or sha512"
            )
        if len(hexpart) != want or not _LOWER_HEX.fullmatch(hexpart):
            raise ReferenceFormatError(
                f"invalid {alg} digest {text!r}: expected {want} lowercase hex characters"
            )
        return cls(alg, hexpart)

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"

    @property
    def short(self) -> str:
        """The 12-character id docker prints."""
        return self.hex[:12]

    def hasher(self) -> hashlib._Hash:
        return hashlib.new(self.algorithm)


def is_digest(text: str) -> bool:
    try:
        Digest.parse(text)
    except ReferenceFormatError:
        return False
    return True

"""One exception family for the whole toolkit.

Every error carries a message a user can act on and an optional hint; the CLI and the
notebook print ``str(err)`` (message plus hint) and never a traceback unless asked.
"""

from __future__ import annotations


class NbcontainerError(Exception):
    """Base of all errors nbcontainer raises on purpose."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\nhint: {self.hint}" if self.hint else self.message


class ReferenceFormatError(NbcontainerError, ValueError):
    """An image reference, digest, tag or platform string is malformed."""


class ImageFormatError(NbcontainerError, ValueError):
    """A manifest, index, config or archive does not follow the OCI/Docker formats."""


class LayerError(NbcontainerError):
    """A layer cannot be written or read (I/O, compression)."""


class UnsafeLayerError(LayerError):
    """A layer entry would escape the target directory or is otherwise hostile/corrupt."""

    def __init__(self, message: str, *, entry: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.entry = entry


class StoreError(NbcontainerError):
    """The content store cannot satisfy a request (unknown image, corrupt blob, lock)."""


class ImageNotFound(StoreError, LookupError):
    """No image matches a tag, digest or short id."""


class DigestMismatch(StoreError):
    """Bytes did not hash to the digest they were announced with."""


class BuildError(NbcontainerError):
    """A build step failed."""


class RegistryError(NbcontainerError):
    """A registry request failed."""


def bug_message(what: str, exc: BaseException, details: str) -> str:
    """One line for an exception nbcontainer did not expect (not one of the errors above):
    what failed, that it is a bug, and ``details``, the skin's way to get the traceback. The
    CLI and the notebook both say it this way."""
    text = str(exc).strip().splitlines()
    cause = type(exc).__name__ + (f": {text[0]}" if text else "")
    if len(cause) > 200:
        cause = cause[:199] + "…"
    return f"{what} failed with {cause}; this is a bug in nbcontainer ({details})"


class MountSpecError(NbcontainerError, ValueError):
    """A ``-v``/``--mount`` value is malformed or names a host path that does not exist."""


class KernelError(NbcontainerError):
    """A kernel from an image cannot be installed, found or started."""

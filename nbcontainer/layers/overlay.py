"""overlayfs upper-dir conventions and their OCI whiteout equivalents.

overlayfs marks a deleted name with a char device 0:0 and a directory that hides its lower
content with the ``*.overlay.opaque=y`` xattr (``trusted.`` as root, ``user.`` with
``userxattr`` when rootless).  OCI layers say the same with ``.wh.<name>`` files and a
``.wh..wh..opq`` file inside the directory.
"""

from __future__ import annotations

import stat

WHITEOUT_PREFIX = b".wh."
OPAQUE_MARKER = b".wh..wh..opq"
OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")
_PRIVATE_PREFIXES = ("trusted.overlay.", "user.overlay.")
# Host-specific labels that never belong in an image (podman/buildah drop them too).
_HOST_XATTRS = frozenset({"security.selinux"})


def is_whiteout_device(st: object) -> bool:
    """A char device with rdev 0:0 is how overlayfs records a deletion."""
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0  # type: ignore[attr-defined]


def is_opaque(xattrs: dict[str, bytes]) -> bool:
    return any(xattrs.get(name) == b"y" for name in OPAQUE_XATTRS)


def is_overlay_xattr(name: str) -> bool:
    """overlayfs bookkeeping (opaque, origin, impure, redirect, uuid, ...)."""
    return name.startswith(_PRIVATE_PREFIXES)


def keep_xattr(name: str) -> bool:
    """Whether an xattr belongs in a layer: everything but overlay bookkeeping and host labels."""
    return not is_overlay_xattr(name) and name not in _HOST_XATTRS


def whiteout_name(name: bytes) -> bytes:
    return WHITEOUT_PREFIX + name


# What a RUN sandbox mounts over the root (see shared/notes/sandbox.md §1 and §3): changes
# there never belong in a layer, as with docker, whose RUN has them mounted too.
_MOUNT_DIRS = ("dev", "proc", "sys")
_BIND_FILES = frozenset({"etc/resolv.conf", "etc/hosts", "etc/hostname"})


def sandbox_artifact(path: str) -> bool:
    """An ``exclude`` predicate for upper dirs of RUN sandboxes: /dev, /proc, /sys (with
    their contents and whiteouts) and the bind-mounted resolv.conf, hosts and hostname."""
    top = path.split("/", 1)[0]
    return top in _MOUNT_DIRS or path in _BIND_FILES

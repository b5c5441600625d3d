"""User-namespace id maps: which host ids container ids live under, and shifting trees.

Rootless, container uid 0 is the calling user and container uid n >= 1 is ``subuid_start + n - 1``
(when ``/etc/subuid`` grants a range), so files a RUN creates as ``_apt`` (42) land on disk as
``subuid_start + 41``. The layer writer maps them back with :meth:`IdMapping.to_container`.
"""

from __future__ import annotations

import os
import pwd
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

Range = tuple[int, int, int]  # (container id, host id, count), as in /proc/<pid>/uid_map

FULL = 2**32 - 1


@dataclass(frozen=True)
class IdMapping:
    """The uid and gid maps of a sandbox; identity when running as real root."""

    uid_map: tuple[Range, ...]
    gid_map: tuple[Range, ...]

    @classmethod
    def identity(cls) -> IdMapping:
        return cls(((0, 0, FULL),), ((0, 0, FULL),))

    @classmethod
    def single(cls, uid: int, gid: int) -> IdMapping:
        return cls(((0, uid, 1),), ((0, gid, 1),))

    @classmethod
    def with_subids(cls, uid: int, gid: int, subuid: tuple[int, int],
                    subgid: tuple[int, int]) -> IdMapping:
        return cls(((0, uid, 1), (1, subuid[0], subuid[1])),
                   ((0, gid, 1), (1, subgid[0], subgid[1])))

    @classmethod
    def for_current_user(cls, subuid_file: str = "/etc/subuid",
                         subgid_file: str = "/etc/subgid") -> IdMapping:
        """The map a rootless sandbox uses: the full subordinate range if granted."""
        uid, gid = os.getuid(), os.getgid()
        if uid == 0:
            return cls.identity()
        try:
            name = pwd.getpwuid(uid).pw_name
        except KeyError:
            name = None
        subuid = subid_range(subuid_file, name, uid)
        subgid = subid_range(subgid_file, name, uid)
        if subuid and subgid and have_newidmap():
            return cls.with_subids(uid, gid, subuid, subgid)
        return cls.single(uid, gid)

    @property
    def is_identity(self) -> bool:
        return self == IdMapping.identity()

    @property
    def is_single(self) -> bool:
        return len(self.uid_map) == 1 and self.uid_map[0][2] == 1

    def to_host_uid(self, uid: int) -> int:
        return _map(self.uid_map, uid, inward=False)

    def to_host_gid(self, gid: int) -> int:
        return _map(self.gid_map, gid, inward=False)

    def to_container_uid(self, uid: int) -> int:
        return _map(self.uid_map, uid, inward=True)

    def to_container_gid(self, gid: int) -> int:
        return _map(self.gid_map, gid, inward=True)

    def map_lines(self, which: str) -> str:
        """Contents for ``/proc/<pid>/uid_map`` (``which="uid"``) or ``gid_map``."""
        ranges = self.uid_map if which == "uid" else self.gid_map
        return "".join(f"{a} {b} {c}\n" for a, b, c in ranges)

    def newidmap_args(self, which: str) -> list[str]:
        ranges = self.uid_map if which == "uid" else self.gid_map
        return [str(v) for r in ranges for v in r]


def _map(ranges: tuple[Range, ...], value: int, *, inward: bool) -> int:
    for inside, outside, count in ranges:
        src, dst = (outside, inside) if inward else (inside, outside)
        if src <= value < src + count:
            return dst + value - src
    direction = "host" if inward else "container"
    raise KeyError(f"id {value} is not mapped ({direction} id outside the user namespace map)")


def subid_range(path: str, name: str | None, uid: int) -> tuple[int, int] | None:
    """The first ``start, count`` range ``/etc/subuid``-style ``path`` grants ``name``/``uid``."""
    try:
        text = Path(path).read_text()
    except OSError:
        return None
    for line in text.splitlines():
        fields = line.strip().split(":")
        if len(fields) != 3 or fields[0] not in (name, str(uid)):
            continue
        try:
            start, count = int(fields[1]), int(fields[2])
        except ValueError:
            continue
        if count > 0:
            return start, count
    return None


def have_newidmap() -> bool:
    from shutil import which

    return bool(which("newuidmap") and which("newgidmap"))


def _walk(root: Path) -> Iterator[str]:
    yield str(root)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            yield os.path.join(dirpath, name)


def shift_tree(root: Path, mapping: IdMapping, *, to_host: bool = True) -> int:
    """Re-own a tree between container ids and the mapping's host ids (needs real root).

    ``to_host=True`` prepares an extracted base (owned by container ids) as a rootless lower
    dir; ``False`` undoes it. An unprivileged caller cannot chown to subordinate ids on the
    host; it runs its extraction inside the namespace with :meth:`Sandbox.run_in_userns`.
    chown clears set-id bits, so they are restored afterwards. Returns the entries changed.
    """
    uid_of = mapping.to_host_uid if to_host else mapping.to_container_uid
    gid_of = mapping.to_host_gid if to_host else mapping.to_container_gid
    changed = 0
    for path in _walk(Path(root)):
        st = os.lstat(path)
        uid, gid = uid_of(st.st_uid), gid_of(st.st_gid)
        if (uid, gid) == (st.st_uid, st.st_gid):
            continue
        caps = None
        if stat.S_ISREG(st.st_mode):
            try:
                caps = os.getxattr(path, "security.capability", follow_symlinks=False)
            except OSError:
                caps = None
        os.lchown(path, uid, gid)
        if not stat.S_ISLNK(st.st_mode) and st.st_mode & 0o6000:
            os.chmod(path, stat.S_IMODE(st.st_mode))
        if caps is not None:
            os.setxattr(path, "security.capability", caps, follow_symlinks=False)
        changed += 1
    return changed

"""User-namespace id maps: which host ids container ids live under, and shifting trees.

Rootless, a sandbox stores files under host ids: container uid 0 is the calling user and
container uid n >= 1 is ``subuid_start + n - 1`` when ``/etc/subuid`` grants a range, so a
file a RUN creates as ``_apt`` (42) lands on disk as ``subuid_start + 41``. A layer must carry
the container's ids, so the layer writer maps them back (:meth:`IdMap.to_container`) and
extraction for a rootless sandbox maps them out (:meth:`IdMap.to_host`). The ranges read like
``/proc/<pid>/uid_map``: ``<container-start> <host-start> <count>``.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import LayerError

FULL = 2**32 - 1  # every id: the identity map of real root

Which = Literal["uid", "gid"]


@dataclass(frozen=True, slots=True)
class IdRange:
    """One line of a ``uid_map``/``gid_map``."""

    container: int
    host: int
    count: int


class UnmappedIdError(LayerError, KeyError):
    """An id has no counterpart on the other side of the map (also a ``KeyError``: a failed
    lookup, as callers that fall back to ``nobody`` treat it)."""


def _parse(text: str, what: str) -> tuple[IdRange, ...]:
    ranges = []
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        try:
            c, h, n = (int(f) for f in fields)
        except ValueError:
            raise LayerError(f"invalid {what} map line {line!r}",
                             hint="expected 3 integers: container id, host id, count") from None
        if c < 0 or h < 0 or n <= 0:
            raise LayerError(f"invalid {what} map line {line!r}",
                             hint="ids must not be negative and the count must be positive")
        ranges.append(IdRange(c, h, n))
    return tuple(ranges)


def _lookup(ranges: tuple[IdRange, ...], value: int, *, to_container: bool) -> int | None:
    for r in ranges:
        start, other = (r.host, r.container) if to_container else (r.container, r.host)
        if start <= value < start + r.count:
            return other + (value - start)
    return None


@dataclass(frozen=True, slots=True)
class IdMap:
    """The uid and gid maps of a user namespace; identity when running as real root."""

    uids: tuple[IdRange, ...]
    gids: tuple[IdRange, ...]

    # ------------------------------------------------------------ constructors

    @classmethod
    def identity(cls) -> IdMap:
        return cls((IdRange(0, 0, FULL),), (IdRange(0, 0, FULL),))

    @classmethod
    def single(cls, uid: int, gid: int) -> IdMap:
        """Only container root exists, as the calling user (``unshare -r``)."""
        return cls((IdRange(0, uid, 1),), (IdRange(0, gid, 1),))

    @classmethod
    def rootless(cls, uid: int, gid: int, subuid: int, subgid: int, count: int = 65536,
                 gid_count: int | None = None) -> IdMap:
        """The map ``newuidmap <pid> 0 <uid> 1 1 <subuid> <count>`` sets up (and the same
        for gids, with ``gid_count`` when the gid range differs in size)."""
        return cls((IdRange(0, uid, 1), IdRange(1, subuid, count)),
                   (IdRange(0, gid, 1), IdRange(1, subgid, count if gid_count is None
                                                else gid_count)))

    @classmethod
    def parse(cls, uid_map: str, gid_map: str | None = None) -> IdMap:
        """From ``uid_map``/``gid_map`` text (the gid map defaults to the uid map)."""
        return cls(_parse(uid_map, "uid"), _parse(gid_map if gid_map is not None else uid_map,
                                                   "gid"))

    @classmethod
    def for_current_user(cls, subuid_file: str = "/etc/subuid",
                         subgid_file: str = "/etc/subgid") -> IdMap:
        """The map a rootless sandbox uses: the full subordinate range when one is granted
        and newuidmap/newgidmap can apply it, else a single-id map."""
        uid, gid = os.getuid(), os.getgid()
        if uid == 0:
            return cls.identity()
        try:
            name: str | None = pwd.getpwuid(uid).pw_name
        except KeyError:
            name = None
        subuid = subid_range(subuid_file, name, uid)
        subgid = subid_range(subgid_file, name, uid)
        if subuid and subgid and have_newidmap():
            return cls.rootless(uid, gid, subuid[0], subgid[0], subuid[1], gid_count=subgid[1])
        return cls.single(uid, gid)

    # ------------------------------------------------------------ properties

    @property
    def is_identity(self) -> bool:
        return self == IdMap.identity()

    @property
    def is_single(self) -> bool:
        return len(self.uids) == 1 and self.uids[0].count == 1

    # ------------------------------------------------------------ one id at a time

    def to_host_uid(self, uid: int) -> int:
        return self._one(self.uids, uid, to_container=False, what="uid")

    def to_host_gid(self, gid: int) -> int:
        return self._one(self.gids, gid, to_container=False, what="gid")

    def to_container_uid(self, uid: int) -> int:
        return self._one(self.uids, uid, to_container=True, what="uid")

    def to_container_gid(self, gid: int) -> int:
        return self._one(self.gids, gid, to_container=True, what="gid")

    @staticmethod
    def _one(ranges: tuple[IdRange, ...], value: int, *, to_container: bool, what: str) -> int:
        found = _lookup(ranges, value, to_container=to_container)
        if found is None:
            side = "host" if to_container else "container"
            raise UnmappedIdError(f"{side} {what} {value} is outside the user namespace's map",
                                  hint="use a larger subuid/subgid range")
        return found

    # ------------------------------------------------------------ owner pairs (layers)

    def to_container(self, uid: int, gid: int, *, entry: str = "") -> tuple[int, int]:
        cu = _lookup(self.uids, uid, to_container=True)
        cg = _lookup(self.gids, gid, to_container=True)
        if cu is None or cg is None:
            raise UnmappedIdError(
                f"{entry or 'file'}: host owner {uid}:{gid} is outside the id map",
                hint="the upper dir holds files the user namespace could not have created",
            )
        return cu, cg

    def to_host(self, uid: int, gid: int, *, entry: str = "") -> tuple[int, int]:
        hu = _lookup(self.uids, uid, to_container=False)
        hg = _lookup(self.gids, gid, to_container=False)
        if hu is None or hg is None:
            raise UnmappedIdError(
                f"layer entry {entry!r}: owner {uid}:{gid} has no host id in the id map",
                hint="use a larger subuid/subgid range",
            )
        return hu, hg

    # ------------------------------------------------------------ applying the map

    def ranges(self, which: Which) -> tuple[IdRange, ...]:
        return self.uids if which == "uid" else self.gids

    def map_lines(self, which: Which) -> str:
        """Contents for ``/proc/<pid>/uid_map`` (``which="uid"``) or ``gid_map``."""
        return "".join(f"{r.container} {r.host} {r.count}\n" for r in self.ranges(which))

    def newidmap_args(self, which: Which) -> list[str]:
        """The triples ``newuidmap <pid>`` / ``newgidmap <pid>`` take."""
        return [str(v) for r in self.ranges(which) for v in (r.container, r.host, r.count)]


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
    return bool(shutil.which("newuidmap") and shutil.which("newgidmap"))


def _walk(root: Path) -> Iterator[str]:
    yield str(root)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            yield os.path.join(dirpath, name)


def shift_tree(root: Path, mapping: IdMap, *, to_host: bool = True) -> int:
    """Re-own a tree between container ids and the mapping's host ids (needs real root).

    ``to_host=True`` prepares an extracted base (owned by container ids) as a rootless lower
    dir; ``False`` undoes it. An unprivileged caller cannot chown to subordinate ids on the
    host; it extracts inside the user namespace instead (``Executor.run_in_userns``).
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

"""uid/gid shifting between host ids and container ids (rootless user namespaces).

A rootless sandbox stores files under host ids from the subuid range; a layer must carry
the container's ids.  The map is written like ``/proc/self/uid_map``: lines of
``<container-start> <host-start> <count>``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import LayerError


@dataclass(frozen=True, slots=True)
class IdRange:
    container: int
    host: int
    count: int


def _parse(text: str, what: str) -> tuple[IdRange, ...]:
    ranges = []
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        try:
            c, h, n = (int(f) for f in fields)
        except ValueError:
            raise LayerError(
                f"invalid {what} map line {line!r}", hint="expected 3 integers"
            ) from None
        if c < 0 or h < 0 or n <= 0:
            raise LayerError(f"invalid {what} map line {line!r}")
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
    """Pairs of uid and gid ranges; host -> container when writing, the reverse when applying."""

    uids: tuple[IdRange, ...]
    gids: tuple[IdRange, ...]

    @classmethod
    def parse(cls, uid_map: str, gid_map: str | None = None) -> IdMap:
        """From ``uid_map``/``gid_map`` text (gid map defaults to the uid map)."""
        uids = _parse(uid_map, "uid")
        gids = _parse(gid_map if gid_map is not None else uid_map, "gid")
        return cls(uids, gids)

    @classmethod
    def rootless(cls, uid: int, gid: int, subuid: int, subgid: int, count: int = 65536) -> IdMap:
        """The map ``newuidmap <pid> 0 <uid> 1 1 <subuid> <count>`` sets up."""
        return cls(
            (IdRange(0, uid, 1), IdRange(1, subuid, count)),
            (IdRange(0, gid, 1), IdRange(1, subgid, count)),
        )

    def to_container(self, uid: int, gid: int, *, entry: str = "") -> tuple[int, int]:
        cu = _lookup(self.uids, uid, to_container=True)
        cg = _lookup(self.gids, gid, to_container=True)
        if cu is None or cg is None:
            raise LayerError(
                f"{entry or 'file'}: host owner {uid}:{gid} is outside the id map",
                hint="the upper dir holds files the user namespace could not have created",
            )
        return cu, cg

    def to_host(self, uid: int, gid: int, *, entry: str = "") -> tuple[int, int]:
        hu = _lookup(self.uids, uid, to_container=False)
        hg = _lookup(self.gids, gid, to_container=False)
        if hu is None or hg is None:
            raise LayerError(
                f"layer entry {entry!r}: owner {uid}:{gid} has no host id in the id map",
                hint="use a larger subuid/subgid range",
            )
        return hu, hg

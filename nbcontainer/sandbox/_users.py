"""USER resolution against the image's own /etc/passwd and /etc/group.

Follows Docker/runc (moby/sys/user ``GetExecUser``) exactly, because images rely on its quirks:
an explicit group disables supplementary groups, a numeric uid without a passwd entry is allowed
(home ``/``, gid 0), and names must exist. Runs inside the sandbox after ``pivot_root``, so image
symlinks in ``/etc`` cannot point the lookup at host files. Stdlib only (loaded by the helper).
"""

from __future__ import annotations

MAX_ID = 2**31 - 1


class UserLookupError(LookupError):
    """USER names a user or group the image does not define."""


class ExecUser:
    """Who the command runs as. A plain class: the helper avoids importing dataclasses."""

    __slots__ = ("uid", "gid", "groups", "home", "name")

    def __init__(self, uid: int = 0, gid: int = 0, groups: tuple[int, ...] = (),
                 home: str = "/", name: str | None = None) -> None:
        self.uid, self.gid, self.groups, self.home, self.name = uid, gid, groups, home, name

    def _key(self) -> tuple[int, int, tuple[int, ...], str, str | None]:
        return self.uid, self.gid, self.groups, self.home, self.name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ExecUser) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return "ExecUser(uid={!r}, gid={!r}, groups={!r}, home={!r}, name={!r})".format(
            *self._key())


def _read(path: str, width: int) -> list[list[str]]:
    """The rows of a passwd/group file, padded to ``width`` fields."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except (FileNotFoundError, NotADirectoryError):
        return []
    rows = []
    for line in lines:
        line = line.strip()
        if line and not line.startswith("#"):
            row = line.split(":")
            rows.append(row + [""] * (width - len(row)))
    return rows


def _int(value: str) -> int | None:
    try:
        n = int(value, 10)
    except ValueError:
        return None
    return n if value.isdigit() else None


def _find_user(user_arg: str, passwd: str) -> ExecUser:
    """The passwd entry USER names (root when empty); a bare uid without one is allowed."""
    uid_arg = _int(user_arg)
    for row in _read(passwd, 7):
        row_uid = _int(row[2])
        if row_uid is None:
            continue
        if user_arg == "":
            match = row_uid == 0
        elif uid_arg is not None:
            match = row_uid == uid_arg
        else:
            match = row[0] == user_arg
        if match:
            return ExecUser(row_uid, _int(row[3]) or 0, (), row[5] or "/", row[0])
    if not user_arg:
        return ExecUser()
    if uid_arg is None:
        raise UserLookupError(f"unable to find user {user_arg}: no matching entries in passwd file")
    if uid_arg > MAX_ID:
        raise UserLookupError(f"uid {uid_arg} is out of range")
    return ExecUser(uid_arg)


def _group_rows(group: str) -> list[tuple[int, list[str]]]:
    return [(gid, row) for row in _read(group, 4) if (gid := _int(row[2])) is not None]


def _find_group(group_arg: str, group: str) -> int:
    """The gid the explicit group of USER names."""
    gid_arg = _int(group_arg)
    for gid, row in _group_rows(group):
        if (gid == gid_arg) if gid_arg is not None else (row[0] == group_arg):
            return gid
    if gid_arg is None:
        raise UserLookupError(f"unable to find group {group_arg}: no matching entries in group file")
    if gid_arg > MAX_ID:
        raise UserLookupError(f"gid {gid_arg} is out of range")
    return gid_arg


def _supplementary(name: str, group: str) -> tuple[int, ...]:
    return tuple(gid for gid, row in _group_rows(group)
                 if name in [m.strip() for m in row[3].split(",") if m.strip()])


def resolve_user(spec: str, passwd: str = "/etc/passwd", group: str = "/etc/group") -> ExecUser:
    """Resolve ``user[:group]`` (names or numbers; empty means root) the way Docker does."""
    user_arg, _, group_arg = (spec or "").partition(":")
    user = _find_user(user_arg, passwd)
    if group_arg:  # an explicit group replaces the primary one and drops the others
        user.gid = _find_group(group_arg, group)
    elif user.name is not None:
        user.groups = _supplementary(user.name, group)
    return user

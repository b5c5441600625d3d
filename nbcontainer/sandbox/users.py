"""USER resolution against the image's own /etc/passwd and /etc/group.

Follows Docker/runc (moby/sys/user ``GetExecUser``) exactly, because images rely on its quirks:
an explicit group disables supplementary groups, a numeric uid without a passwd entry is allowed
(home ``/``, gid 0), and names must exist. Runs inside the sandbox after ``pivot_root``, so image
symlinks in ``/etc`` cannot point the lookup at host files. Stdlib only (loaded by the helper).
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_ID = 2**31 - 1


class UserLookupError(LookupError):
    """USER names a user or group the image does not define."""


@dataclass(frozen=True)
class ExecUser:
    uid: int = 0
    gid: int = 0
    groups: tuple[int, ...] = field(default_factory=tuple)
    home: str = "/"
    name: str | None = None


def _read(path: str) -> list[list[str]]:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except (FileNotFoundError, NotADirectoryError):
        return []
    rows = []
    for line in lines:
        line = line.strip()
        if line and not line.startswith("#"):
            rows.append(line.split(":"))
    return rows


def _int(value: str) -> int | None:
    try:
        n = int(value, 10)
    except ValueError:
        return None
    return n if value.isdigit() else None


def resolve_user(spec: str, passwd: str = "/etc/passwd", group: str = "/etc/group") -> ExecUser:
    """Resolve ``user[:group]`` (names or numbers; empty means root) the way Docker does."""
    user_arg, _, group_arg = (spec or "").partition(":")
    uid_arg, gid_arg = _int(user_arg), _int(group_arg)
    uid, gid, home, name = 0, 0, "/", None
    groups: tuple[int, ...] = ()

    for row in _read(passwd):
        if len(row) < 7:
            row = row + [""] * (7 - len(row))
        row_uid, row_gid = _int(row[2]), _int(row[3])
        if row_uid is None:
            continue
        if user_arg == "":
            match = row_uid == 0
        elif uid_arg is not None:
            match = row_uid == uid_arg
        else:
            match = row[0] == user_arg
        if match:
            name, uid, gid, home = row[0], row_uid, row_gid or 0, row[5] or "/"
            break
    else:
        if user_arg:
            if uid_arg is None:
                raise UserLookupError(f"unable to find user {user_arg}: no matching entries in passwd file")
            if uid_arg > MAX_ID:
                raise UserLookupError(f"uid {uid_arg} is out of range")
            uid = uid_arg

    if group_arg or name is not None:
        matches: list[int] = []
        for row in _read(group):
            if len(row) < 4:
                row = row + [""] * (4 - len(row))
            row_gid = _int(row[2])
            if row_gid is None:
                continue
            if not group_arg:
                hit = name in [m.strip() for m in row[3].split(",") if m.strip()]
            elif gid_arg is not None:
                hit = row_gid == gid_arg
            else:
                hit = row[0] == group_arg
            if hit:
                matches.append(row_gid)
                if group_arg:
                    break
        if group_arg:
            if matches:
                gid = matches[0]
            elif gid_arg is None:
                raise UserLookupError(f"unable to find group {group_arg}: no matching entries in group file")
            elif gid_arg > MAX_ID:
                raise UserLookupError(f"gid {gid_arg} is out of range")
            else:
                gid = gid_arg
        else:
            groups = tuple(matches)
    return ExecUser(uid=uid, gid=gid, groups=groups, home=home, name=name)

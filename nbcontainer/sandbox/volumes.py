"""``docker run -v HOST:CONTAINER[:ro]`` and ``--mount type=bind,source=…,target=…`` as bind
mounts: parsed once for the command line, the magics and kernels.

Unlike docker's ``-v``, a missing host path is an error, never created: a typo would
otherwise leave an empty directory on the host and a container that silently sees nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

from nbcontainer.errors import MountSpecError

from .spec import BindMount

_RO = {"ro": True, "readonly": True, "rw": False}


def _host_path(text: str, flag: str) -> Path:
    if not text:
        raise MountSpecError(f"{flag}: the host path is empty",
                             hint="give an absolute or relative host path")
    path = Path(os.path.abspath(os.path.expanduser(text)))
    if not path.exists():
        raise MountSpecError(f"{flag}: bind source path does not exist: {path}",
                             hint="create it first (nbcontainer never creates host paths)")
    return path


def _target(text: str, flag: str) -> str:
    if not text.startswith("/") or ".." in text.split("/"):
        raise MountSpecError(f"{flag}: the container path {text!r} must be absolute",
                             hint="e.g. -v ./data:/data")
    return os.path.normpath(text)


def parse_volume(text: str) -> BindMount:
    """``HOST:CONTAINER[:ro|rw]`` → a bind mount (read-write unless ``ro``)."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("ro", "rw")):
        raise MountSpecError(f"-v {text}: expected HOST:CONTAINER[:ro|rw]",
                             hint="named volumes are not supported: give a host path")
    readonly = len(parts) == 3 and parts[2] == "ro"
    return BindMount(_host_path(parts[0], f"-v {text}"), _target(parts[1], f"-v {text}"),
                     readonly=readonly)


def parse_mount(text: str) -> BindMount:
    """``type=bind,source=HOST,target=CONTAINER[,readonly]`` (docker's ``--mount``; ``src``,
    ``dst``/``destination``, ``ro``/``readonly[=true|false]`` accepted)."""
    fields: dict[str, str] = {}
    readonly = False
    for item in text.split(","):
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if key in _RO or key == "readonly":
            readonly = value.lower() not in ("false", "0") if sep else _RO.get(key, True)
        elif key in ("type", "source", "src", "target", "dst", "destination"):
            fields[{"src": "source", "dst": "target", "destination": "target"}.get(key, key)] = value
        else:
            raise MountSpecError(f"--mount {text}: unknown field {key!r}",
                                 hint="type=bind,source=HOST,target=CONTAINER[,readonly]")
    if fields.get("type", "bind") != "bind":
        raise MountSpecError(f"--mount {text}: only type=bind is supported",
                             hint="type=bind,source=HOST,target=CONTAINER[,readonly]")
    if "source" not in fields or "target" not in fields:
        raise MountSpecError(f"--mount {text}: source and target are required",
                             hint="type=bind,source=HOST,target=CONTAINER[,readonly]")
    flag = f"--mount {text}"
    return BindMount(_host_path(fields["source"], flag), _target(fields["target"], flag),
                     readonly=readonly)


def volume_text(mount: BindMount) -> str:
    """The ``-v`` form of a bind mount (what a kernelspec records)."""
    return f"{mount.source}:{mount.target}" + (":ro" if mount.readonly else "")

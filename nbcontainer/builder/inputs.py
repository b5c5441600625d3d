"""What a build is given, read and checked before any work: the Dockerfile (text or a path),
``--secret`` values (never logged, never stored) and ``--ssh`` sockets."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..errors import BuildError

SecretSpec = str | tuple[str, bytes]


def parse_secret(spec: str) -> tuple[str, bytes]:
    """``id=ID[,src=FILE|,env=VAR]`` (docker build --secret) → (id, bytes). Without src/env
    the id names an environment variable, then a file of that name (buildx's rule)."""
    fields: dict[str, str] = {}
    for part in spec.split(","):
        k, sep, v = part.partition("=")
        if not sep:
            raise BuildError(f"invalid secret {spec!r}", hint="use id=ID,src=FILE or id=ID,env=VAR")
        fields[k.strip().lower()] = v.strip()
    sid = fields.get("id")
    src = fields.get("src") or fields.get("source")
    env = fields.get("env")
    if not sid:
        sid = env or (os.path.basename(src) if src else None)
    if not sid:
        raise BuildError(f"secret {spec!r} has no id")
    if src:
        try:
            return sid, Path(src).expanduser().read_bytes()
        except OSError as exc:
            raise BuildError(f"secret {sid}: cannot read {src}: {exc.strerror}") from exc
    name = env or sid
    if name in os.environ:
        return sid, os.environ[name].encode()
    if not env and os.path.isfile(sid):
        return sid, Path(sid).read_bytes()
    raise BuildError(f"secret {sid}: environment variable {name} is not set")


def read_secrets(secrets: Sequence[SecretSpec] | Mapping[str, bytes | str]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    if isinstance(secrets, Mapping):
        items = list(secrets.items())
    else:
        items = [parse_secret(s) if isinstance(s, str) else s for s in secrets]
    for k, v in items:
        out[k] = v.encode() if isinstance(v, str) else bytes(v)
    return out


def read_dockerfile(source: str | os.PathLike[str], context: Path) -> tuple[str, str]:
    """(text, name relative to the context) from Dockerfile text or a path."""
    if isinstance(source, os.PathLike) or ("\n" not in str(source) and
                                           len(str(source)) < 4096 and
                                           (Path(source).is_file() or
                                            (context / str(source)).is_file())):
        path = Path(source)
        if not path.is_file():
            path = context / path
        try:
            text = path.read_text()
        except OSError as exc:
            raise BuildError(f"cannot read Dockerfile {path}: {exc.strerror}") from exc
        try:
            name = str(path.resolve().relative_to(context.resolve()))
        except ValueError:
            name = str(path)
        return text, name
    return str(source), "Dockerfile"


def read_ssh(ssh: Sequence[str] | Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    """``--ssh`` specs (``default``, ``ID=SOCKET``, ``ID=KEY[,KEY]``) or a mapping."""
    if isinstance(ssh, Mapping):
        return {k: tuple(v) for k, v in ssh.items()}
    if not ssh:
        return {}
    from .ssh import parse_ssh  # (sockets, subprocesses: only for a build given --ssh)

    return {sid: tuple(paths) for sid, paths in (parse_ssh(s) for s in ssh)}

"""Typed, validated instructions (BuildKit's ``instructions`` package).

Values here are *as written* (unexpanded). ``Instruction.expand`` returns a copy with the
words BuildKit expands replaced, so the plan can apply one environment snapshot per
instruction and the builder never has to know which words are expandable.
"""

from __future__ import annotations

import csv
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import ClassVar

from nbcontainer.dockerfile.errors import DockerfileError
from nbcontainer.dockerfile.flags import BFlags, FlagError, suggest, with_suggestion
from nbcontainer.dockerfile.lexer import go_fields, go_trim_space
from nbcontainer.dockerfile.syntax import Heredoc, Node, parse_heredoc_word

__all__ = [
    "INSTRUCTIONS",
    "Add",
    "add_source_kind",
    "Arg",
    "ArgSpec",
    "Cmd",
    "Copy",
    "Entrypoint",
    "Env",
    "Expose",
    "From",
    "HealthConfig",
    "Healthcheck",
    "Instruction",
    "KeyValue",
    "Label",
    "Maintainer",
    "Mount",
    "Onbuild",
    "PortSpec",
    "Run",
    "Shell",
    "SourceContent",
    "StopSignal",
    "User",
    "Volume",
    "Workdir",
    "parse_duration",
    "parse_instruction",
    "parse_mount",
    "parse_port_spec",
]

INSTRUCTIONS = (
    "add", "arg", "cmd", "copy", "entrypoint", "env", "expose", "from", "healthcheck",
    "label", "maintainer", "onbuild", "run", "shell", "stopsignal", "user", "volume", "workdir",
)  # fmt: skip

Expander = Callable[[str], str]

_VALID_STAGE_NAME = re.compile(r"^[a-z][a-z0-9-_.]*$")
MOUNT_TYPES = ("bind", "cache", "tmpfs", "secret", "ssh")
MOUNT_KEYS = (
    "type", "from", "source", "target", "readonly", "id", "sharing", "required", "size",
    "mode", "uid", "gid", "src", "dst", "destination", "ro", "rw", "readwrite", "env",
)  # fmt: skip
NETWORK_MODES = ("default", "none", "host")
SECURITY_MODES = ("sandbox", "insecure")
MINIMUM_DURATION_NS = 1_000_000


class _ParseError(Exception):
    """Internal: message plus the token to point the caret at."""

    def __init__(self, message: str, token: str | None = None) -> None:
        super().__init__(message)
        self.token = token


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class KeyValue:
    """One ENV/LABEL pair; ``legacy`` marks the ``KEY value`` form (lint: LegacyKeyValueFormat)."""

    key: str
    value: str
    legacy: bool = False


@dataclass(frozen=True)
class ArgSpec:
    """One ARG name with its default (``None`` when declared without ``=``)."""

    key: str
    value: str | None = None


@dataclass(frozen=True)
class SourceContent:
    """A heredoc used as a COPY/ADD source: a file named ``path`` holding ``data``."""

    path: str
    data: str
    expand: bool = True


@dataclass(frozen=True)
class Mount:
    """One ``RUN --mount``, with BuildKit's defaults applied where they don't need expansion."""

    type: str = "bind"
    target: str = ""
    source: str = ""
    from_: str = ""
    readonly: bool = True
    id: str = ""
    sharing: str = ""
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    size: int | None = None
    required: bool = False
    env: str | None = None
    raw: str = ""


@dataclass(frozen=True)
class HealthConfig:
    """Docker's ``HealthConfig``: ``test`` (``["NONE"]``, ``["CMD", …]`` or ``["CMD-SHELL", s]``)."""

    test: tuple[str, ...]
    interval: int = 0  # nanoseconds; 0 = default (30s)
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0


@dataclass(frozen=True)
class PortSpec:
    """An EXPOSE entry: a port or a range and a protocol."""

    start: int
    end: int
    proto: str = "tcp"

    def __str__(self) -> str:
        port = str(self.start) if self.start == self.end else f"{self.start}-{self.end}"
        return f"{port}/{self.proto}"


# --------------------------------------------------------------------------- instructions


@dataclass(frozen=True, kw_only=True)
class Instruction:
    """Base of all typed instructions: where it came from, for errors and history."""

    keyword: ClassVar[str] = ""
    line: int = 0
    end_line: int = 0
    original: str = field(default="", compare=False)
    flags: tuple[str, ...] = field(default=(), compare=False)

    def expand(self, expand: Expander, raw: Expander | None = None) -> Instruction:
        """A copy with the words BuildKit expands replaced (identity when nothing expands).

        ``raw`` expands heredoc bodies: variables only, quotes kept (BuildKit's ExpandRaw).
        """
        return self


@dataclass(frozen=True, kw_only=True)
class From(Instruction):
    keyword: ClassVar[str] = "FROM"
    base_name: str
    stage_name: str = ""
    platform: str = ""
    as_keyword: str = ""


@dataclass(frozen=True, kw_only=True)
class _ShellDependent(Instruction):
    command: tuple[str, ...] = ()
    prepend_shell: bool = True
    files: tuple[Heredoc, ...] = ()

    @property
    def json(self) -> bool:
        return not self.prepend_shell


@dataclass(frozen=True, kw_only=True)
class Run(_ShellDependent):
    keyword: ClassVar[str] = "RUN"
    mounts: tuple[Mount, ...] = ()
    network: str = ""
    security: str = ""
    flags_used: tuple[str, ...] = ()

    def expand(self, expand: Expander, raw: Expander | None = None) -> Run:
        if not self.mounts:
            return self
        return replace(self, mounts=tuple(_expand_mount(m, expand) for m in self.mounts))


@dataclass(frozen=True, kw_only=True)
class Cmd(_ShellDependent):
    keyword: ClassVar[str] = "CMD"


@dataclass(frozen=True, kw_only=True)
class Entrypoint(_ShellDependent):
    keyword: ClassVar[str] = "ENTRYPOINT"


@dataclass(frozen=True, kw_only=True)
class Shell(Instruction):
    keyword: ClassVar[str] = "SHELL"
    shell: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class _SourcesAndDest(Instruction):
    sources: tuple[str, ...] = ()
    dest: str = ""
    contents: tuple[SourceContent, ...] = ()
    chown: str = ""
    chmod: str = ""
    link: bool = False
    excludes: tuple[str, ...] = ()

    def _expand_common(self, expand: Expander, raw: Expander | None) -> dict:
        raw = raw or expand
        return {
            "sources": tuple(expand(s) for s in self.sources),
            "dest": expand(self.dest),
            "contents": tuple(
                replace(c, data=raw(c.data)) if c.expand else c for c in self.contents
            ),
            "chown": expand(self.chown),
            "chmod": expand(self.chmod),
            "excludes": tuple(expand(e) for e in self.excludes),
        }


@dataclass(frozen=True, kw_only=True)
class Copy(_SourcesAndDest):
    keyword: ClassVar[str] = "COPY"
    from_: str = ""
    parents: bool = False

    def expand(self, expand: Expander, raw: Expander | None = None) -> Copy:
        out = replace(self, from_=expand(self.from_), **self._expand_common(expand, raw))
        _check_chmod(out.chmod)
        return out


@dataclass(frozen=True, kw_only=True)
class Add(_SourcesAndDest):
    keyword: ClassVar[str] = "ADD"
    keep_git_dir: bool = False
    checksum: str = ""
    unpack: bool | None = None

    def expand(self, expand: Expander, raw: Expander | None = None) -> Add:
        out = replace(self, checksum=expand(self.checksum), **self._expand_common(expand, raw))
        _check_chmod(out.chmod)
        return out

    def source_kinds(self) -> tuple[str, ...]:
        """``git``/``url``/``local`` for each source path (heredoc contents excluded)."""
        return tuple(add_source_kind(s) for s in self.sources)


def add_source_kind(src: str) -> str:
    """What an ADD source is, as BuildKit decides: ``git``, ``url`` or ``local`` (a local
    tar archive is ``local`` too; the builder unpacks it by content, not by name)."""
    # (a fragment ``#ref:subdir`` or BuildKit's query form ``?ref=…&subdir=…`` may follow)
    if re.match(r"^(git@|git://)", src) or re.match(r"^https?://.*\.git([#?].*)?$", src) or re.match(
        r"^[\w.-]+\.(com|org|net|io)/[\w.-]+/[\w.-]+\.git([#?].*)?$", src
    ):
        return "git"
    if re.match(r"^https?://", src):
        return "url"
    return "local"


@dataclass(frozen=True, kw_only=True)
class Env(Instruction):
    keyword: ClassVar[str] = "ENV"
    pairs: tuple[KeyValue, ...]

    def expand(self, expand: Expander, raw: Expander | None = None) -> Env:
        return replace(
            self, pairs=tuple(KeyValue(expand(p.key), expand(p.value), p.legacy) for p in self.pairs)
        )


@dataclass(frozen=True, kw_only=True)
class Label(Env):
    keyword: ClassVar[str] = "LABEL"


@dataclass(frozen=True, kw_only=True)
class Arg(Instruction):
    keyword: ClassVar[str] = "ARG"
    args: tuple[ArgSpec, ...]

    def expand(self, expand: Expander, raw: Expander | None = None) -> Arg:
        return replace(
            self,
            args=tuple(
                ArgSpec(a.key, expand(a.value) if a.value is not None else None) for a in self.args
            ),
        )


@dataclass(frozen=True, kw_only=True)
class Expose(Instruction):
    keyword: ClassVar[str] = "EXPOSE"
    ports: tuple[str, ...]

    def expand(self, expand: Expander, raw: Expander | None = None) -> Expose:
        out: list[str] = []
        for p in self.ports:
            out.extend(go_fields(expand(p)))
        for p in out:
            parse_port_spec(p)
        return replace(self, ports=tuple(out))

    def port_specs(self) -> tuple[PortSpec, ...]:
        return tuple(parse_port_spec(p) for p in self.ports)


@dataclass(frozen=True, kw_only=True)
class User(Instruction):
    keyword: ClassVar[str] = "USER"
    user: str

    def expand(self, expand: Expander, raw: Expander | None = None) -> User:
        return replace(self, user=expand(self.user))


@dataclass(frozen=True, kw_only=True)
class Workdir(Instruction):
    keyword: ClassVar[str] = "WORKDIR"
    path: str

    def expand(self, expand: Expander, raw: Expander | None = None) -> Workdir:
        return replace(self, path=expand(self.path))


@dataclass(frozen=True, kw_only=True)
class Volume(Instruction):
    keyword: ClassVar[str] = "VOLUME"
    volumes: tuple[str, ...]

    def expand(self, expand: Expander, raw: Expander | None = None) -> Volume:
        vols = tuple(expand(v) for v in self.volumes)
        if any(not go_trim_space(v) for v in vols):
            raise _ParseError("VOLUME specified can not be an empty string")
        return replace(self, volumes=vols)


@dataclass(frozen=True, kw_only=True)
class StopSignal(Instruction):
    keyword: ClassVar[str] = "STOPSIGNAL"
    signal: str

    def expand(self, expand: Expander, raw: Expander | None = None) -> StopSignal:
        return replace(self, signal=expand(self.signal))


@dataclass(frozen=True, kw_only=True)
class Maintainer(Instruction):
    keyword: ClassVar[str] = "MAINTAINER"
    maintainer: str


@dataclass(frozen=True, kw_only=True)
class Healthcheck(Instruction):
    keyword: ClassVar[str] = "HEALTHCHECK"
    health: HealthConfig


@dataclass(frozen=True, kw_only=True)
class Onbuild(Instruction):
    """ONBUILD keeps its expression as text (it runs in a child build); ``trigger`` is typed
    when it parses on its own, else None (BuildKit only validates triggers when they fire)."""

    keyword: ClassVar[str] = "ONBUILD"
    expression: str
    trigger: Instruction | None = None


# --------------------------------------------------------------------------- helpers


def parse_duration(text: str) -> int:
    """Go's ``time.ParseDuration`` to nanoseconds (raises _ParseError with Go's message)."""
    units = {
        "ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000,
        "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000,
    }  # fmt: skip
    orig = text
    quoted = '"' + orig + '"'
    neg = False
    if text[:1] in "+-" and text:
        neg = text[0] == "-"
        text = text[1:]
    if text == "0":
        return 0
    if not text:
        raise _ParseError(f"time: invalid duration {quoted}")
    total = 0.0
    while text:
        m = re.match(r"([0-9]*)(\.[0-9]*)?", text)
        assert m is not None
        if not m.group(1) and (not m.group(2) or m.group(2) == "."):
            raise _ParseError(f"time: invalid duration {quoted}")
        number = float((m.group(1) or "0") + (m.group(2) or ""))
        text = text[m.end() :]
        u = re.match(r"[^0-9.]*", text)
        unit = u.group(0) if u else ""
        if not unit:
            raise _ParseError(f"time: missing unit in duration {quoted}")
        if unit not in units:
            raise _ParseError(f'time: unknown unit "{unit}" in duration {quoted}')
        total += number * units[unit]
        text = text[len(unit) :]
    if total > 2**63 - 1:
        raise _ParseError(f"time: invalid duration {quoted}")
    return -int(total) if neg else int(total)


def _opt_interval(name: str, value: str) -> int:
    if not value:
        return 0
    d = parse_duration(value)
    if d == 0:
        return 0
    if d < MINIMUM_DURATION_NS:
        raise _ParseError(f'Interval "{name}" cannot be less than 1ms', value)
    return d


_RAM_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5}


def _ram_in_bytes(value: str) -> int:
    """docker/go-units ``RAMInBytes`` (binary units, optional ``b``/``ib`` suffix)."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kKmMgGtTpP]?)(?:[iI]?[bB])?", value)
    if not m:
        raise _ParseError(f"invalid size: '{value}'", value)
    return int(float(m.group(1)) * _RAM_UNITS[m.group(2).lower()])


def _parse_bool(value: str) -> bool:
    """Go's ``strconv.ParseBool``."""
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError(value)


def parse_mount(value: str, expand: Expander | None = None) -> Mount:
    """BuildKit's ``parseMount``: one ``--mount=`` value (CSV of ``key=value``) to a Mount.

    Without ``expand`` the values that may contain variables are kept raw and checked later.
    """
    try:
        rows = list(csv.reader([value], strict=True))
    except csv.Error as exc:
        raise _ParseError(f"failed to parse csv mounts: {exc}", value) from None
    fields_ = rows[0] if rows else []
    m: dict = {"type": "bind", "readonly": True, "raw": value}
    ro_auto = True
    for item in fields_:
        key, sep, val = item.partition("=")
        key = key.lower()
        if not sep:
            if key in ("readonly", "ro"):
                m["readonly"] = True
                ro_auto = False
                continue
            if key in ("readwrite", "rw"):
                m["readonly"] = False
                ro_auto = False
                continue
            if key == "required":
                if m["type"] in ("secret", "ssh"):
                    m["required"] = True
                    continue
                raise _ParseError(f"unexpected key '{key}' for mount type '{m['type']}'", item)
            raise _ParseError(f"invalid field '{item}' must be a key=value pair", item)
        if expand is not None:
            val = expand(val)
        elif key == "from":
            idx = val.find("$")
            if idx != -1 and idx != len(val) - 1:
                pass  # expanded later by the plan (BuildKit expands mount values too)
        if key == "type":
            if val.lower() not in MOUNT_TYPES:
                raise _ParseError(
                    with_suggestion(
                        f'unsupported mount type "{val}"', val, MOUNT_TYPES, case_sensitive=True
                    ),
                    val,
                )
            m["type"] = val.lower()
        elif key == "from":
            m["from_"] = val
        elif key in ("source", "src"):
            m["source"] = val
        elif key in ("target", "dst", "destination"):
            m["target"] = val
        elif key in ("readonly", "ro", "readwrite", "rw"):
            try:
                b = _parse_bool(val)
            except ValueError:
                raise _ParseError(f"invalid value for {key}: {val}", item) from None
            m["readonly"] = b if key in ("readonly", "ro") else not b
            ro_auto = False
        elif key == "required":
            if m["type"] not in ("secret", "ssh"):
                raise _ParseError(f"unexpected key '{key}' for mount type '{m['type']}'", item)
            try:
                m["required"] = _parse_bool(val)
            except ValueError:
                raise _ParseError(f"invalid value for {key}: {val}", item) from None
        elif key == "sharing":
            if val and m["type"] != "cache":
                raise _ParseError(f"invalid cache sharing set for {m['type']} mount", item)
            m["sharing"] = val
        elif key == "id":
            m["id"] = val
        elif key in ("uid", "gid"):
            if not val.isdigit() or not val.isascii() or int(val) >= 2**32:
                raise _ParseError(f"invalid value for {key}: {val}", item)
            m[key] = int(val)
        elif key == "mode":
            if not re.fullmatch(r"[0-7]+", val) or int(val, 8) >= 2**32:
                raise _ParseError(f"invalid value for {key}: {val}", item)
            m["mode"] = int(val, 8)
        elif key == "size":
            if m["type"] != "tmpfs":
                raise _ParseError(f"unexpected key '{key}' for mount type '{m['type']}'", item)
            m["size"] = _ram_in_bytes(val)
        elif key == "env":
            m["env"] = val
        else:
            raise _ParseError(
                with_suggestion(
                    f"unexpected key '{key}' in '{item}'", key, MOUNT_KEYS, case_sensitive=True
                ),
                item,
            )
    mtype = m["type"]
    if mtype not in ("cache", "secret", "ssh"):  # BuildKit's fileInfoAllowed
        for k in ("mode", "uid", "gid"):
            if m.get(k) is not None:
                raise _ParseError(f'{k} not allowed for "{mtype}" type mounts', value)
    if ro_auto:
        m["readonly"] = mtype not in ("cache", "tmpfs")
    if m.get("sharing") and mtype != "cache":
        raise _ParseError(f"invalid cache sharing set for {mtype} mount", value)
    if mtype == "secret":
        if m.get("from_"):
            raise _ParseError("secret mount should not have a from", value)
        if not m.get("source") and not m.get("target") and not m.get("id"):
            raise _ParseError("one of source, target required", value)
        if m.get("source") and m.get("id"):
            raise _ParseError("both source and id can't be set", value)
    if m.get("env") is not None and mtype != "secret":
        raise _ParseError(f"unexpected key 'env' for mount type '{mtype}'", value)
    sharing = m.get("sharing", "")
    if sharing and sharing not in ("shared", "private", "locked"):
        raise _ParseError(f'unsupported sharing value "{sharing}"', sharing)
    if mtype == "cache" and not sharing:
        m["sharing"] = "shared"
    if mtype in ("bind", "cache", "tmpfs") and not m.get("target") and expand is not None:
        raise _ParseError("mount target is required", value)
    # BuildKit's dispatch-time defaults, so the builder sees complete mounts.
    if mtype == "cache":
        m.setdefault("id", "")
        if not m["id"]:
            m["id"] = m.get("target", "")
        if m.get("mode") is None:
            m["mode"] = 0o755
    elif mtype == "secret":
        if not m.get("id"):
            m["id"] = m.get("source") or posixpath.basename(m.get("target", ""))
        if not m.get("target") and m.get("env") is None:
            m["target"] = "/run/secrets/" + m["id"]
        if m.get("mode") is None:
            m["mode"] = 0o400
    elif mtype == "ssh":
        if not m.get("id"):
            m["id"] = "default"
        if m.get("mode") is None:
            m["mode"] = 0o600
    return Mount(**m)


def _expand_mount(mount: Mount, expand: Expander) -> Mount:
    return parse_mount(mount.raw, expand)


_SYMBOLIC_CHMOD = re.compile(r"^([ugoa]*[-+=]([rwxXst]*|[ugo]))(,[ugoa]*[-+=]([rwxXst]*|[ugo]))*$")


def _check_chmod(chmod: str) -> None:
    if not chmod:
        return
    if re.fullmatch(r"[0-7]+", chmod):
        if int(chmod, 8) > 0o7777:
            raise _ParseError(f"invalid chmod parameter: {chmod}", chmod)
        return
    if not _SYMBOLIC_CHMOD.match(chmod):
        raise _ParseError(f"invalid chmod parameter: {chmod}", chmod)


def parse_port_spec(raw: str) -> PortSpec:
    """docker/go-connections ``nat.ParsePortSpec`` for the container side of an EXPOSE entry."""
    port, _, proto = raw.partition("/")
    proto = proto or "tcp"
    if proto.lower() not in ("tcp", "udp", "sctp"):
        raise _ParseError(f"invalid proto: {proto}", raw)
    container = port.rsplit(":", 1)[-1]
    m = re.fullmatch(r"(\d+)(?:-(\d+))?", container)
    if not m:
        raise _ParseError(f"invalid containerPort: {container}", raw)
    start = int(m.group(1))
    end = int(m.group(2)) if m.group(2) else start
    if start > 65535 or end > 65535 or end < start:
        raise _ParseError(f"invalid containerPort: {container}", raw)
    return PortSpec(start, end, proto.lower())


# --------------------------------------------------------------------------- parsing


def _kvps(args: tuple[str, ...], name: str) -> tuple[KeyValue, ...]:
    if not args:
        raise _ParseError(f"{name} requires at least one argument")
    if len(args) % 3 != 0:
        raise _ParseError(f"Bad input to {name}, too many arguments")
    out = []
    for i in range(0, len(args), 3):
        if not args[i]:
            raise _ParseError(f"{name} names can not be blank")
        out.append(KeyValue(args[i], args[i + 1], args[i + 2] == ""))
    return tuple(out)


def _sources_and_dest(node: Node, name: str) -> dict:
    args = node.args
    srcs, dest = args[:-1], args[-1]
    if parse_heredoc_word(dest) is not None:
        raise _ParseError(f"{name} cannot accept a heredoc as a destination", dest)
    lookup = {h.name: h for h in node.heredocs}
    paths: list[str] = []
    contents: list[SourceContent] = []
    for src in srcs:
        doc = parse_heredoc_word(src)
        if doc is not None:
            hname, _fd, expand, _chomp = doc
            h = lookup.get(hname)
            data = h.text if h is not None else ""
            contents.append(SourceContent(hname, data, expand))
        else:
            paths.append(src)
    return {"sources": tuple(paths), "dest": dest, "contents": tuple(contents)}


def _shell_dependent(node: Node, args: tuple[str, ...] | None = None) -> dict:
    args = node.args if args is None else args
    cmd = args if node.json else ((" ".join(args),) if args else ())
    return {"command": tuple(cmd), "prepend_shell": not node.json, "files": node.heredocs}


def _parse(node: Node) -> Instruction:
    kw = node.keyword
    bf = BFlags(node.flags)
    common = {
        "line": node.start_line,
        "end_line": node.end_line,
        "original": node.original,
        "flags": node.flags,
    }
    args = node.args

    def flags_parse() -> None:
        try:
            bf.parse()
        except FlagError as exc:
            raise _ParseError(str(exc), _flag_token(node, str(exc))) from None

    if kw in ("env", "label"):
        flags_parse()
        cls = Env if kw == "env" else Label
        return cls(pairs=_kvps(args, kw.upper()), **common)
    if kw == "maintainer":
        if len(args) != 1:
            raise _ParseError("MAINTAINER requires exactly one argument")
        flags_parse()
        return Maintainer(maintainer=args[0], **common)
    if kw in ("add", "copy"):
        if len(args) < 2:
            raise _ParseError(
                f"{kw.upper()} requires at least two arguments, but only one was provided. "
                "Destination could not be determined"
            )
        chown = bf.add_string("chown")
        chmod = bf.add_string("chmod")
        link = bf.add_bool("link")
        exclude = bf.add_strings("exclude")
        if kw == "copy":
            frm = bf.add_string("from")
            parents = bf.add_bool("parents")
        else:
            keep = bf.add_bool("keep-git-dir")
            checksum = bf.add_string("checksum")
            unpack = bf.add_bool("unpack")
        flags_parse()
        sd = _sources_and_dest(node, kw.upper())
        shared = {
            "chown": chown.value,
            "chmod": chmod.value,
            "link": link.is_true,
            "excludes": tuple(exclude.values),
        }
        if kw == "copy":
            return Copy(from_=frm.value, parents=parents.is_true, **sd, **shared, **common)
        return Add(
            keep_git_dir=keep.is_true,
            checksum=checksum.value,
            unpack=unpack.is_true if unpack.used else None,
            **sd,
            **shared,
            **common,
        )
    if kw == "from":
        if len(args) == 3 and args[1].lower() == "as":
            stage = args[2].lower()
            if not _VALID_STAGE_NAME.match(stage):
                raise _ParseError(
                    f'invalid name for build stage: "{args[2]}", '
                    "name can't start with a number or contain symbols",
                    args[2],
                )
        elif len(args) != 1:
            raise _ParseError("FROM requires either one or three arguments")
        else:
            stage = ""
        platform = bf.add_string("platform")
        flags_parse()
        return From(
            base_name=args[0],
            stage_name=stage,
            platform=platform.value,
            as_keyword=args[1] if len(args) == 3 else "",
            **common,
        )
    if kw == "onbuild":
        if node.sub is None:
            raise _ParseError("ONBUILD requires at least one argument")
        flags_parse()
        trig = go_trim_space(node.sub.keyword.upper())
        if trig == "ONBUILD":
            raise _ParseError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed", "ONBUILD")
        if trig in ("MAINTAINER", "FROM"):
            raise _ParseError(f"{trig} isn't allowed as an ONBUILD trigger", node.sub.written_keyword)
        expression = re.sub(r"(?i)^\s*ONBUILD\s*", "", node.original, count=1)
        for h in node.sub.heredocs:
            expression += "\n" + h.content + h.name
        try:
            trigger = _parse(node.sub)
        except _ParseError:
            trigger = None
        return Onbuild(expression=expression, trigger=trigger, **common)
    if kw in ("workdir", "user", "stopsignal"):
        name = kw.upper()
        if len(args) != 1:
            raise _ParseError(f"{name} requires exactly one argument")
        if kw != "stopsignal":
            flags_parse()
        if kw == "workdir":
            return Workdir(path=args[0], **common)
        if kw == "user":
            return User(user=args[0], **common)
        return StopSignal(signal=args[0], **common)
    if kw == "run":
        mount = bf.add_strings("mount")
        network = bf.add_string("network", "")
        security = bf.add_string("security", "")
        flags_parse()
        mounts = tuple(parse_mount(v) for v in mount.values)
        if network.used and network.value not in NETWORK_MODES:
            raise _ParseError(f'unsupported network mode "{network.value}"', network.value)
        if security.used and security.value not in SECURITY_MODES:
            raise _ParseError(f'unsupported security mode "{security.value}"', security.value)
        return Run(
            mounts=mounts,
            network=network.value,
            security=security.value,
            flags_used=tuple(bf.used()),
            **_shell_dependent(node),
            **common,
        )
    if kw in ("cmd", "entrypoint"):
        flags_parse()
        cls2 = Cmd if kw == "cmd" else Entrypoint
        return cls2(**_shell_dependent(node), **common)
    if kw == "healthcheck":
        if not args:
            raise _ParseError("HEALTHCHECK requires at least one argument")
        typ = args[0].upper()
        rest = args[1:]
        if typ == "NONE":
            if rest:
                raise _ParseError("HEALTHCHECK NONE takes no arguments")
            return Healthcheck(health=HealthConfig(("NONE",)), **common)
        fl = {n: bf.add_string(n) for n in ("interval", "timeout", "start-period", "start-interval", "retries")}
        flags_parse()
        if typ != "CMD":
            raise _ParseError(f'Unknown type "{typ}" in HEALTHCHECK (try CMD)', args[0])
        cmd = rest if node.json else ((" ".join(rest),) if rest else ())
        if not cmd:
            raise _ParseError("Missing command after HEALTHCHECK CMD")
        test = (("CMD" if node.json else "CMD-SHELL"),) + tuple(cmd)
        retries = 0
        if fl["retries"].value:
            rv = fl["retries"].value
            if not re.fullmatch(r"[+-]?\d+", rv):
                raise _ParseError(f'strconv.ParseInt: parsing "{rv}": invalid syntax', rv)
            retries = int(rv)
            if not -(2**31) <= retries < 2**31:
                raise _ParseError(f'strconv.ParseInt: parsing "{rv}": value out of range', rv)
            if retries < 0:
                raise _ParseError(f"--retries cannot be negative ({retries})", rv)
        health = HealthConfig(
            test=test,
            interval=_opt_interval("interval", fl["interval"].value),
            timeout=_opt_interval("timeout", fl["timeout"].value),
            start_period=_opt_interval("start-period", fl["start-period"].value),
            start_interval=_opt_interval("start-interval", fl["start-interval"].value),
            retries=retries,
        )
        return Healthcheck(health=health, **common)
    if kw == "expose":
        if not args:
            raise _ParseError("EXPOSE requires at least one argument")
        flags_parse()
        return Expose(ports=tuple(sorted(args)), **common)
    if kw == "volume":
        if not args:
            raise _ParseError("VOLUME requires at least one argument")
        flags_parse()
        vols = []
        for v in args:
            v = go_trim_space(v)
            if not v:
                raise _ParseError("VOLUME specified can not be an empty string")
            vols.append(v)
        return Volume(volumes=tuple(vols), **common)
    if kw == "arg":
        if not args:
            raise _ParseError("ARG requires at least one argument")
        flags_parse()
        specs = []
        for a in args:
            if "=" in a:
                key, _, value = a.partition("=")
                if not key:
                    raise _ParseError("ARG names can not be blank", a)
                specs.append(ArgSpec(key, value))
            else:
                specs.append(ArgSpec(a))
        return Arg(args=tuple(specs), **common)
    if kw == "shell":
        flags_parse()
        shell = _shell_dependent(node)["command"]
        if not shell:
            raise _ParseError("SHELL requires at least one argument")
        if not node.json:
            raise _ParseError("SHELL requires the arguments to be in JSON form")
        return Shell(shell=tuple(shell), **common)
    word = node.written_keyword or node.keyword
    raise _ParseError(
        with_suggestion(
            f"unknown instruction: {word}",
            word,
            [k.upper() for k in INSTRUCTIONS],
            case_sensitive=False,
        ),
        word,
    )


def _flag_token(node: Node, message: str) -> str | None:
    for f in node.flags:
        name = f[2:].split("=", 1)[0]
        if name and name in message:
            return f
    return node.flags[0] if node.flags else None


def locate(
    node: Node | None,
    message: str,
    token: str | None,
    lines: tuple[str, ...] | list[str],
    filename: str,
) -> DockerfileError:
    """A DockerfileError pointing at ``token`` inside the node's source lines."""
    if node is None:
        return DockerfileError(message, file=filename)
    start, end = node.start_line, node.end_line
    src_line = start
    column = None
    width = 1
    if token:
        for ln in range(start, min(end, len(lines)) + 1):
            idx = lines[ln - 1].find(token)
            if idx >= 0:
                src_line, column, width = ln, idx + 1, len(token)
                break
    source = lines[src_line - 1].rstrip("\r") if 0 < src_line <= len(lines) else node.original
    if column is None:
        column = len(source) - len(source.lstrip()) + 1
    return DockerfileError(
        message,
        file=filename,
        line=src_line,
        column=column,
        end_line=end,
        source=source,
        width=width,
    )


def expand_instruction(
    node: Node,
    instr: Instruction,
    expand: Expander,
    raw: Expander | None = None,
    *,
    lines: tuple[str, ...] | list[str] = (),
    filename: str = "Dockerfile",
) -> Instruction:
    """``instr.expand`` for callers outside the plan (``import --change``, ONBUILD triggers):
    a value that turns invalid once expanded raises DockerfileError pointing at ``node``."""
    try:
        return instr.expand(expand, raw)
    except _ParseError as exc:
        raise locate(node, str(exc), exc.token, lines, filename) from None


def parse_instruction(
    node: Node, *, lines: tuple[str, ...] | list[str] = (), filename: str = "Dockerfile"
) -> Instruction:
    """One AST node to a typed instruction; DockerfileError (located) on invalid input."""
    try:
        return _parse(node)
    except _ParseError as exc:
        raise locate(node, str(exc), exc.token, lines or node.original.split("\n"), filename) from None


def suggest_instruction(word: str) -> str | None:
    """The keyword BuildKit would suggest for a misspelt instruction."""
    return suggest(word, [k.upper() for k in INSTRUCTIONS], case_sensitive=False)


def instruction_fields(instr: Instruction) -> dict:
    """The instruction's own fields (no location), for reprs and tests."""
    skip = {"line", "end_line", "original", "flags"}
    return {f.name: getattr(instr, f.name) for f in fields(instr) if f.name not in skip}

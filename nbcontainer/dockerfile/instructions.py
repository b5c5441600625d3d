"""Typed, validated instructions (BuildKit's ``instructions`` package).

Values here are *as written* (unexpanded). ``Instruction.expand`` returns a copy with the
words BuildKit expands replaced, so the plan can apply one environment snapshot per
instruction and the builder never has to know which words are expandable.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar

from nbcontainer.dockerfile.errors import DockerfileError, InstructionError
from nbcontainer.dockerfile.flags import BFlags, FlagError, suggest, with_suggestion
from nbcontainer.dockerfile.lexer import go_fields, go_trim_space, saturating_int
from nbcontainer.dockerfile.mounts import Expander, Mount, parse_mount
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

_VALID_STAGE_NAME = re.compile(r"^[a-z][a-z0-9-_.]*$")
NETWORK_MODES = ("default", "none", "host")
SECURITY_MODES = ("sandbox", "insecure")
MINIMUM_DURATION_NS = 1_000_000


_ParseError = InstructionError  # the former name, kept for callers and tests


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
            raise InstructionError("VOLUME specified can not be an empty string")
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
    """Go's ``time.ParseDuration`` to nanoseconds (raises InstructionError with Go's message)."""
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
        raise InstructionError(f"time: invalid duration {quoted}")
    total = 0.0
    while text:
        m = re.match(r"([0-9]*)(\.[0-9]*)?", text)
        assert m is not None
        if not m.group(1) and (not m.group(2) or m.group(2) == "."):
            raise InstructionError(f"time: invalid duration {quoted}")
        number = float((m.group(1) or "0") + (m.group(2) or ""))
        text = text[m.end() :]
        u = re.match(r"[^0-9.]*", text)
        unit = u.group(0) if u else ""
        if not unit:
            raise InstructionError(f"time: missing unit in duration {quoted}")
        if unit not in units:
            raise InstructionError(f'time: unknown unit "{unit}" in duration {quoted}')
        total += number * units[unit]
        text = text[len(unit) :]
    if total > 2**63 - 1:
        raise InstructionError(f"time: invalid duration {quoted}")
    return -int(total) if neg else int(total)


def _opt_interval(name: str, value: str) -> int:
    if not value:
        return 0
    d = parse_duration(value)
    if d == 0:
        return 0
    if d < MINIMUM_DURATION_NS:
        raise InstructionError(f'Interval "{name}" cannot be less than 1ms', value)
    return d


def _expand_mount(mount: Mount, expand: Expander) -> Mount:
    return parse_mount(mount.raw, expand)


_SYMBOLIC_CHMOD = re.compile(r"^([ugoa]*[-+=]([rwxXst]*|[ugo]))(,[ugoa]*[-+=]([rwxXst]*|[ugo]))*$")


def _check_chmod(chmod: str) -> None:
    if not chmod:
        return
    if re.fullmatch(r"[0-7]+", chmod):
        if int(chmod, 8) > 0o7777:
            raise InstructionError(f"invalid chmod parameter: {chmod}", chmod)
        return
    if not _SYMBOLIC_CHMOD.match(chmod):
        raise InstructionError(f"invalid chmod parameter: {chmod}", chmod)


def parse_port_spec(raw: str) -> PortSpec:
    """docker/go-connections ``nat.ParsePortSpec`` for the container side of an EXPOSE entry."""
    port, _, proto = raw.partition("/")
    proto = proto or "tcp"
    if proto.lower() not in ("tcp", "udp", "sctp"):
        raise InstructionError(f"invalid proto: {proto}", raw)
    container = port.rsplit(":", 1)[-1]
    m = re.fullmatch(r"(\d+)(?:-(\d+))?", container)
    if not m:
        raise InstructionError(f"invalid containerPort: {container}", raw)
    start = saturating_int(m.group(1))
    end = saturating_int(m.group(2)) if m.group(2) else start
    if start > 65535 or end > 65535 or end < start:
        raise InstructionError(f"invalid containerPort: {container}", raw)
    return PortSpec(start, end, proto.lower())


# --------------------------------------------------------------------------- parsing


def _kvps(args: tuple[str, ...], name: str) -> tuple[KeyValue, ...]:
    if not args:
        raise InstructionError(f"{name} requires at least one argument")
    if len(args) % 3 != 0:
        raise InstructionError(f"Bad input to {name}, too many arguments")
    out = []
    for i in range(0, len(args), 3):
        if not args[i]:
            raise InstructionError(f"{name} names can not be blank")
        out.append(KeyValue(args[i], args[i + 1], args[i + 2] == ""))
    return tuple(out)


def _sources_and_dest(node: Node, name: str) -> dict:
    args = node.args
    srcs, dest = args[:-1], args[-1]
    if parse_heredoc_word(dest) is not None:
        raise InstructionError(f"{name} cannot accept a heredoc as a destination", dest)
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


class _Request:
    """BuildKit's ``parseRequest``: one node, the flags its instruction declares, and the
    location every instruction keeps."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.args = node.args
        self.flags = BFlags(node.flags)
        self.common: dict[str, Any] = {
            "line": node.start_line,
            "end_line": node.end_line,
            "original": node.original,
            "flags": node.flags,
        }

    @property
    def name(self) -> str:
        return self.node.keyword.upper()

    def parse_flags(self) -> None:
        """Apply the ``--flags`` to the declared ones (after the argument count is checked,
        as BuildKit does, so its first error wins)."""
        try:
            self.flags.parse()
        except FlagError as exc:
            raise InstructionError(str(exc), _flag_token(self.node, str(exc))) from None


def _parse(node: Node) -> Instruction:
    parser = _PARSERS.get(node.keyword)
    if parser is None:
        word = node.written_keyword or node.keyword
        raise InstructionError(
            with_suggestion(
                f"unknown instruction: {word}",
                word,
                [k.upper() for k in INSTRUCTIONS],
                case_sensitive=False,
            ),
            word,
        )
    return parser(_Request(node))


def _parse_env(req: _Request) -> Instruction:
    req.parse_flags()
    cls = Env if req.node.keyword == "env" else Label
    return cls(pairs=_kvps(req.args, req.name), **req.common)


def _parse_maintainer(req: _Request) -> Instruction:
    if len(req.args) != 1:
        raise InstructionError("MAINTAINER requires exactly one argument")
    req.parse_flags()
    return Maintainer(maintainer=req.args[0], **req.common)


def _copy_args(req: _Request) -> Callable[[], dict]:
    """The arguments COPY and ADD share: declares their flags; the returned function reads
    them once the instruction's own flags are declared and parsed."""
    if len(req.args) < 2:
        raise InstructionError(
            f"{req.name} requires at least two arguments, but only one was provided. "
            "Destination could not be determined"
        )
    chown = req.flags.add_string("chown")
    chmod = req.flags.add_string("chmod")
    link = req.flags.add_bool("link")
    exclude = req.flags.add_strings("exclude")

    def shared() -> dict:
        return {
            **_sources_and_dest(req.node, req.name),
            "chown": chown.value,
            "chmod": chmod.value,
            "link": link.is_true,
            "excludes": tuple(exclude.values),
        }

    return shared


def _parse_copy(req: _Request) -> Instruction:
    shared = _copy_args(req)
    frm = req.flags.add_string("from")
    parents = req.flags.add_bool("parents")
    req.parse_flags()
    return Copy(from_=frm.value, parents=parents.is_true, **shared(), **req.common)


def _parse_add(req: _Request) -> Instruction:
    shared = _copy_args(req)
    keep = req.flags.add_bool("keep-git-dir")
    checksum = req.flags.add_string("checksum")
    unpack = req.flags.add_bool("unpack")
    req.parse_flags()
    return Add(
        keep_git_dir=keep.is_true,
        checksum=checksum.value,
        unpack=unpack.is_true if unpack.used else None,
        **shared(),
        **req.common,
    )


def _stage_name(args: tuple[str, ...]) -> str:
    """``FROM image [AS name]``: the lowercased stage name, or ``""``."""
    if len(args) == 3 and args[1].lower() == "as":
        stage = args[2].lower()
        if not _VALID_STAGE_NAME.match(stage):
            raise InstructionError(
                f'invalid name for build stage: "{args[2]}", '
                "name can't start with a number or contain symbols",
                args[2],
            )
        return stage
    if len(args) != 1:
        raise InstructionError("FROM requires either one or three arguments")
    return ""


def _parse_from(req: _Request) -> Instruction:
    args = req.args
    stage = _stage_name(args)
    platform = req.flags.add_string("platform")
    req.parse_flags()
    return From(
        base_name=args[0],
        stage_name=stage,
        platform=platform.value,
        as_keyword=args[1] if len(args) == 3 else "",
        **req.common,
    )


def _parse_onbuild(req: _Request) -> Instruction:
    sub = req.node.sub
    if sub is None:
        raise InstructionError("ONBUILD requires at least one argument")
    req.parse_flags()
    trig = go_trim_space(sub.keyword.upper())
    if trig == "ONBUILD":
        raise InstructionError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed", "ONBUILD")
    if trig in ("MAINTAINER", "FROM"):
        raise InstructionError(f"{trig} isn't allowed as an ONBUILD trigger", sub.written_keyword)
    expression = re.sub(r"(?i)^\s*ONBUILD\s*", "", req.node.original, count=1)
    for h in sub.heredocs:
        expression += "\n" + h.content + h.name
    try:
        trigger: Instruction | None = _parse(sub)
    except InstructionError:
        trigger = None  # BuildKit validates a trigger when it fires, in the child build
    return Onbuild(expression=expression, trigger=trigger, **req.common)


def _one_argument(req: _Request) -> str:
    if len(req.args) != 1:
        raise InstructionError(f"{req.name} requires exactly one argument")
    return req.args[0]


def _parse_workdir(req: _Request) -> Instruction:
    path = _one_argument(req)
    req.parse_flags()
    return Workdir(path=path, **req.common)


def _parse_user(req: _Request) -> Instruction:
    user = _one_argument(req)
    req.parse_flags()
    return User(user=user, **req.common)


def _parse_stopsignal(req: _Request) -> Instruction:
    # BuildKit's parseStopSignal never parses its flags, so a --flag here is ignored.
    return StopSignal(signal=_one_argument(req), **req.common)


def _parse_run(req: _Request) -> Instruction:
    mount = req.flags.add_strings("mount")
    network = req.flags.add_string("network", "")
    security = req.flags.add_string("security", "")
    req.parse_flags()
    mounts = tuple(parse_mount(v) for v in mount.values)
    if network.used and network.value not in NETWORK_MODES:
        raise InstructionError(f'unsupported network mode "{network.value}"', network.value)
    if security.used and security.value not in SECURITY_MODES:
        raise InstructionError(f'unsupported security mode "{security.value}"', security.value)
    return Run(
        mounts=mounts,
        network=network.value,
        security=security.value,
        flags_used=tuple(req.flags.used()),
        **_shell_dependent(req.node),
        **req.common,
    )


def _parse_cmd(req: _Request) -> Instruction:
    req.parse_flags()
    cls = Cmd if req.node.keyword == "cmd" else Entrypoint
    return cls(**_shell_dependent(req.node), **req.common)


_HEALTH_DURATIONS = ("interval", "timeout", "start-period", "start-interval")


def _parse_healthcheck(req: _Request) -> Instruction:
    args = req.args
    if not args:
        raise InstructionError("HEALTHCHECK requires at least one argument")
    typ = args[0].upper()
    rest = args[1:]
    if typ == "NONE":
        if rest:
            raise InstructionError("HEALTHCHECK NONE takes no arguments")
        return Healthcheck(health=HealthConfig(("NONE",)), **req.common)
    durations = {n: req.flags.add_string(n) for n in _HEALTH_DURATIONS}
    retries = req.flags.add_string("retries")
    req.parse_flags()
    if typ != "CMD":
        raise InstructionError(f'Unknown type "{typ}" in HEALTHCHECK (try CMD)', args[0])
    cmd = rest if req.node.json else ((" ".join(rest),) if rest else ())
    if not cmd:
        raise InstructionError("Missing command after HEALTHCHECK CMD")
    retry_count = _health_retries(retries.value)  # checked before the durations, as BuildKit
    health = HealthConfig(
        test=(("CMD" if req.node.json else "CMD-SHELL"),) + tuple(cmd),
        interval=_opt_interval("interval", durations["interval"].value),
        timeout=_opt_interval("timeout", durations["timeout"].value),
        start_period=_opt_interval("start-period", durations["start-period"].value),
        start_interval=_opt_interval("start-interval", durations["start-interval"].value),
        retries=retry_count,
    )
    return Healthcheck(health=health, **req.common)


def _health_retries(rv: str) -> int:
    """``--retries``: Go's ``strconv.ParseInt(v, 10, 32)``, then not negative."""
    if not rv:
        return 0
    if not re.fullmatch(r"[+-]?\d+", rv):
        raise InstructionError(f'strconv.ParseInt: parsing "{rv}": invalid syntax', rv)
    retries = saturating_int(rv)
    if not -(2**31) <= retries < 2**31:
        raise InstructionError(f'strconv.ParseInt: parsing "{rv}": value out of range', rv)
    if retries < 0:
        raise InstructionError(f"--retries cannot be negative ({retries})", rv)
    return retries


def _parse_expose(req: _Request) -> Instruction:
    if not req.args:
        raise InstructionError("EXPOSE requires at least one argument")
    req.parse_flags()
    return Expose(ports=tuple(sorted(req.args)), **req.common)


def _parse_volume(req: _Request) -> Instruction:
    if not req.args:
        raise InstructionError("VOLUME requires at least one argument")
    req.parse_flags()
    vols = []
    for v in req.args:
        v = go_trim_space(v)
        if not v:
            raise InstructionError("VOLUME specified can not be an empty string")
        vols.append(v)
    return Volume(volumes=tuple(vols), **req.common)


def _parse_arg(req: _Request) -> Instruction:
    if not req.args:
        raise InstructionError("ARG requires at least one argument")
    req.parse_flags()
    specs = []
    for a in req.args:
        if "=" in a:
            key, _, value = a.partition("=")
            if not key:
                raise InstructionError("ARG names can not be blank", a)
            specs.append(ArgSpec(key, value))
        else:
            specs.append(ArgSpec(a))
    return Arg(args=tuple(specs), **req.common)


def _parse_shell(req: _Request) -> Instruction:
    req.parse_flags()
    shell = _shell_dependent(req.node)["command"]
    if not shell:
        raise InstructionError("SHELL requires at least one argument")
    if not req.node.json:
        raise InstructionError("SHELL requires the arguments to be in JSON form")
    return Shell(shell=tuple(shell), **req.common)


# One parser per keyword, as BuildKit's ParseInstruction switch.
_PARSERS: dict[str, Callable[[_Request], Instruction]] = {
    "add": _parse_add,
    "arg": _parse_arg,
    "cmd": _parse_cmd,
    "copy": _parse_copy,
    "entrypoint": _parse_cmd,
    "env": _parse_env,
    "expose": _parse_expose,
    "from": _parse_from,
    "healthcheck": _parse_healthcheck,
    "label": _parse_env,
    "maintainer": _parse_maintainer,
    "onbuild": _parse_onbuild,
    "run": _parse_run,
    "shell": _parse_shell,
    "stopsignal": _parse_stopsignal,
    "user": _parse_user,
    "volume": _parse_volume,
    "workdir": _parse_workdir,
}


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
    except InstructionError as exc:
        raise locate(node, str(exc), exc.token, lines, filename) from None


def parse_instruction(
    node: Node, *, lines: tuple[str, ...] | list[str] = (), filename: str = "Dockerfile"
) -> Instruction:
    """One AST node to a typed instruction; DockerfileError (located) on invalid input."""
    try:
        return _parse(node)
    except InstructionError as exc:
        raise locate(node, str(exc), exc.token, lines or node.original.split("\n"), filename) from None


def suggest_instruction(word: str) -> str | None:
    """The keyword BuildKit would suggest for a misspelt instruction."""
    return suggest(word, [k.upper() for k in INSTRUCTIONS], case_sensitive=False)


def instruction_fields(instr: Instruction) -> dict:
    """The instruction's own fields (no location), for reprs and tests."""
    skip = {"line", "end_line", "original", "flags"}
    return {f.name: getattr(instr, f.name) for f in fields(instr) if f.name not in skip}

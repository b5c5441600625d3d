"""History ``created_by`` strings exactly as BuildKit's Dockerfile frontend writes them
(``dockerfile2llb/convert.go``: ``commitToHistory`` and the ``dispatch*`` functions).

Go's ``%q`` of a string slice is ``["a" "b"]`` and ``%v`` is ``[a b]``; steps that change the
filesystem (RUN, COPY, ADD) get `` # buildkit`` appended.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace

from ..dockerfile import (
    Add,
    Arg,
    Cmd,
    Copy,
    Entrypoint,
    Env,
    Expose,
    Healthcheck,
    Instruction,
    Label,
    Maintainer,
    Shell,
    StopSignal,
    User,
    Volume,
)
from ..oci.config import History
from .metadata import expand_ports

COMMENT = "buildkit.dockerfile.v0"


def source_comment(filename: str, start: int, end: int) -> str:
    """BuildKit's comment plus the Dockerfile lines of the instruction that made the entry:
    ``buildkit.dockerfile.v0 Dockerfile:2`` (``:2-4`` over several lines). The image config
    carries it, so it survives push, pull and save/load, next to the ``created_by`` it
    locates; ``analysis.history.parse_source`` reads it back. The digest of an image then
    depends on where its instructions stand in the Dockerfile (as it already depends on
    their text); the build cache does not: the lines are written at export, never cached."""
    lines = f"{start}-{end}" if end > start else f"{start}"
    return f"{COMMENT} {filename.replace(' ', '_')}:{lines}"


def with_sources(history: Sequence[History], lines: Mapping[int, tuple[int, int]],
                 filename: str) -> tuple[History, ...]:
    """``history`` with the entries this build made (index → their instruction's lines)
    located, and every other entry's location (a base image's, from its own Dockerfile)
    dropped: the located entries are then exactly the image's own layers."""
    out = []
    for i, h in enumerate(history):
        if i in lines:
            start, end = lines[i]
            out.append(replace(h, comment=source_comment(filename, start, end)))
        elif h.comment and h.comment.startswith(COMMENT + " "):
            out.append(replace(h, comment=COMMENT))
        else:
            out.append(h)
    return tuple(out)


def go_quote(text: str) -> str:
    """Go's strconv.Quote for the common cases (JSON escaping is the same for printable text)."""
    return json.dumps(text, ensure_ascii=False).replace("\\u007f", "\\x7f")


def go_q_list(items: Sequence[str]) -> str:
    return "[" + " ".join(go_quote(i) for i in items) + "]"


def go_v_list(items: Sequence[str]) -> str:
    return "[" + " ".join(items) + "]"


def _duration(ns: int) -> str:
    """Go's time.Duration.String for whole units (enough for HEALTHCHECK values)."""
    if ns == 0:
        return "0s"
    secs, rem = divmod(ns, 1_000_000_000)
    if rem == 0:
        h, m, s = secs // 3600, (secs % 3600) // 60, secs % 60
        return (f"{h}h" if h else "") + (f"{m}m" if h or m else "") + f"{s}s"
    return f"{ns / 1e9:g}s"


def run_created_by(argv: Sequence[str], build_args: Sequence[tuple[str, str]]) -> str:
    """``RUN |2 A=1 B=2 /bin/sh -c make # buildkit`` (the |N prefix only with ARGs)."""
    words = [f"{k}={v}" for k, v in build_args]
    if words:
        words.insert(0, f"|{len(words)}")
    return "RUN " + " ".join([*words, *argv]) + " # buildkit"


def copy_created_by(instr: Copy | Add) -> str:
    parts = ["ADD" if isinstance(instr, Add) else "COPY"]
    if isinstance(instr, Copy) and instr.parents:
        parts.append("--parents")
    if instr.chown:
        parts.append(f"--chown={instr.chown}")
    if instr.chmod:
        parts.append(f"--chmod={instr.chmod}")
    parts += list(instr.sources)
    parts += [f"<<{c.path}" for c in instr.contents]
    parts.append(instr.dest)
    return " ".join(parts) + " # buildkit"


def metadata_created_by(instr: Instruction, argv: Sequence[str] | None = None) -> str | None:
    """The history entry of a config-only instruction; None when BuildKit writes none
    (ONBUILD)."""
    match instr:
        case Cmd():
            return f"CMD {go_q_list(argv or ())}"
        case Entrypoint():
            return f"ENTRYPOINT {go_q_list(argv or ())}"
        case Label():
            return "LABEL " + " ".join(f"{kv.key}={kv.value}" for kv in instr.pairs)
        case Env():
            return "ENV " + " ".join(f"{kv.key}={kv.value}" for kv in instr.pairs)
        case Expose():
            ports = sorted(set(expand_ports(instr)))
            return "EXPOSE map[" + " ".join(f"{p}:{{}}" for p in ports) + "]"
        case User():
            return f"USER {instr.user}"
        case Volume():
            return f"VOLUME {go_v_list(instr.volumes)}"
        case StopSignal():
            return f"STOPSIGNAL {instr.signal}"
        case Shell():
            return f"SHELL {go_v_list(instr.shell)}"
        case Maintainer():
            return f"MAINTAINER {instr.maintainer}"
        case Healthcheck():
            h = instr.health
            fields = [go_q_list(h.test), go_quote(_duration(h.interval)),
                      go_quote(_duration(h.timeout)), go_quote(_duration(h.start_period)),
                      go_quote(_duration(h.start_interval)), f"'\\x{h.retries:02x}'"]
            return "HEALTHCHECK &{" + " ".join(fields) + "}"
        case Arg():
            return "ARG " + " ".join(a.key if a.value is None else f"{a.key}={a.value}"
                                     for a in instr.args)
    return None

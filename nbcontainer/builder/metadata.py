"""Config-only instructions (CMD, ENV, EXPOSE, …) applied to an image config, with Docker's
semantics. The builder and ``import --change`` share this one implementation."""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from types import MappingProxyType
from typing import Any

from ..dockerfile import (
    Cmd,
    DockerfileError,
    Entrypoint,
    Env,
    Expose,
    Healthcheck,
    Instruction,
    Label,
    Lexer,
    Maintainer,
    Onbuild,
    Shell,
    StopSignal,
    User,
    Volume,
    Workdir,
    expand_instruction,
    parse_instruction,
    parse_syntax,
)
from ..oci.config import ContainerConfig
from ..oci.config import Healthcheck as HealthcheckConfig

DEFAULT_SHELL = ("/bin/sh", "-c")

# What `docker import --change` / `docker commit --change` accept.
CHANGE_KEYWORDS = frozenset({
    "CMD", "ENTRYPOINT", "ENV", "EXPOSE", "HEALTHCHECK", "LABEL", "ONBUILD", "SHELL",
    "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
})


@dataclass(frozen=True)
class StageConfig:
    """The config being built plus what Docker tracks alongside it within one stage."""

    config: ContainerConfig
    author: str | None = None
    cmd_set: bool = False  # CMD given in this stage (an ENTRYPOINT then keeps it)


def shell_of(config: ContainerConfig) -> tuple[str, ...]:
    return tuple(config.shell) if config.shell else DEFAULT_SHELL


def command_argv(config: ContainerConfig, command: Sequence[str], prepend_shell: bool) -> tuple[str, ...]:
    """The argv of a shell-form (``SHELL`` + command) or exec-form instruction."""
    return command_argv_for(shell_of(config), command, prepend_shell)


def command_argv_for(shell: Sequence[str], command: Sequence[str],
                     prepend_shell: bool) -> tuple[str, ...]:
    """BuildKit's ``withShell``: the shell plus the command words joined by spaces."""
    return (*shell, " ".join(command)) if prepend_shell else tuple(command)


def expand_ports(instr: Expose) -> list[str]:
    """``80``, ``53/udp``, ``9000-9002`` → ``80/tcp``… one key per port, as BuildKit stores."""
    return [f"{p}/{spec.proto}" for spec in instr.port_specs()
            for p in range(spec.start, spec.end + 1)]


def apply(state: StageConfig, instr: Instruction) -> StageConfig:
    """The config after one metadata instruction (values already expanded)."""
    fn = _APPLY.get(type(instr))
    if fn is None:
        raise DockerfileError(f"{instr.keyword} does not change the image config")
    return fn(state, instr)


def _config(state: StageConfig, **changes: Any) -> StageConfig:
    return replace(state, config=replace(state.config, **changes))


def _cmd(state: StageConfig, instr: Any) -> StageConfig:
    argv = command_argv(state.config, instr.command, instr.prepend_shell)
    return replace(_config(state, cmd=argv), cmd_set=True)


def _entrypoint(state: StageConfig, instr: Any) -> StageConfig:
    argv = command_argv(state.config, instr.command, instr.prepend_shell)
    # A later ENTRYPOINT resets a CMD inherited from the base image (Docker's rule).
    return _config(state, entrypoint=argv, cmd=state.config.cmd if state.cmd_set else None)


def _label(state: StageConfig, instr: Any) -> StageConfig:
    labels = dict(state.config.labels or {})
    labels.update((kv.key, kv.value) for kv in instr.pairs)
    return _config(state, labels=MappingProxyType(labels))


def _env(state: StageConfig, instr: Any) -> StageConfig:
    c = state.config
    for kv in instr.pairs:
        c = c.with_env(kv.key, kv.value)
    return replace(state, config=c)


def _expose(state: StageConfig, instr: Any) -> StageConfig:
    ports = list(state.config.exposed_ports or ())
    ports += [p for p in expand_ports(instr) if p not in ports]
    return _config(state, exposed_ports=tuple(ports))


def _volume(state: StageConfig, instr: Any) -> StageConfig:
    vols = list(state.config.volumes or ())
    vols += [v for v in instr.volumes if v not in vols]
    return _config(state, volumes=tuple(vols))


def _workdir(state: StageConfig, instr: Any) -> StageConfig:
    path = instr.path
    if not posixpath.isabs(path):
        path = posixpath.join(state.config.working_dir or "/", path)
    return _config(state, working_dir=posixpath.normpath(path))


def _healthcheck(state: StageConfig, instr: Any) -> StageConfig:
    h = instr.health
    return _config(state, healthcheck=HealthcheckConfig(
        tuple(h.test), h.interval, h.timeout, h.start_period, h.start_interval, h.retries))


_APPLY: dict[type, Callable[[StageConfig, Any], StageConfig]] = {
    Cmd: _cmd,
    Entrypoint: _entrypoint,
    Label: _label,
    Env: _env,
    Expose: _expose,
    User: lambda st, i: _config(st, user=i.user),
    Volume: _volume,
    Workdir: _workdir,
    StopSignal: lambda st, i: _config(st, stop_signal=i.signal),
    Onbuild: lambda st, i: _config(st, on_build=(*(st.config.on_build or ()), i.expression)),
    Shell: lambda st, i: _config(st, shell=tuple(i.shell)),
    Healthcheck: _healthcheck,
    Maintainer: lambda st, i: replace(st, author=i.maintainer),
}


def apply_config_changes(config: ContainerConfig, changes: Sequence[str]) -> ContainerConfig:
    """``docker import --change 'CMD ["sh"]'``: each change is one Dockerfile instruction,
    expanded with the config's environment as it stands."""
    state = StageConfig(config)
    for change in changes:
        tree = parse_syntax(change, filename="--change")
        if len(tree.nodes) != 1:
            raise DockerfileError(f"--change {change!r}: give exactly one instruction")
        node = tree.nodes[0]
        if node.keyword.upper() not in CHANGE_KEYWORDS:
            raise DockerfileError(
                f"--change {change!r}: {node.keyword.upper()} is not supported",
                hint=f"use one of {', '.join(sorted(CHANGE_KEYWORDS))}",
            )
        instr = parse_instruction(node, lines=tree.lines)
        lexer = Lexer(tree.escape_token)
        env = state.config.env_dict()
        instr = expand_instruction(
            node, instr, partial(lexer.process_word, env=env),
            lines=tree.lines, filename="--change",
        )
        state = apply(state, instr)
    return state.config

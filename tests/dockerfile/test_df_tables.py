"""The frontend's dispatch tables cover what they dispatch on, and keep BuildKit's check order."""

from __future__ import annotations

import pytest

from nbcontainer.dockerfile import DockerfileError, instructions, mounts, parse
from nbcontainer.dockerfile.errors import InstructionError


def test_every_instruction_keyword_has_a_parser() -> None:
    assert set(instructions._PARSERS) == set(instructions.INSTRUCTIONS)


def test_every_mount_key_has_a_setter() -> None:
    assert set(mounts._FIELD_SETTERS) == set(mounts.MOUNT_KEYS)
    assert set(mounts._TYPE_DEFAULTS) <= set(mounts.MOUNT_TYPES)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        # each field is checked against the type read so far (bind until type= comes)
        ("sharing=locked,type=cache,target=/c", "invalid cache sharing set for bind mount"),
        ("size=1m,type=tmpfs,target=/t", "unexpected key 'size' for mount type 'bind'"),
        ("type=bind,target=/x,mode=0700", 'mode not allowed for "bind" type mounts'),
        ("type=secret,from=a,id=b", "secret mount should not have a from"),
        ("type=secret,source=a,id=b", "both source and id can't be set"),
        ("type=cache,target=/c,env=X", "unexpected key 'env' for mount type 'cache'"),
        ("type=cache,target=/c,sharing=bogus", 'unsupported sharing value "bogus"'),
        ("type=bind,ro=maybe", "invalid value for ro: maybe"),
        ("type=bnd", 'unsupported mount type "bnd" (did you mean bind?)'),
        ("tpye=bind", "unexpected key 'tpye' in 'tpye=bind' (did you mean type?)"),
        ("type=bind,readonly,x", "invalid field 'x' must be a key=value pair"),
    ],
)
def test_mount_errors_in_buildkits_order(value: str, message: str) -> None:
    with pytest.raises(InstructionError) as info:
        mounts.parse_mount(value)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("value", "fields"),
    [
        ("type=cache,target=/c", {"id": "/c", "mode": 0o755, "sharing": "shared", "readonly": False}),
        ("type=secret,id=tok", {"target": "/run/secrets/tok", "mode": 0o400, "readonly": True}),
        ("type=secret,id=tok,env=TOKEN", {"target": "", "env": "TOKEN"}),
        ("type=ssh", {"id": "default", "mode": 0o600}),
        ("type=tmpfs,target=/t,size=1k", {"size": 1024, "readonly": False}),
        ("target=/src,rw", {"type": "bind", "readonly": False, "mode": None}),
    ],
)
def test_mount_defaults_per_type(value: str, fields: dict) -> None:
    mount = mounts.parse_mount(value)
    assert {k: getattr(mount, k) for k in fields} == fields


def test_mount_target_required_once_expanded() -> None:
    assert mounts.parse_mount("type=cache").target == ""  # raw: may come from a variable
    with pytest.raises(InstructionError, match="mount target is required"):
        mounts.parse_mount("type=cache", lambda word: word)


def test_healthcheck_retries_are_checked_before_durations() -> None:
    with pytest.raises(DockerfileError) as info:
        parse("FROM a\nHEALTHCHECK --retries=x --interval=1ns CMD a\n", build_platform="linux/amd64")
    assert info.value.message == 'strconv.ParseInt: parsing "x": invalid syntax'


def test_stopsignal_ignores_flags_as_buildkit_does() -> None:
    plan = parse("FROM a\nSTOPSIGNAL --whatever SIGTERM\n", build_platform="linux/amd64")
    assert plan.stages[0].instructions[0].signal == "SIGTERM"

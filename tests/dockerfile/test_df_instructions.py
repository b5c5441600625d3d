"""Typed instructions and flags. Tables ported from BuildKit
``frontend/dockerfile/instructions/bflag_test.go`` (TestBuilderFlags) and
``frontend/dockerfile/instructions/parse_test.go`` (TestCommandsExactlyOneArgument,
TestCommandsAtLeastOneArgument, TestCommandsNoDestinationArgument, TestCommandsBlankNames,
TestHealthCheckCmd, TestParseOptInterval, TestErrorCases, TestRunCmdFlagsUsed), plus the
mount rules of ``instructions/commands_runmount.go``."""

from __future__ import annotations

import pytest

from nbcontainer.dockerfile import (
    Add,
    Arg,
    ArgSpec,
    Cmd,
    Copy,
    DockerfileError,
    Entrypoint,
    Env,
    Expose,
    From,
    Healthcheck,
    HealthConfig,
    KeyValue,
    Label,
    Maintainer,
    Onbuild,
    Run,
    Shell,
    StopSignal,
    User,
    Volume,
    Workdir,
    parse_instruction,
    parse_syntax,
)
from nbcontainer.dockerfile.flags import BFlags, FlagError
from nbcontainer.dockerfile.instructions import _ParseError, parse_duration, parse_mount


def one(text: str):
    tree = parse_syntax(text)
    return parse_instruction(tree.nodes[0], lines=tree.lines)


def error(text: str) -> DockerfileError:
    with pytest.raises(DockerfileError) as exc:
        one(text)
    return exc.value


# --------------------------------------------------------------------------- bflag_test.go


def test_builder_flags() -> None:
    bf = BFlags([])
    bf.parse()
    bf = BFlags(["--"])
    bf.parse()

    bf = BFlags([])
    s1, b1 = bf.add_string("str1", ""), bf.add_bool("bool1", False)
    bf.parse()
    assert not s1.used and not b1.used

    bf = BFlags([])
    s1, b1 = bf.add_string("str1", "HI"), bf.add_bool("bool1", False)
    bf.parse()
    assert s1.value == "HI" and not b1.is_true

    bf = BFlags(["--str1"])
    bf.add_string("str1", "HI")
    with pytest.raises(FlagError):
        bf.parse()

    bf = BFlags(["--str1="])
    s1 = bf.add_string("str1", "HI")
    bf.parse()
    assert s1.value == ""

    bf = BFlags(["--str1=BYE"])
    s1 = bf.add_string("str1", "HI")
    bf.parse()
    assert s1.value == "BYE"

    for args, expected in ((["--bool1"], True), (["--bool1=true"], True), (["--bool1=false"], False)):
        bf = BFlags(args)
        b1 = bf.add_bool("bool1", False)
        bf.parse()
        assert b1.is_true is expected

    bf = BFlags(["--bool1=false1"])
    bf.add_bool("bool1", False)
    with pytest.raises(FlagError):
        bf.parse()

    bf = BFlags(["--bool2"])
    bf.add_bool("bool1", False)
    with pytest.raises(FlagError):
        bf.parse()

    bf = BFlags(["--bool1", "--str1=BYE"])
    s1, b1 = bf.add_string("str1", "HI"), bf.add_bool("bool1", False)
    bf.parse()
    assert s1.value == "BYE" and b1.is_true

    bf = BFlags(
        ["--bool2=false", "--bool3", "--bool4=true", "--bool5", "--str2= ", "--str3=def3", "--str4=my-val"]
    )
    for name, default in (("bool1", False), ("bool2", False), ("bool3", False), ("bool4", True), ("bool5", True)):
        bf.add_bool(name, default)
    for name, default in (("str1", ""), ("str2", ""), ("str3", "def3"), ("str4", "def4")):
        bf.add_string(name, default)
    bf.parse()
    assert ", ".join(sorted(bf.used())) == "bool2, bool3, bool4, bool5, str2, str3, str4"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--boo"], "unknown flag: --boo"),
        (["--form=a"], "unknown flag: --form (did you mean from?)"),
        (["--from=a", "--from=b"], "Duplicate flag specified: from"),
        (["--link=maybe"], "Expecting boolean value for flag link, not: maybe"),
        (["--link="], "Missing a value on flag: link"),
        (["--from"], "Missing a value on flag: from"),
        (["-x"], "Arg should start with -- : -x"),
    ],
)
def test_flag_messages(args: list[str], message: str) -> None:
    bf = BFlags(args)
    bf.add_string("from")
    bf.add_bool("link")
    with pytest.raises(FlagError) as exc:
        bf.parse()
    assert str(exc.value) == message


def test_strings_flag_repeats() -> None:
    c = one("COPY --exclude=*.md --exclude=*.txt . /dst\n")
    assert isinstance(c, Copy)
    assert c.excludes == ("*.md", "*.txt")


# --------------------------------------------------------------------------- parse_test.go


@pytest.mark.parametrize("cmd", ["MAINTAINER", "WORKDIR", "USER", "STOPSIGNAL"])
def test_commands_exactly_one_argument(cmd: str) -> None:
    assert error(cmd).message == f"{cmd} requires exactly one argument"


@pytest.mark.parametrize("cmd", ["ENV", "LABEL", "ONBUILD", "HEALTHCHECK", "EXPOSE", "VOLUME"])
def test_commands_at_least_one_argument(cmd: str) -> None:
    assert error(cmd).message == f"{cmd} requires at least one argument"


@pytest.mark.parametrize("cmd", ["ADD", "COPY"])
def test_commands_no_destination_argument(cmd: str) -> None:
    assert error(f"{cmd} arg1").message == (
        f"{cmd} requires at least two arguments, but only one was provided. "
        "Destination could not be determined"
    )


@pytest.mark.parametrize("cmd", ["ENV", "LABEL"])
def test_commands_blank_names(cmd: str) -> None:
    assert error(f"{cmd} =arg2").message == f"{cmd} names can not be blank"


def test_healthcheck_cmd() -> None:
    hc = one("HEALTHCHECK CMD hello world\n")
    assert isinstance(hc, Healthcheck)
    assert hc.health.test == ("CMD-SHELL", "hello world")


def test_parse_opt_interval() -> None:
    assert "cannot be less than 1ms" in error("HEALTHCHECK --interval=50ns CMD a").message
    assert one("HEALTHCHECK --interval=0ms CMD a").health.interval == 0
    assert one("HEALTHCHECK --interval=1ms CMD a").health.interval == 1_000_000


@pytest.mark.parametrize(
    ("dockerfile", "message"),
    [
        ("COPY\t\n\t\tquux \\\n      bar", "COPY requires at least two arguments"),
        ("ONBUILD FROM scratch", "FROM isn't allowed as an ONBUILD trigger"),
        ("MAINTAINER --boo joe@example.com", "unknown flag: --boo"),
        ("ONBUILD ONBUILD RUN touch foobar", "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
        ("FOO bar", "unknown instruction: FOO"),
        ("foo bar", "unknown instruction: foo"),
    ],
)
def test_error_cases(dockerfile: str, message: str) -> None:
    assert message in error(dockerfile).message


def test_run_cmd_flags_used() -> None:
    run = one("RUN --mount=type=tmpfs,target=/foo/ echo hello")
    assert isinstance(run, Run)
    assert run.flags_used == ("mount",)


# --------------------------------------------------------------------------- all 18 keywords


def test_all_keywords() -> None:
    assert one("FROM --platform=linux/arm64 alpine:3 AS Build") == From(
        base_name="alpine:3", stage_name="build", platform="linux/arm64", as_keyword="AS", line=1, end_line=1
    )
    run = one('RUN --network=none --security=insecure ["a", "b"]')
    assert (run.command, run.json, run.network, run.security) == (("a", "b"), True, "none", "insecure")
    cmd = one("CMD echo hi")
    assert isinstance(cmd, Cmd) and cmd.command == ("echo hi",) and cmd.prepend_shell
    ep = one('ENTRYPOINT ["/bin/sh", "-c"]')
    assert isinstance(ep, Entrypoint) and ep.command == ("/bin/sh", "-c") and ep.json
    assert one('SHELL ["/bin/bash", "-o", "pipefail", "-c"]').shell == ("/bin/bash", "-o", "pipefail", "-c")
    cp = one("COPY --from=build --chown=1:2 --chmod=0644 --link --parents a b /dst/")
    assert isinstance(cp, Copy)
    assert (cp.from_, cp.chown, cp.chmod, cp.link, cp.parents, cp.sources, cp.dest) == (
        "build", "1:2", "0644", True, True, ("a", "b"), "/dst/",
    )  # fmt: skip
    add = one(
        "ADD --checksum=sha256:abc --keep-git-dir=true --unpack=false --link=false --exclude=x "
        "https://e.com/a.tar /a"
    )
    assert isinstance(add, Add)
    assert (add.checksum, add.keep_git_dir, add.unpack, add.link, add.excludes) == (
        "sha256:abc", True, False, False, ("x",),
    )  # fmt: skip
    assert one("ADD a /b").unpack is None
    assert one("ENV a=1 b=2").pairs == (KeyValue("a", "1"), KeyValue("b", "2"))
    assert one("ENV a 1 2").pairs == (KeyValue("a", "1 2", legacy=True),)
    lab = one('LABEL "com.x"="y z"')
    assert isinstance(lab, Label) and lab.pairs == (KeyValue('"com.x"', '"y z"'),)
    assert one("ARG a b=2 c=").args == (ArgSpec("a"), ArgSpec("b", "2"), ArgSpec("c", ""))
    assert one("EXPOSE 8080/udp 80 7000-7010").ports == ("7000-7010", "80", "8080/udp")
    assert one("USER app:app") == User(user="app:app", line=1, end_line=1)
    assert isinstance(one("WORKDIR /app"), Workdir)
    assert one('VOLUME ["/a", "/b"]').volumes == ("/a", "/b")
    assert one("VOLUME /a /b").volumes == ("/a", "/b")
    assert isinstance(one("STOPSIGNAL SIGKILL"), StopSignal)
    assert isinstance(one("MAINTAINER me"), Maintainer)
    hc = one("HEALTHCHECK --interval=5s --timeout=3s --start-period=1m --start-interval=2s --retries=4 CMD [\"x\"]")
    assert hc.health == HealthConfig(
        ("CMD", "x"), 5_000_000_000, 3_000_000_000, 60_000_000_000, 2_000_000_000, 4
    )
    assert one("HEALTHCHECK NONE").health == HealthConfig(("NONE",))
    ob = one("ONBUILD RUN echo hi")
    assert isinstance(ob, Onbuild) and ob.expression == "RUN echo hi"
    assert isinstance(ob.trigger, Run)
    assert isinstance(one("ARG x"), Arg) and isinstance(one("ENV x=1"), Env)
    assert isinstance(one("EXPOSE 1"), Expose) and isinstance(one('SHELL ["a"]'), Shell)
    assert isinstance(one("VOLUME /x"), Volume)


def test_copy_heredoc_sources() -> None:
    cp = one("COPY <<EOF <<-'RAW' /dst/\n$x\nEOF\n\t$y\nRAW\n")
    assert [(c.path, c.data, c.expand) for c in cp.contents] == [("EOF", "$x\n", True), ("RAW", "$y\n", False)]
    assert cp.sources == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("COPY a <<EOF\nx\nEOF\n", "COPY cannot accept a heredoc as a destination"),
        ("FROM a b", "FROM requires either one or three arguments"),
        ("FROM a AS 1x", 'invalid name for build stage: "1x", name can\'t start with a number or contain symbols'),
        ("SHELL /bin/sh -c", "SHELL requires the arguments to be in JSON form"),
        ("HEALTHCHECK NONE x", "HEALTHCHECK NONE takes no arguments"),
        ("HEALTHCHECK FOO x", 'Unknown type "FOO" in HEALTHCHECK (try CMD)'),
        ("HEALTHCHECK CMD", "Missing command after HEALTHCHECK CMD"),
        ("HEALTHCHECK --retries=-1 CMD x", "--retries cannot be negative (-1)"),
        ("HEALTHCHECK --timeout=5 CMD x", 'time: missing unit in duration "5"'),
        ("RUN --network=bridge x", 'unsupported network mode "bridge"'),
        ("RUN --security=root x", 'unsupported security mode "root"'),
        ("RUN --mount=type=foo,target=/x x", 'unsupported mount type "foo"'),
        ("RUN --mount=type=cach,target=/x x", 'unsupported mount type "cach" (did you mean cache?)'),
        ("RUN --mount=type=cache,targt=/x x", "unexpected key 'targt' in 'targt=/x' (did you mean target?)"),
        ("RUN --mount=type=tmpfs,target=/x,mode=0700 x", 'mode not allowed for "tmpfs" type mounts'),
        ("RUN --mount=type=bind,sharing=locked,target=/x x", "invalid cache sharing set for bind mount"),
        ("RUN --mount=type=secret,from=a,id=x x", "secret mount should not have a from"),
        ("RUN --mount=type=secret x", "one of source, target required"),
        ("RUN --mount=type=cache,target=/x,sharing=yes x", 'unsupported sharing value "yes"'),
        ("RUN --mount=type=cache,target=/x,uid=abc x", "invalid value for uid: abc"),
        ("RUN --mount=nokey x", "invalid field 'nokey' must be a key=value pair"),
        ("RUN --mount=type=bind,required x", "unexpected key 'required' for mount type 'bind'"),
        ("RUN --device=/dev/x x", "unknown flag: --device"),
        ("FROMM x", "unknown instruction: FROMM (did you mean FROM?)"),
        ("copyy a b", "unknown instruction: copyy (did you mean copy?)"),
    ],
)
def test_validation_messages(text: str, message: str) -> None:
    assert error(text).message == message


def test_mount_defaults() -> None:
    cache = parse_mount("type=cache,target=/root/.cache")
    assert (cache.id, cache.mode, cache.sharing, cache.readonly) == ("/root/.cache", 0o755, "shared", False)
    secret = parse_mount("type=secret,id=tok")
    assert (secret.target, secret.mode, secret.readonly) == ("/run/secrets/tok", 0o400, True)
    secret_env = parse_mount("type=secret,id=tok,env=TOKEN,required")
    assert (secret_env.env, secret_env.required, secret_env.target) == ("TOKEN", True, "")
    ssh = parse_mount("type=ssh")
    assert (ssh.id, ssh.mode) == ("default", 0o600)
    bind = parse_mount("target=/src,from=build,source=/out,rw")
    assert (bind.type, bind.from_, bind.source, bind.readonly) == ("bind", "build", "/out", False)
    tmp = parse_mount("type=tmpfs,target=/t,size=64m")
    assert tmp.size == 64 * 1024 * 1024
    quoted = parse_mount('type=bind,"target=/a,b"')
    assert quoted.target == "/a,b"


@pytest.mark.parametrize(
    ("text", "ns"),
    [("0", 0), ("1s", 10**9), ("1.5h", 5400 * 10**9), ("1m30s", 90 * 10**9), ("300ms", 3 * 10**8), ("2us", 2000)],
)
def test_parse_duration(text: str, ns: int) -> None:
    assert parse_duration(text) == ns


@pytest.mark.parametrize("text", ["", "s", "1", "1x", ".s", "1.2.3s"])
def test_parse_duration_invalid(text: str) -> None:
    with pytest.raises(_ParseError):
        parse_duration(text)

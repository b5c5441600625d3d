"""Build-plan semantics (``dockerfile2llb``): stages, ARG scoping, platform and proxy args,
--build-arg, --target, the stage graph, cycles and parallel groups. Expected behaviour follows
BuildKit's ``dockerfile2llb/convert_test.go`` (TestDockerfileCircularDependencies) and the
documented ``docker build`` semantics."""

from __future__ import annotations

import pytest

from nbcontainer.dockerfile import (
    Arg,
    BuildPlan,
    Copy,
    DockerfileError,
    Env,
    Platform,
    Run,
    Workdir,
    default_platform,
    parse,
)

AMD64 = "linux/amd64"


def plan(text: str, **kw) -> BuildPlan:
    kw.setdefault("build_platform", AMD64)
    return parse(text, **kw)


def test_stages_names_and_indexes() -> None:
    p = plan("FROM alpine AS Base\nRUN a\nFROM base\nFROM scratch AS out\n")
    assert [(s.index, s.name) for s in p.stages] == [(0, "base"), (1, ""), (2, "out")]
    assert p.stages[1].base_stage == 0
    assert p.stages[1].display_name == "stage-1"
    assert p.target == 2
    assert p.stage("BASE").index == 0 and p.stage(1).index == 1 and p.stage("2").index == 2


def test_global_args_only_in_from_until_redeclared() -> None:
    p = plan(
        "ARG VERSION=3.19\nARG UNUSED\nFROM alpine:${VERSION}\n"
        "RUN echo\nWORKDIR /v$VERSION\nARG VERSION\nWORKDIR /v$VERSION\n"
    )
    st = p.stages[0]
    assert st.base_name == "alpine:3.19"
    workdirs = [i.path for i in st.instructions if isinstance(i, Workdir)]
    assert workdirs == ["/v", "/v3.19"]
    assert p.meta_args == {"VERSION": "3.19", "UNUSED": None}


def test_build_arg_overrides_global_and_stage_defaults() -> None:
    text = "ARG V=1\nFROM img:$V\nARG V\nARG W=2\nENV x=$V-$W\n"
    p = plan(text, build_args={"V": "9", "W": "8"})
    assert p.stages[0].base_name == "img:9"
    assert p.stages[0].env == {"x": "9-8"}
    assert p.stages[0].args == {"V": "9", "W": "8"}


def test_env_snapshot_per_instruction() -> None:
    p = plan("FROM scratch\nENV a=hello\nENV a=bye b=$a\nENV c=$a\n")
    assert p.stages[0].env == {"a": "bye", "b": "hello", "c": "bye"}


def test_env_wins_over_arg() -> None:
    p = plan("FROM scratch\nENV X=env\nARG X=arg\nWORKDIR /$X\n")
    assert p.stages[0].instructions[-1].path == "/env"


def test_arg_default_expanded_with_earlier_values() -> None:
    p = plan("FROM scratch\nARG A=1\nARG B=${A}2\nENV C=$B\n")
    assert p.stages[0].env == {"C": "12"}


def test_platform_args_need_redeclaring_in_stage() -> None:
    p = plan(
        "FROM --platform=$BUILDPLATFORM alpine AS b\nWORKDIR /$TARGETARCH\nARG TARGETARCH\n"
        "WORKDIR /$TARGETARCH\nARG TARGETPLATFORM BUILDOS\nENV t=$TARGETPLATFORM o=$BUILDOS\n",
        platform="linux/arm/v7",
    )
    st = p.stages[0]
    assert st.platform == AMD64
    assert [i.path for i in st.instructions if isinstance(i, Workdir)] == ["/", "/arm"]
    assert st.env == {"t": "linux/arm/v7", "o": "linux"}
    assert str(p.target_platform) == "linux/arm/v7"


def test_default_platform_is_linux() -> None:
    plat = default_platform()
    assert plat.os == "linux" and plat.architecture
    assert Platform.parse("linux/arm64/v8") == Platform("linux", "arm64", "")
    assert str(Platform.parse("arm")) == "linux/arm/v7"


def test_proxy_args_are_passed_but_not_declared() -> None:
    p = plan(
        "FROM scratch\nRUN x\nARG HTTP_PROXY\nENV p=$HTTP_PROXY\n",
        build_args={"HTTP_PROXY": "http://p:3128", "no_proxy": "local", "OTHER": "1"},
    )
    assert p.proxy_env == {"HTTP_PROXY": "http://p:3128", "no_proxy": "local"}
    assert p.stages[0].env == {"p": "http://p:3128"}
    assert p.unused_build_args == ("OTHER",)


def test_target_and_reachability() -> None:
    text = (
        "FROM alpine AS build\nRUN make\n"
        "FROM build AS test\nRUN make test\n"
        "FROM alpine AS docs\nRUN mkdocs\n"
        "FROM scratch AS prod\nCOPY --from=build /app /app\n"
    )
    p = plan(text)
    assert p.target == 3
    assert p.reachable == {0, 3}
    assert p.order == (0, 3)
    t = plan(text, target="TEST")
    assert t.target == 1 and t.reachable == {0, 1}
    with pytest.raises(DockerfileError) as exc:
        plan(text, target="nope")
    assert exc.value.message == 'target stage "nope" could not be found'


def test_dependency_kinds_and_parallel_groups() -> None:
    text = (
        "FROM alpine AS a\n"
        "FROM alpine AS b\n"
        "FROM a AS c\nCOPY --from=b /x /x\n"
        "FROM alpine AS d\nRUN --mount=type=bind,from=c,target=/c true\n"
        "FROM scratch\nCOPY --from=d /y /y\nCOPY --from=busybox:1.36 /bin/sh /sh\nCOPY --from=0 /z /z\n"
    )
    p = plan(text)
    kinds = {(d.kind, d.stage, d.image) for d in p.stages[2].dependencies}
    assert kinds == {("from", 0, None), ("copy", 1, None)}
    assert [(d.kind, d.stage) for d in p.stages[3].dependencies] == [("mount", 2)]
    images = [d.image for d in p.stages[4].dependencies if d.image]
    assert images == ["busybox:1.36"]
    assert p.parallel_groups == ((0, 1), (2,), (3,), (4,))
    assert p.order == (0, 1, 2, 3, 4)
    assert [s.index for s in p.stages_to_build()] == [0, 1, 2, 3, 4]


def test_copy_from_expands_global_args() -> None:
    p = plan("ARG SRC=builder\nFROM alpine AS builder\nFROM scratch\nCOPY --from=$SRC /a /a\n")
    assert p.stages[1].stage_deps == {0}


def test_from_only_sees_earlier_stages() -> None:
    p = plan("FROM later AS first\nFROM alpine AS later\n")
    assert p.stages[0].base_stage is None
    assert p.stages[0].dependencies == ()


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("FROM busybox AS stage0\nCOPY --from=stage0 f1 /sub/\n", "stage0"),
        (
            "FROM busybox AS stage0\nCOPY --from=stage2 f1 /sub/\nFROM busybox AS stage1\n"
            "COPY --from=stage0 f2 /sub/\nFROM busybox AS stage2\nCOPY --from=stage1 f2 /sub/\n",
            "stage0",
        ),
        ("FROM busybox\nCOPY --from=0 /a /b\n", "stage-0"),
    ],
)
def test_circular_dependencies(text: str, name: str) -> None:
    with pytest.raises(DockerfileError) as exc:
        plan(text)
    assert exc.value.message == f"circular dependency detected on stage: {name}"
    assert exc.value.line is not None and exc.value.source


def test_expansion_only_where_buildkit_expands() -> None:
    p = plan(
        "FROM scratch\nARG D=/data\nARG U=app\n"
        "RUN echo $D\nCMD echo $D\nENTRYPOINT [\"$D\"]\n"
        "COPY --chown=$U $D/a $D/\nUSER $U\nVOLUME $D\nEXPOSE ${PORT:-80}/tcp\n"
        "LABEL k=$D\nSTOPSIGNAL ${SIG:-SIGTERM}\nONBUILD RUN echo $D\n"
    )
    ins = p.stages[0].instructions
    run = next(i for i in ins if isinstance(i, Run))
    assert run.command == ("echo $D",)
    assert ins[3].command == ("echo $D",) and ins[4].command == ("$D",)
    cp = next(i for i in ins if isinstance(i, Copy))
    assert (cp.chown, cp.sources, cp.dest) == ("app", ("/data/a",), "/data/")
    assert ins[6].user == "app" and ins[7].volumes == ("/data",) and ins[8].ports == ("80/tcp",)
    assert ins[9].pairs[0].value == "/data" and ins[10].signal == "SIGTERM"
    assert ins[11].expression == "RUN echo $D"


def test_mount_values_are_expanded() -> None:
    p = plan("FROM scratch\nARG C=/cache\nRUN --mount=type=cache,target=$C,id=x-$C true\n")
    mount = p.stages[0].instructions[-1].mounts[0]
    assert (mount.target, mount.id) == ("/cache", "x-/cache")


def test_heredoc_copy_content_expansion_keeps_quotes() -> None:
    p = plan("FROM scratch\nARG N=me\nCOPY <<EOF /f\n\"$N\" '$N'\nEOF\n")
    assert p.stages[0].instructions[-1].contents[0].data == "\"me\" 'me'\n"


def test_stage_inherits_env_from_base_stage_not_args() -> None:
    p = plan("FROM scratch AS a\nARG X=1\nENV E=$X\nFROM a\nENV F=${E}${X}\n")
    assert p.stages[1].env == {"E": "1", "F": "1"}


def test_used_args_every_run_counts() -> None:
    p = plan("FROM scratch\nARG A=1\nARG B=2\nRUN true\nENV x=1\n")
    assert p.stages[0].used_args == {"A", "B"}


def test_instructions_are_typed_and_located() -> None:
    p = plan("FROM scratch\n\nARG a=1\nENV b=2\n")
    arg, env = p.stages[0].instructions
    assert isinstance(arg, Arg) and arg.line == 3
    assert isinstance(env, Env) and env.line == 4
    assert p.stages[0].raw_instructions[0] is not arg or arg.args[0].value == "1"


def test_run_env_snapshot_and_proxy() -> None:
    p = plan(
        "FROM scratch AS a\nARG X=1\nRUN a\nENV X=env\nRUN b\n",
        build_args={"HTTP_PROXY": "http://p"},
    )
    st = p.stages[0]
    assert st.run_env(1, p.proxy_env) == {"HTTP_PROXY": "http://p", "X": "1"}
    assert st.run_env(3) == {"X": "env"}


def test_targetstage_is_a_global_arg() -> None:
    p = plan("FROM scratch AS build\nARG TARGETSTAGE\nENV T=$TARGETSTAGE\nFROM scratch AS out\n", target="build")
    assert p.stages[0].env == {"T": "build"}


def test_invalid_base_image_reference() -> None:
    with pytest.raises(DockerfileError) as exc:
        plan("FROM Alpine\n")
    assert exc.value.message.startswith('failed to parse stage name "Alpine": ')
    assert (exc.value.line, exc.value.column) == (1, 6)


def test_add_source_kinds() -> None:
    p = plan("FROM scratch\nADD https://e.com/a.tgz https://github.com/x/y.git git@github.com:x/y.git a.tar /d/\n")
    assert p.stages[0].instructions[0].source_kinds() == ("url", "git", "git", "local")

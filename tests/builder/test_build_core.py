"""The builder end to end as root on a busybox base: instructions, history, stages."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest

from nbcontainer.api import build, run
from nbcontainer.dockerfile import DockerfileError
from nbcontainer.errors import BuildError
from nbcontainer.progress import Collector
from tests.support.builds import flatten, tree, write
from tests.support.marks import needs_root

pytestmark = needs_root


def created_by(img) -> list[tuple[str, bool]]:
    return [(h.created_by, h.empty_layer) for h in img.history[1:]]


def test_history_formats(do_build, ctx: Path) -> None:
    write(ctx, {"a.txt": "a\n"})
    img = do_build('FROM busybox\nARG V=1\nENV A=b C="d e"\nLABEL k=v\nEXPOSE 80 53/udp\n'
                   "USER root\nVOLUME /data\nSTOPSIGNAL SIGTERM\nSHELL [\"/bin/sh\", \"-c\"]\n"
                   "RUN echo $V > /v\nCOPY a.txt /app/\nWORKDIR /app\n"
                   'ENTRYPOINT ["/bin/echo"]\nCMD ["hi"]\nONBUILD RUN true\n')
    assert created_by(img) == [
        ("ARG V=1", True), ("ENV A=b C=d e", True), ("LABEL k=v", True),
        ("EXPOSE map[53/udp:{} 80/tcp:{}]", True), ("USER root", True),
        ("VOLUME [/data]", True), ("STOPSIGNAL SIGTERM", True), ("SHELL [/bin/sh -c]", True),
        ("RUN |1 V=1 /bin/sh -c echo $V > /v # buildkit", False),
        ("COPY a.txt /app/ # buildkit", False), ("WORKDIR /app", True),
        ('ENTRYPOINT ["/bin/echo"]', True), ('CMD ["hi"]', True),
    ]
    # BuildKit's comment, and the Dockerfile line of the instruction (see builder/history.py)
    assert [h.comment for h in img.history[1:4]] == [
        "buildkit.dockerfile.v0 Dockerfile:2", "buildkit.dockerfile.v0 Dockerfile:3",
        "buildkit.dockerfile.v0 Dockerfile:4"]
    assert all(h.comment.startswith("buildkit.dockerfile.v0 Dockerfile:")
               for h in img.history[1:])
    c = img.config.config
    assert c.env[-2:] == ("A=b", "C=d e") and c.labels == {"k": "v"}
    assert sorted(c.exposed_ports) == ["53/udp", "80/tcp"] and c.volumes == ("/data",)
    assert c.working_dir == "/app" and c.entrypoint == ("/bin/echo",) and c.cmd == ("hi",)
    assert c.on_build == ("RUN true",) and c.shell == ("/bin/sh", "-c")
    assert len(img.manifest.layers) == 3  # base, RUN, COPY (WORKDIR existed)


def test_entrypoint_resets_inherited_cmd_and_workdir_creates(do_build) -> None:
    base = do_build('FROM busybox\nCMD ["sh"]\n', tags=["base:1"])
    assert base.config.config.cmd == ("sh",)
    img = do_build('FROM base:1\nENTRYPOINT ["echo"]\nWORKDIR /w/x\n')
    assert img.config.config.cmd is None and img.config.config.entrypoint == ("echo",)
    assert created_by(img)[-1] == ("WORKDIR /w/x", False)


def test_multistage_copy_from_and_target(do_build, ctx: Path, tmp_path: Path) -> None:
    df = ("FROM busybox AS build\nRUN mkdir -p /out && echo built > /out/app && "
          "chown 1000:2000 /out/app\n"
          "FROM busybox AS unused\nRUN exit 1\n"
          "FROM scratch\nCOPY --from=build /out/app /bin/app\nCOPY --from=build /out /o2\n")
    img = do_build(df)
    t = tree(flatten(img, tmp_path / "flat"))
    assert t["bin/app"][:5] == ("f", 0o644, 1000, 2000, 6)
    assert t["o2/app"][2:4] == (1000, 2000)
    assert img.config.config.env == ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
                                     "/sbin:/bin",)
    first = do_build(df, target="build")
    assert len(first.manifest.layers) == 2


def test_copy_rules_chown_chmod_wildcards(do_build, ctx: Path, tmp_path: Path) -> None:
    write(ctx, {"f1.txt": "1", "f2.txt": "22", "g.md": "g", "d/sub/x": "x", "d/y": "y",
                ".dockerignore": "d/y\n", "exe": "#!/bin/sh\n"})
    (ctx / "exe").chmod(0o700)
    df = ("FROM busybox\n"
          "COPY *.txt /multi/\n"
          "COPY d /dcontent\n"
          "COPY --chown=app:extra --chmod=640 f1.txt /owned\n"
          "COPY --chmod=u=rwX,go=rX exe d /sym/\n"
          "COPY f1.txt /renamed.txt\n"
          "COPY f2.txt /existing/dir\n")
    # /existing/dir exists in the image: the file goes inside it
    base = do_build("FROM busybox\nRUN mkdir -p /existing/dir && "
                    "echo 'app:x:1000:1000::/:/bin/sh' >> /etc/passwd && "
                    "echo 'extra:x:2000:' >> /etc/group\n", tags=["busybox:latest"])
    assert base
    t = tree(flatten(do_build(df), tmp_path / "flat"))
    assert {k for k in t if k.startswith("multi/")} == {"multi/f1.txt", "multi/f2.txt"}
    assert "dcontent/sub/x" in t and "dcontent/y" not in t and "dcontent/d" not in t
    assert t["owned"][:4] == ("f", 0o640, 1000, 2000)
    assert t["sym/exe"][1] == 0o755 and t["sym/sub"][1] == 0o755 and t["sym/sub/x"][1] == 0o644
    assert t["renamed.txt"][5] == b"1"
    assert t["existing/dir/f2.txt"][5] == b"22"
    with pytest.raises(BuildError, match="must be a directory"):
        do_build("FROM busybox\nCOPY f1.txt f2.txt /nodir\n")
    with pytest.raises(BuildError, match="not found"):
        do_build("FROM busybox\nCOPY d/y /y\n")  # excluded by .dockerignore


def test_heredocs_and_add_archives(do_build, ctx: Path, tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("pkg/file")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    raw = buf.getvalue()
    import bz2
    import lzma

    import zstandard

    write(ctx, {"a.tar": raw, "a.tar.gz": gzip.compress(raw), "a.tar.bz2": bz2.compress(raw),
                "a.tar.xz": lzma.compress(raw),
                "a.tar.zst": zstandard.ZstdCompressor().compress(raw),
                "plain.gz": gzip.compress(b"not a tar")})
    df = ("FROM busybox\n"
          "ADD a.tar /t1/\nADD a.tar.gz /t2\nADD a.tar.bz2 /t3/\nADD a.tar.xz /t4/\n"
          "ADD a.tar.zst /t5/\nADD plain.gz /p/\nCOPY a.tar /c/\n"
          "COPY <<EOF /here.txt\nhello $HOSTNAME\nEOF\n"
          "RUN <<EOF\necho from heredoc > /hd\nEOF\n"
          "RUN cat <<EOT > /hd2\nline\nEOT\n")
    t = tree(flatten(do_build(df), tmp_path / "flat"))
    for n in range(1, 6):
        assert t[f"t{n}/pkg/file"][5] == b"abc", n
    assert "p/plain.gz" in t and "c/a.tar" in t
    assert t["here.txt"][1] == 0o644 and t["here.txt"][5] == b"hello \n"
    assert t["hd"][5] == b"from heredoc\n" and t["hd2"][5] == b"line\n"


def test_whiteouts_opaque_and_rename(do_build, tmp_path: Path) -> None:
    img = do_build("FROM busybox\nRUN mkdir -p /d/sub && echo 1 > /d/sub/f && echo k > /keep\n"
                   "RUN rm /bin/ls /keep && rm -rf /d && mkdir /d && echo 2 > /d/new && "
                   "mv /usr/sbin /usr/sbin2\n")
    t = tree(flatten(img, tmp_path / "flat"))
    assert "bin/ls" not in t and "keep" not in t and "d/sub" not in t
    assert t["d/new"][5] == b"2\n"
    assert "usr/sbin" not in t and "usr/sbin2" in t
    # the layer itself carries OCI whiteouts
    names = [n for n, _ in img.layers[-1].files()]
    assert "bin/.wh.ls" in names and "d/.wh..wh..opq" in names


def test_onbuild_triggers(do_build, tmp_path: Path) -> None:
    do_build("FROM busybox\nONBUILD RUN echo triggered > /trig\n", tags=["ob:1"])
    img = do_build("FROM ob:1\nRUN cat /trig\n")
    assert img.config.config.on_build is None
    t = tree(flatten(img, tmp_path / "flat"))
    assert t["trig"][5] == b"triggered\n"


def test_run_failure_names_line_and_output(do_build) -> None:
    with pytest.raises(BuildError) as info:
        do_build("FROM busybox\n\nRUN echo oops && exit 3\n")
    text = str(info.value)
    assert "Dockerfile:3" in text and "exit code: 3" in text and "oops" in text
    with pytest.raises(DockerfileError):
        do_build("FROM busybox\nBOGUS x\n")


def test_progress_events_and_run(do_build, bstore) -> None:
    events = Collector()
    do_build('FROM busybox\nRUN echo out-line\nCMD ["echo", "app-output"]\n', tags=["p:1"],
             progress=events)
    starts = [(e.step, e.steps, e.text) for e in events.kinds("start")]
    assert starts == [(1, 2, "FROM busybox"), (2, 2, "RUN /bin/sh -c echo out-line")]
    assert any(e.text == "out-line" for e in events.kinds("log"))
    chunks: list[bytes] = []
    assert run("p:1", store=bstore, output=chunks.append) == 0
    assert b"".join(chunks) == b"app-output\n"
    assert run("p:1", ["sh", "-c", "exit 7"], store=bstore, output=chunks.append) == 7


def test_cli_build_and_run(bstore, ctx: Path, tmp_path: Path, capfd) -> None:
    from nbcontainer.cli import main

    write(ctx, {"Dockerfile": 'FROM busybox\nCOPY my-app.sh /app/\nWORKDIR /app\n'
                              'CMD ["sh","my-app.sh"]\n', "my-app.sh": "echo app says hi\n"})
    root = str(bstore.home)
    assert main(["--root", root, "build", "-t", "my-image", "--iidfile", str(tmp_path / "iid"),
                 "--output", f"type=local,dest={tmp_path / 'out'}", str(ctx)]) == 0
    err = capfd.readouterr().err
    assert "#2 [2/3] COPY my-app.sh /app/" in err and "DONE" in err
    assert (tmp_path / "out/app/my-app.sh").is_file()
    assert (tmp_path / "iid").read_text().startswith("sha256:")
    assert main(["--root", root, "run", "--rm", "my-image"]) == 0
    assert "app says hi" in capfd.readouterr().out
    assert main(["--root", root, "build", "--platform", "linux/amd64,linux//arm64",
                 str(ctx)]) == 1
    assert "invalid platform 'linux//arm64'" in capfd.readouterr().err


def test_inspect_config_is_valid_json(do_build) -> None:
    img = do_build("FROM busybox\nRUN true\n")
    cfg = json.loads(img.store.blobs.read(img.manifest.config.digest))
    assert cfg["history"][-1] == {"created": cfg["created"],
                                  "comment": "buildkit.dockerfile.v0 Dockerfile:2",
                                  "created_by": "RUN /bin/sh -c true # buildkit",
                                  "empty_layer": True}
    assert build  # the API is importable under its documented name

"""The differential cases: each a Dockerfile and its context, built by nbcontainer and by each
peer (docker's BuildKit first, buildah second) in test_diff_builds.py."""

from __future__ import annotations

import gzip
import io
import os
import struct
import tarfile
from pathlib import Path

from tests.support.buildah import BASE

F = f"FROM {BASE}\n"


def _tar(files: dict[str, bytes], gz: bool = False) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.uid, info.gid = len(data), 0o640, 1000, 1000
            tar.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    return gzip.compress(raw, mtime=0) if gz else raw


CASES: dict[str, tuple[str, dict[str, str | bytes]]] = {
    "run-basic": (F + "RUN mkdir -p /a/b && echo hi > /a/b/f && ln -s /a/b/f /link\n", {}),
    "env-arg-label": (F + "ARG V=1\nENV A=x B=\"y z\"\nLABEL l1=v1 \"l 2\"=v2\n"
                      "RUN echo $V $A > /out\n", {}),
    "cmd-entrypoint": (F + 'CMD ["sh"]\nENTRYPOINT ["/bin/echo"]\nCMD ["hello"]\n', {}),
    "entrypoint-shell": (F + "ENTRYPOINT echo run\nUSER 1000:1000\nSTOPSIGNAL SIGINT\n"
                         "EXPOSE 80 53/udp\nVOLUME /data\n", {}),
    "copy-file-rename": (F + "COPY a.txt /dest.txt\nCOPY a.txt /dir/\n",
                         {"a.txt": "aaa\n"}),
    "copy-dir-contents": (F + "COPY src /dst\nCOPY src/ /dst2/\n",
                          {"src/x": "x", "src/sub/y": "y", "src/sub/deeper/z": "z"}),
    "copy-wildcards": (F + "COPY *.txt /txt/\nCOPY s?c/*.py /py/\n",
                       {"a.txt": "a", "b.txt": "b", "c.md": "c", "src/m.py": "m",
                        "src/n.pyc": "n"}),
    "copy-existing-dir": (F + "RUN mkdir -p /existing\nCOPY a.txt /existing\n",
                          {"a.txt": "a"}),
    "copy-chown-names": (F + "COPY --chown=app:extra a.txt /o/a\nCOPY --chown=1000 d /od\n",
                         {"a.txt": "a", "d/f": "f"}),
    "copy-chmod-octal": (F + "COPY --chmod=0751 a.txt /m/a\nCOPY --chmod=600 d /md\n",
                         {"a.txt": "a", "d/f": "f", "d/g/h": "h"}),
    "dockerignore": (F + "COPY . /ctx/\n",
                     {".dockerignore": "*.log\n!keep.log\nsecret/\nDockerfile\n",
                      "a.log": "x", "keep.log": "k", "secret/s": "s", "ok/f": "f"}),
    "dockerignore-nested": (F + "COPY . /ctx/\n",
                            {".dockerignore": "**/*.tmp\nbuild\n!build/keep\n",
                             "x/y/z.tmp": "t", "x/y/z.txt": "z", "build/a": "a",
                             "build/keep": "k"}),
    "stage-copy": (F.replace("\n", " AS build\n") + "RUN mkdir /out && echo b > /out/bin && "
                   "chown 1000:2000 /out/bin && chmod 4755 /out/bin\n"
                   + F + "COPY --from=build /out/bin /usr/local/bin/tool\n"
                   "COPY --from=build /out /out2\n", {}),
    "stage-index-and-scratch": ("FROM scratch AS files\nCOPY a.txt /a\n" + F +
                                "COPY --from=0 /a /from-index\n", {"a.txt": "a"}),
    "whiteout-file": (F + "RUN rm /bin/ls /etc/group\n", {}),
    "opaque-dir": (F + "RUN mkdir -p /d/sub && echo 1 > /d/sub/f\n"
                   "RUN rm -rf /d && mkdir /d && echo 2 > /d/new\n", {}),
    "rename-dir": (F + "RUN mkdir -p /src/inner && echo f > /src/inner/f\n"
                   "RUN mv /src /moved\n", {}),
    "readd-after-delete": (F + "RUN echo one > /f\nRUN rm /f\nRUN echo two > /f\n", {}),
    "links": (F + "RUN mkdir /l && echo t > /l/target && ln /l/target /l/hard && "
              "ln -s target /l/soft && ln -s /nowhere /l/dangling\n", {}),
    "add-archives": (F + "ADD a.tar /t1/\nADD b.tar.gz /t2/\nADD plain.txt /p/\n",
                     {"a.tar": _tar({"pkg/x": b"x"}), "b.tar.gz": _tar({"y": b"yy"}, gz=True),
                      "plain.txt": "p"}),
    "workdir-used": (F + "WORKDIR /app/sub\nCOPY a.txt .\nRUN pwd > where\n",
                     {"a.txt": "a"}),
    "user-run": (F + "USER app\nRUN id -u > /tmp/id && id -g >> /tmp/id\nUSER root\n"
                 "RUN chown app /tmp/id\n", {}),
    "onbuild-stage": (F.replace("\n", " AS base\n") + "ONBUILD RUN echo trig > /trig\n"
                      "FROM base\nRUN cat /trig > /seen\n", {}),
    "shell-instruction": (F + 'SHELL ["/bin/sh", "-e", "-c"]\nRUN echo $0 > /sh\n', {}),
    "env-in-copy-dest": (F + "ENV D=/envdest\nCOPY a.txt $D/\n", {"a.txt": "a"}),
    "symlink-dest-parent": (F + "RUN mkdir /real && ln -s /real /lnk\nCOPY a.txt /lnk/\n",
                            {"a.txt": "a"}),
    # RUN --mount types buildah 1.28 supports (COPY --parents/--exclude/--link it doesn't)
    "mount-cache": (F + "RUN --mount=type=cache,target=/mc,id=diffcase echo hi > /mc/f && "
                    "cat /mc/f > /out\n", {}),
    "mount-bind-context": (F + "RUN --mount=type=bind,source=data,target=/md cat /md/x > /out\n",
                           {"data/x": "x"}),
    "mount-bind-stage": (f"FROM {BASE} AS s\nRUN echo s > /s\n" + F +
                         "RUN --mount=type=bind,from=s,source=/s,target=/ms cp /ms /out\n", {}),
    "mount-tmpfs": (F + "RUN --mount=type=tmpfs,target=/mt echo t > /mt/x && cat /mt/x > /out\n",
                    {}),
    "mount-secret": (F + "RUN --mount=type=secret,id=tok wc -c < /run/secrets/tok > /out\n", {}),
    # independent stages (ours run concurrently; buildah's too, with --jobs); buildah 1.28
    # rejects every other issue-7 COPY/ADD flag (--link, --parents, --checksum, --unpack,
    # --keep-git-dir), so those have no differential case
    "stages-independent": (f"FROM {BASE} AS a\nRUN echo a > /a && sleep 0.2\n"
                           f"FROM {BASE} AS b\nRUN echo b > /b && sleep 0.2\n" + F +
                           "COPY --from=a /a /a\nCOPY --from=b /b /b\n", {}),
    # special mode bits, xattrs and hard links from the context; config-only instructions
    "copy-chmod-setuid": (F + "COPY --chmod=4755 a.txt /s\nCOPY --chmod=2750 a.txt /g\n",
                          {"a.txt": "a"}),
    "copy-xattrs": (F + "COPY tool /usr/local/bin/tool\nCOPY notes /notes\n",
                    {"tool": "#!/bin/sh\n", "notes/n": "n"}),
    "copy-hardlinks": (F + "COPY d /d\n", {"d/a": "same", "d/c": "other"}),
    "copy-chown-new-parents": (F + "COPY --chown=1000:1000 a.txt /newdir/sub/\n",
                               {"a.txt": "a"}),
    "workdir-as-user": (F + "USER app\nWORKDIR /home/app/w\nRUN touch f\n", {}),
    "arg-before-from": (f"ARG B={BASE}\nFROM $B\nARG B\nRUN echo $B > /b\n", {}),
    "healthcheck": (F + 'HEALTHCHECK --interval=5s --retries=2 CMD ["true"]\n'
                    "ENV A=1 B=${A:-x}-${C:+y}\nLABEL multi=\"a b\" \\\n  other=c\n", {}),
}
SECRETS = {"mount-secret": {"tok": b"diff-secret-value"}}
# nbcontainer's own gaps, where both peers agree and we differ: never an ignore entry
GAPS: dict[str, str] = {}
# cap_net_bind_service+ep as a security.capability value (struct vfs_cap_data, revision 2)
_CAP = struct.pack("<IIIII", 0x02000001, 1 << 10, 0, 0, 0)
XATTRS: dict[str, dict[str, dict[str, bytes]]] = {
    "copy-xattrs": {"tool": {"security.capability": _CAP, "user.origin": b"context"},
                    "notes": {"user.dir": b"1"}, "notes/n": {"user.note": b"hello"}},
}
HARDLINKS = {"copy-hardlinks": [("d/a", "d/b")]}  # (existing, new link)


def write_context(ctx: Path, name: str) -> None:
    """The context of case ``name``: its files, then their xattrs and hard links."""
    ctx.mkdir(parents=True, exist_ok=True)
    dockerfile, files = CASES[name]
    (ctx / "Dockerfile").write_text(dockerfile)
    for rel, data in files.items():
        p = ctx / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data if isinstance(data, bytes) else data.encode())
    for rel, attrs in XATTRS.get(name, {}).items():
        for key, value in attrs.items():
            os.setxattr(ctx / rel, key, value)
    for existing, link in HARDLINKS.get(name, []):
        os.link(ctx / existing, ctx / link)



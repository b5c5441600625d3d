"""RUN --mount: cache (persistence, sharing, seeding, prune), bind, tmpfs, secret and ssh, and
that nothing mounted ever reaches a layer, the config or the history."""

from __future__ import annotations

import gzip
import io
import json
import os
import socket
import struct
import subprocess
import tarfile
import tempfile
import threading
import time
from pathlib import Path

import pytest

from nbcontainer.api import prune_cache_mounts
from nbcontainer.errors import BuildError
from nbcontainer.image import Image
from nbcontainer.store import Store
from nbcontainer.store.cache_mounts import CacheMountStore, cache_mounts_dir

from .conftest import flatten, needs_root, write

pytestmark = needs_root


def layer_members(img: Image) -> list[tuple[tarfile.TarInfo, bytes]]:
    out = []
    for layer in img.manifest.layers:
        raw = img.store.blobs.path(layer.digest).read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        with tarfile.open(fileobj=io.BytesIO(raw)) as tf:
            for m in tf.getmembers():
                data = tf.extractfile(m).read() if m.isfile() else b""  # type: ignore[union-attr]
                out.append((m, data))
    return out


def assert_never_stored(img: Image, needles: list[bytes], names: list[str]) -> None:
    """Scan every layer's tar (names, link targets, contents), the config and the history."""
    for m, data in layer_members(img):
        for n in names:
            assert n not in m.name, m.name
        for needle in needles:
            assert needle not in data, m.name
            assert needle.decode() not in m.name and needle.decode() not in m.linkname
    cfg = img.store.blobs.path(img.manifest.config.digest).read_bytes()
    for needle in needles:  # names may appear in history: they are the RUN's own text
        assert needle not in cfg


def cache_files(store: Store) -> list[str]:
    root = cache_mounts_dir(store)
    return sorted(str(Path(d, f).relative_to(root)) for d, _, fs in os.walk(root) for f in fs
                  if not f.endswith((".lock", ".json")))


# ---------------------------------------------------------------------- cache


def test_cache_mount_persists_and_stays_out_of_layers(do_build, bstore: Store,
                                                      tmp_path: Path) -> None:
    df = ("FROM busybox\n"
          "RUN --mount=type=cache,target=/var/cache/app "
          "echo run >> /var/cache/app/log && cp /var/cache/app/log /count\n")
    img1 = do_build(df)
    assert [p.split("/", 1)[1] for p in cache_files(bstore)] == ["0/log"]
    img2 = do_build(df, no_cache=True)
    flat = flatten(img2, tmp_path / "f2")
    assert (flat / "count").read_text() == "run\nrun\n"  # the 2nd build saw the 1st's file
    for img in (img1, img2):
        names = [m.name for m, _ in layer_members(img)]
        assert not [n for n in names if "var/cache" in n], names
    # the cache's contents never key a step: a hit whatever the cache holds now
    (Path(cache_mounts_dir(bstore)).glob("*/0/log").__next__()).write_text("changed\n")
    img3 = do_build(df)
    assert img3.id == img2.id


def test_cache_mount_options(do_build, bstore: Store, tmp_path: Path) -> None:
    img = do_build(
        "FROM busybox AS seed\nRUN mkdir -p /s && echo seeded > /s/f\n"
        "FROM busybox\n"
        "RUN --mount=type=cache,id=ids,target=/c,uid=1234,gid=99,mode=0710 "
        "stat -c '%u %g %a' /c > /owner\n"
        "RUN --mount=type=cache,id=seeded,target=/c,from=seed,source=/s cat /c/f > /seen\n"
        "RUN --mount=type=cache,id=ids,target=/c,ro sh -c 'touch /c/x 2>/dev/null && echo rw "
        "|| echo ro' > /ro\n"
        "RUN --mount=type=cache,id=p,target=/c,sharing=private touch /c/p\n"
        "RUN --mount=type=cache,id=l,target=/c,sharing=locked touch /c/l\n")
    flat = flatten(img, tmp_path / "f")
    assert (flat / "owner").read_text() == "1234 99 710\n"
    assert (flat / "seen").read_text() == "seeded\n"
    assert (flat / "ro").read_text() == "ro\n"
    files = {p.split("/", 1)[1] for p in cache_files(bstore)}
    assert {"0/f", "0/p", "0/l"} <= files


def test_cache_sharing_locks(tmp_path: Path) -> None:
    st = CacheMountStore(tmp_path / "cm")
    a, rel_a = st.acquire("x", "shared")
    b, rel_b = st.acquire("x", "shared")
    assert a == b  # shared: one directory for everyone
    p, rel_p = st.acquire("x", "private")
    assert p != a  # private: a fresh instance while the shared one is in use
    rel_a(), rel_b(), rel_p()

    events: list[str] = []
    path, release = st.acquire("y", "locked")

    def other() -> None:
        _, rel = st.acquire("y", "locked")
        events.append("second")
        rel()

    t = threading.Thread(target=other)
    t.start()
    time.sleep(0.3)
    events.append("first-done")  # the second build is still waiting for the lock
    release()
    t.join(5)
    assert events == ["first-done", "second"]


def test_prune_cache_clears_mounts(do_build, bstore: Store) -> None:
    from nbcontainer import cli

    do_build("FROM busybox\nRUN --mount=type=cache,target=/c echo x > /c/f\n")
    assert cache_files(bstore)
    n, _ = prune_cache_mounts(store=bstore)
    assert n == 1 and not cache_files(bstore)
    do_build("FROM busybox\nRUN --mount=type=cache,target=/c echo x > /c/f\n", no_cache=True)
    assert cache_files(bstore)
    assert cli.main(["--root", str(bstore.home), "prune", "--cache"]) == 0
    assert not cache_files(bstore)


# ---------------------------------------------------------------------- bind, tmpfs


def test_bind_mounts(do_build, ctx: Path, tmp_path: Path) -> None:
    write(ctx, {"src/a.txt": "A\n", "src/skip.txt": "no\n", ".dockerignore": "src/skip.txt\n",
                "bound-only.txt": "bound-secretish\n"})
    img = do_build(
        "FROM busybox AS tools\nRUN echo tool > /tool\n"
        "FROM busybox\n"
        "RUN --mount=target=/ctx cat /ctx/src/a.txt > /from-ctx && "
        "wc -c < /ctx/bound-only.txt > /n && "
        "ls /ctx/src > /listing\n"
        "RUN --mount=type=bind,from=tools,source=/tool,target=/t cat /t > /from-stage\n"
        "RUN --mount=type=bind,source=src,target=/w,rw sh -c 'echo new > /w/a.txt && "
        "cat /w/a.txt' > /rw\n"
        "RUN --mount=type=bind,source=src,target=/w sh -c 'echo x > /w/a.txt 2>/dev/null "
        "&& echo rw || echo ro' > /ro\n"
        "RUN --mount=type=tmpfs,target=/tmpfs,size=1m sh -c 'echo t > /tmpfs/t && "
        "df -k /tmpfs | tail -1' > /df\n")
    flat = flatten(img, tmp_path / "f")
    assert (flat / "from-ctx").read_text() == "A\n"
    assert (flat / "n").read_text().strip() == "16"
    assert (flat / "listing").read_text() == "a.txt\n"  # .dockerignore applies to binds
    assert (flat / "from-stage").read_text() == "tool\n"
    assert (flat / "rw").read_text() == "new\n"
    assert (ctx / "src/a.txt").read_text() == "A\n"  # rw writes are discarded
    assert (flat / "ro").read_text() == "ro\n"
    assert (flat / "df").read_text().split()[1] == "1024"
    for p in ("ctx", "t", "w", "tmpfs"):
        assert not (flat / p).exists()
    assert_never_stored(img, [b"bound-secretish"], ["bound-only", "tmpfs/t"])


def test_bind_source_cannot_escape_the_stage(do_build, tmp_path: Path) -> None:
    img = do_build("FROM busybox AS s\nRUN ln -s /../../../../etc /esc\n"
                   "FROM busybox\nRUN --mount=from=s,source=/esc,target=/e ls /e > /l\n")
    flat = flatten(img, tmp_path / "f")
    listing = (flat / "l").read_text().split()
    assert "passwd" in listing or listing == sorted(listing)  # the stage's /etc, not the host's
    assert "debian_version" not in listing and "os-release" not in listing


def test_bind_missing_source_is_a_clear_error(do_build) -> None:
    with pytest.raises(BuildError, match=r"Dockerfile:2: RUN: .*\"/nope\" not found"):
        do_build("FROM busybox\nRUN --mount=from=busybox,source=/nope,target=/x true\n")


# ---------------------------------------------------------------------- secret, ssh

SECRET = b"s3cr3t-Mount-Value-77"


def test_secret_options(do_build, tmp_path: Path) -> None:
    img = do_build(
        "FROM busybox\n"
        "RUN --mount=type=secret,id=tok,target=/etc/tok,mode=0440,uid=7,gid=8 "
        "stat -c '%a %u %g' /etc/tok > /meta && cat /etc/tok | wc -c > /len\n"
        "RUN --mount=type=secret,id=tok,env=TOK sh -c 'test \"$TOK\" = "
        f"{SECRET.decode()} && echo ok' > /env\n"
        "RUN --mount=type=secret,id=absent ls /run/secrets 2>&1 | wc -l > /absent\n",
        secrets={"tok": SECRET})
    flat = flatten(img, tmp_path / "f")
    assert (flat / "meta").read_text() == "440 7 8\n"
    assert (flat / "len").read_text().strip() == str(len(SECRET))
    assert (flat / "env").read_text() == "ok\n"
    assert not (flat / "etc/tok").exists()
    # the test line itself holds the secret in its RUN text; check the others
    for m, data in layer_members(img):
        assert "tok" not in m.name and SECRET not in data
    with pytest.raises(BuildError, match="secret absent not found"):
        do_build("FROM busybox\nRUN --mount=type=secret,id=absent,required true\n")


def _agent_identities(sock: str) -> int:
    """Ask an ssh agent how many keys it holds (SSH_AGENTC_REQUEST_IDENTITIES)."""
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(sock)
        s.sendall(struct.pack(">IB", 1, 11))
        head = s.recv(9)
        assert head[4] == 12  # SSH_AGENT_IDENTITIES_ANSWER
        return struct.unpack(">I", head[5:9])[0]


def test_ssh_mount_forwards_a_key_agent(do_build, tmp_path: Path) -> None:
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    df = ("FROM busybox\n"
          "RUN --mount=type=ssh test -S $SSH_AUTH_SOCK && echo $SSH_AUTH_SOCK > /sock && "
          "stat -c %a $SSH_AUTH_SOCK > /mode\n"
          "RUN --mount=type=ssh,id=deploy,target=/agent,mode=0660,uid=5 "
          "stat -c '%a %u' /agent > /mode2\n")
    from nbcontainer.builder.ssh import SshAgents
    from nbcontainer.sandbox.idmap import IdMapping

    agents = SshAgents(IdMapping.identity())
    try:
        # the proxy answers like the agent behind it: one identity
        proxy = agents.proxy("default", (str(key),), 0o600, 0, 0)
        assert _agent_identities(str(proxy.path)) == 1
    finally:
        agents.close()
    assert not proxy.path.exists()  # closed with the build's agents
    before = set(Path(tempfile.gettempdir()).glob("nbc-ssh-*"))
    img = do_build(df, ssh={"default": [str(key)], "deploy": [str(key)]})
    assert set(Path(tempfile.gettempdir()).glob("nbc-ssh-*")) == before  # agents closed
    flat = flatten(img, tmp_path / "f")
    assert (flat / "sock").read_text() == "/run/buildkit/ssh_agent.0\n"
    assert (flat / "mode").read_text() == "600\n"
    assert (flat / "mode2").read_text() == "660 5\n"
    assert_never_stored(img, [key.read_bytes()[40:80]], ["ssh_agent", "agent.sock", "agent"])
    with pytest.raises(BuildError, match="ssh agent 'x' not found"):
        do_build("FROM busybox\nRUN --mount=type=ssh,id=x,required=true true\n")


def test_ssh_from_auth_sock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nbcontainer.builder.ssh import parse_ssh

    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    with pytest.raises(BuildError, match="SSH_AUTH_SOCK is not set"):
        parse_ssh("default")
    sock = tmp_path / "s"
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(str(sock))
    monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
    assert parse_ssh("default") == ("default", [str(sock)])
    assert parse_ssh("gh=/x,/y".replace("/x,/y", f"{sock}")) == ("gh", [str(sock)])
    srv.close()


def test_history_and_config_hold_no_mount_data(do_build, ctx: Path) -> None:
    write(ctx, {"k": "bind-content-xyz\n"})
    img = do_build("FROM busybox\nRUN --mount=type=secret,id=tok --mount=target=/k,source=k "
                   "--mount=type=cache,target=/c cp /run/secrets/tok /c/t && cat /k > /dev/null\n",
                   secrets={"tok": SECRET})
    assert_never_stored(img, [SECRET, b"bind-content-xyz"], ["run/secrets"])
    hist = json.dumps([h.created_by for h in img.history])
    assert SECRET.decode() not in hist


def test_cli_ssh_flag_parses() -> None:
    from nbcontainer import cli

    ns = cli.build_parser().parse_args(["build", "--ssh", "default=/tmp", "."])
    assert ns.ssh == ["default=/tmp"]

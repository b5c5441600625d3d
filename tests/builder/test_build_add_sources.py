"""COPY --parents, ADD --unpack, ADD --checksum and ADD of git repositories (issue 7).

URLs are served by a thread on 127.0.0.1, git repositories by ``git daemon`` on 127.0.0.1
(the ``git://`` scheme); the other accepted git forms are checked by the URL parser."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import io
import re
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbcontainer.builder.sources.git import GitSource, parse_git_url
from nbcontainer.errors import BuildError
from nbcontainer.localregistry import free_port
from tests.support.builds import flatten, tree, write
from tests.support.marks import needs_root


def _tar_gz() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("pkg/file")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    return gzip.compress(buf.getvalue(), mtime=0)


@pytest.fixture
def http_dir(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


def _make_repo(base: Path) -> dict[str, str]:
    """``base/repo.git``: commit 1 (tag v1) has sub/a and top; commit 2 (branch main, HEAD)
    changes sub/a and adds an executable."""
    work = base / "work"
    work.mkdir(parents=True)
    env_args = ["-c", "user.name=t", "-c", "user.email=t@example.com"]
    _git("init", "-q", "-b", "main", cwd=work)
    write(work, {"sub/a": "one\n", "top": "top\n"})
    _git("add", ".", cwd=work)
    _git(*env_args, "commit", "-q", "-m", "1", cwd=work)
    _git("tag", "v1", cwd=work)
    c1 = _git("rev-parse", "HEAD", cwd=work)
    write(work, {"sub/a": "two\n", "sub/run.sh": "#!/bin/sh\n"})
    (work / "sub/run.sh").chmod(0o755)
    _git("add", ".", cwd=work)
    _git(*env_args, "commit", "-q", "-m", "2", cwd=work)
    c2 = _git("rev-parse", "HEAD", cwd=work)
    _git("clone", "-q", "--bare", str(work), str(base / "repo.git"), cwd=base)
    return {"c1": c1, "c2": c2}


@pytest.fixture
def git_server(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """``repo.git`` (see ``_make_repo``) served by ``git daemon`` on 127.0.0.1."""
    base = tmp_path / "git"
    commits = _make_repo(base)
    port = free_port()
    proc = subprocess.Popen(["git", "daemon", "--export-all", f"--base-path={base}",
                             "--listen=127.0.0.1", f"--port={port}", "--reuseaddr",
                             str(base)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"git://127.0.0.1:{port}/repo.git"
    try:
        for _ in range(100):
            if subprocess.run(["git", "ls-remote", url], capture_output=True).returncode == 0:
                break
            time.sleep(0.05)
        yield url, commits
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class _GitCGI(http.server.BaseHTTPRequestHandler):
    """git's smart HTTP: every request handed to ``git http-backend`` (CGI)."""

    root = ""

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._cgi()

    def do_POST(self) -> None:
        self._cgi()

    def _cgi(self) -> None:
        path, _, query = self.path.partition("?")
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        env = {"GIT_PROJECT_ROOT": self.root, "GIT_HTTP_EXPORT_ALL": "1",
               "PATH_INFO": path, "QUERY_STRING": query, "REQUEST_METHOD": self.command,
               "CONTENT_TYPE": self.headers.get("Content-Type", ""),
               "CONTENT_LENGTH": str(len(body)), "REMOTE_ADDR": "127.0.0.1",
               "HTTP_GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
               "PATH": "/usr/bin:/bin"}
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
            env["CONTENT_LENGTH"] = str(len(body))
        out = subprocess.run(["git", "http-backend"], input=body, env=env,
                             capture_output=True).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        status = 200
        headers = []
        for line in head.decode().split("\r\n"):
            key, _, value = line.partition(": ")
            if key.lower() == "status":
                status = int(value.split()[0])
            elif key:
                headers.append((key, value))
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def git_http(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """``repo.git`` over git's smart HTTP on 127.0.0.1 (``git http-backend``)."""
    base = tmp_path / "githttp"
    commits = _make_repo(base)
    handler = type("Handler", (_GitCGI,), {"root": str(base)})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/repo.git", commits
    finally:
        server.shutdown()
        server.server_close()


def test_git_url_forms() -> None:
    assert parse_git_url("https://example.com/o/r.git#v1.2:docs/") == GitSource(
        "https://example.com/o/r.git", "v1.2", "docs")
    assert parse_git_url("git@github.com:o/r.git#main") == GitSource(
        "git@github.com:o/r.git", "main", "")
    assert parse_git_url("github.com/o/r.git") == GitSource("https://github.com/o/r.git", "", "")
    assert parse_git_url("ssh://git@host/o/r.git#:sub") == GitSource(
        "ssh://git@host/o/r.git", "", "sub")
    with pytest.raises(BuildError, match="inside the repository"):
        parse_git_url("https://example.com/o/r.git#main:../x")


@needs_root
def test_copy_parents(do_build, ctx: Path, tmp_path: Path) -> None:
    write(ctx, {"x/a.txt": "xa", "y/a.txt": "ya", "x/sub/y/b.txt": "b", "x/sub/y/c.md": "c"})
    (ctx / "x").chmod(0o700)
    img = do_build(
        "FROM busybox AS s\nRUN mkdir -p /src/k && echo f > /src/k/f\n"
        "FROM busybox\n"
        "COPY --parents x/a.txt ./y/a.txt /parents/\n"
        "COPY --parents x/./sub/y/*.txt /pivot/\n"
        "COPY --parents x/sub /dirs/\n"
        "COPY --from=s --parents /src/./k/f /st/\n"
        "COPY x/a.txt y/a.txt /flat/\n")
    t = tree(flatten(img, tmp_path / "f"))
    assert t["parents/x/a.txt"][5] == b"xa" and t["parents/y/a.txt"][5] == b"ya"
    assert t["parents/x"][1] == 0o700  # kept parents keep their own metadata
    assert "pivot/sub/y/b.txt" in t and "pivot/sub/y/c.md" not in t and "pivot/x" not in t
    assert t["dirs/x/sub/y/c.md"][5] == b"c"
    assert t["st/k/f"][5] == b"f\n" and "st/src" not in t
    assert "flat/a.txt" in t and "flat/x" not in t  # without --parents: flattened


@needs_root
def test_add_unpack_and_checksum(do_build, ctx: Path, tmp_path: Path, http_dir) -> None:
    root, base = http_dir
    data = _tar_gz()
    (root / "a.tar.gz").write_bytes(data)
    write(ctx, {"l.tar.gz": data})
    good = "sha256:" + hashlib.sha256(data).hexdigest()
    img = do_build(
        "FROM busybox\n"
        f"ADD {base}/a.tar.gz /url/\n"
        f"ADD --unpack=true {base}/a.tar.gz /url-unpacked/\n"
        f"ADD --checksum={good} {base}/a.tar.gz /sum/\n"
        "ADD l.tar.gz /local/\nADD --unpack=false l.tar.gz /local-packed/\n")
    t = tree(flatten(img, tmp_path / "f"))
    assert t["url/a.tar.gz"][4] == len(data)  # URLs don't unpack by default
    assert t["url-unpacked/pkg/file"][5] == b"abc"
    assert "sum/a.tar.gz" in t
    assert t["local/pkg/file"][5] == b"abc" and "local-packed/l.tar.gz" in t

    bad = "sha256:" + "0" * 64
    with pytest.raises(BuildError, match=r"Dockerfile:2: ADD: checksum mismatch for .*a\.tar"):
        do_build(f"FROM busybox\nADD --checksum={bad} {base}/a.tar.gz /sum/\n")
    with pytest.raises(BuildError, match="non-HTTP"):
        do_build(f"FROM busybox\nADD --checksum={good} l.tar.gz /x/\n")


@needs_root
def test_add_git(do_build, tmp_path: Path, git_server) -> None:
    url, commits = git_server
    img = do_build(
        "FROM busybox\n"
        f"ADD {url} /head/\n"
        f"ADD {url}#v1:sub /v1sub/\n"
        f"ADD --keep-git-dir=true {url}#main /kept/\n"
        f"ADD --checksum={commits['c1']} {url}#{commits['c1']} /bycommit/\n")
    t = tree(flatten(img, tmp_path / "f"))
    assert t["head/sub/a"][5] == b"two\n" and t["head/sub/run.sh"][1] == 0o755
    assert "head/.git" not in t
    assert t["v1sub/a"][5] == b"one\n" and "v1sub/run.sh" not in t and "v1sub/top" not in t
    assert "kept/.git/HEAD" in t and t["kept/sub/a"][5] == b"two\n"
    assert t["bycommit/sub/a"][5] == b"one\n"
    with pytest.raises(BuildError, match=r"Dockerfile:2: ADD: checksum mismatch"):
        do_build(f"FROM busybox\nADD --checksum={commits['c1']} {url}#main /x/\n")
    with pytest.raises(BuildError, match="failed to fetch git source"):
        do_build(f"FROM busybox\nADD {url}#no-such-branch /x/\n")
    with pytest.raises(BuildError, match="can't be a URL for COPY"):
        do_build(f"FROM busybox\nCOPY {url} /x/\n")


@needs_root
def test_add_git_over_smart_http(do_build, tmp_path: Path, git_http) -> None:
    url, commits = git_http
    img = do_build(f"FROM busybox\nADD {url}#v1:sub /v1sub/\nADD {url}#{commits['c2']} /c2/\n")
    t = tree(flatten(img, tmp_path / "f"))
    assert t["v1sub/a"][5] == b"one\n" and "v1sub/top" not in t
    assert t["c2/sub/a"][5] == b"two\n" and "c2/.git" not in t


def test_git_query_url_forms() -> None:
    """BuildKit's query form: ``?ref=…&subdir=…&checksum=…&keep-git-dir=…``."""
    from nbcontainer.dockerfile.instructions import add_source_kind

    assert parse_git_url("https://example.com/o/r.git?ref=v1&subdir=docs/") == GitSource(
        "https://example.com/o/r.git", "v1", "docs")
    assert parse_git_url("https://example.com/o/r.git?ref=main&checksum=abc1234"
                         "&keep-git-dir=true") == GitSource(
        "https://example.com/o/r.git", "main", "", "abc1234", True)
    assert parse_git_url("git@github.com:o/r.git?keep-git-dir=false") == GitSource(
        "git@github.com:o/r.git", "", "", "", False)
    assert parse_git_url("github.com/o/r.git?subdir=a/b") == GitSource(
        "https://github.com/o/r.git", "", "a/b")
    assert parse_git_url("https://example.com/o/r.git?ref=refs%2Ftags%2Fv1") == GitSource(
        "https://example.com/o/r.git", "refs/tags/v1", "")
    for src in ("https://h/o/r.git?ref=v1", "http://127.0.0.1:9/repo.git?subdir=x",
                "github.com/o/r.git?ref=main", "https://h/o/r.git#main"):
        assert add_source_kind(src) == "git", src
    assert add_source_kind("https://h/file.tar.gz?x=1") == "url"
    bad = {
        "https://h/o/r.git?ref=v1#main": "mixes a query",
        "https://h/o/r.git#main?ref=v1": "mixes a query",
        "https://h/o/r.git?branch=main": "unknown query key 'branch'",
        "https://h/o/r.git?ref=a&ref=b": "given twice",
        "https://h/o/r.git?checksum=xyz": "not a commit id",
        "https://h/o/r.git?keep-git-dir=maybe": "not a boolean",
        "https://h/o/r.git?subdir=../up": "inside the repository",
        "https://h/o/r.git?ref": "malformed query",
    }
    for src, message in bad.items():
        with pytest.raises(BuildError, match=re.escape(message)) as exc:
            parse_git_url(src)
        assert src in exc.value.message or "subdir" in exc.value.message


@needs_root
def test_add_git_query_form(do_build, tmp_path: Path, git_server, git_http) -> None:
    url, commits = git_server
    http_url, _ = git_http
    img = do_build(
        "FROM busybox\n"
        f"ADD {url}?ref=v1&subdir=sub /v1sub/\n"
        f"ADD {url}?ref=main&keep-git-dir=true /kept/\n"
        f"ADD {url}?ref={commits['c1']}&checksum={commits['c1'][:12]} /bycommit/\n"
        f"ADD {http_url}?ref=v1&subdir=sub /http/\n"
        f"ADD --keep-git-dir=true {url}?keep-git-dir=false /query-wins/\n")
    t = tree(flatten(img, tmp_path / "f"))
    assert t["v1sub/a"][5] == b"one\n" and "v1sub/top" not in t
    assert "kept/.git/HEAD" in t and t["kept/sub/a"][5] == b"two\n"
    assert t["bycommit/sub/a"][5] == b"one\n"
    assert t["http/a"][5] == b"one\n"
    assert "query-wins/.git" not in t and t["query-wins/sub/a"][5] == b"two\n"
    with pytest.raises(BuildError, match=r"Dockerfile:2: ADD: checksum mismatch"):
        do_build(f"FROM busybox\nADD {url}?ref=main&checksum={commits['c1']} /x/\n")
    with pytest.raises(BuildError, match="unknown query key 'tag'"):
        do_build(f"FROM busybox\nADD {url}?tag=v1 /x/\n")
    with pytest.raises(BuildError, match="mixes a query"):
        do_build(f"FROM busybox\nADD {url}?ref=v1#main /x/\n")


@needs_root
def test_add_git_is_cached_by_commit(do_build, git_server) -> None:
    from nbcontainer.progress import Collector

    url, _ = git_server
    df = f"FROM busybox\nADD {url}#v1 /g/\n"
    one = do_build(df)
    events = Collector()
    two = do_build(df, progress=events)
    assert one.id == two.id
    assert any(e.kind == "cached" for e in events.events)

"""``RUN --mount=type=ssh``: ssh agents the build exposes to RUN steps.

Each mount gets a per-build unix socket with the requested mode and owner that forwards every
connection to the real agent (the user's ``$SSH_AUTH_SOCK``, or an ``ssh-agent`` loaded with
the given key files), so ``mode``/``uid``/``gid`` never touch the user's own agent socket.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import stat
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Sequence
from pathlib import Path

from ..errors import BuildError
from ..sandbox import IdMapping


class SshAgents:
    """The build's agent proxies, one per (id, sources, mode, owner); closed with the build
    (and when garbage-collected, whoever forgets ``close``)."""

    def __init__(self, idmap: IdMapping) -> None:
        self.idmap = idmap
        self._proxies: dict[tuple, _AgentProxy] = {}
        self._lock = threading.Lock()
        self._finalizer = weakref.finalize(self, _close_all, self._proxies)

    def proxy(self, sid: str, sources: tuple[str, ...], mode: int, uid: int,
              gid: int) -> _AgentProxy:
        """The proxy socket for agent ``sid``; ``uid``/``gid`` are container ids."""
        k = (sid, sources, mode, uid, gid)
        with self._lock:
            proxy = self._proxies.get(k)
            if proxy is None:
                proxy = _AgentProxy(sid, sources, mode, self.idmap.to_host_uid(uid),
                                    self.idmap.to_host_gid(gid))
                self._proxies[k] = proxy
        return proxy

    def close(self) -> None:
        self._finalizer()


def _close_all(proxies: dict[tuple, _AgentProxy]) -> None:
    for p in list(proxies.values()):
        p.close()
    proxies.clear()


def parse_ssh(spec: str) -> tuple[str, list[str]]:
    """``--ssh default|ID[=SOCKET|KEY[,KEY…]]`` → (id, paths); no path = ``$SSH_AUTH_SOCK``."""
    sid, sep, rest = spec.partition("=")
    sid = sid.strip()
    if not sid:
        raise BuildError(f"invalid --ssh {spec!r}", hint="use default or ID=SOCKET|KEY[,KEY]")
    paths = [p.strip() for p in rest.split(",") if p.strip()] if sep else []
    if not paths:
        sock = os.environ.get("SSH_AUTH_SOCK")
        if not sock:
            raise BuildError(f"--ssh {sid}: SSH_AUTH_SOCK is not set",
                             hint="start an ssh-agent, or give key files: --ssh ID=KEY")
        paths = [sock]
    for p in paths:
        if not os.path.exists(p):
            raise BuildError(f"--ssh {sid}: {p} does not exist")
    return sid, [os.path.abspath(os.path.expanduser(p)) for p in paths]


class _AgentProxy:
    """A unix socket with the requested mode/owner that forwards every connection to the
    real agent (the user's ``$SSH_AUTH_SOCK``, or an ``ssh-agent`` we start for key files)."""

    def __init__(self, sid: str, sources: tuple[str, ...], mode: int, uid: int,
                 gid: int) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="nbc-ssh-"))
        os.chmod(self.dir, 0o711)  # the sandbox's users must reach the socket inside
        self.path = self.dir / "agent.sock"
        self._agent: subprocess.Popen[bytes] | None = None
        self._closed = False
        try:
            if len(sources) == 1 and stat.S_ISSOCK(os.stat(sources[0]).st_mode):
                self.upstream = sources[0]
            else:
                self.upstream = self._start_agent(sid, sources)
            self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self._server.bind(str(self.path))
            os.chmod(self.path, mode)
            if (uid, gid) != (os.geteuid(), os.getegid()):
                with contextlib.suppress(PermissionError):
                    os.chown(self.path, uid, gid)
            self._server.listen(16)
        except BaseException:
            self.close()
            raise
        threading.Thread(target=self._accept, daemon=True, name=f"ssh-{sid}").start()

    def _start_agent(self, sid: str, keys: Sequence[str]) -> str:
        if not shutil.which("ssh-agent") or not shutil.which("ssh-add"):
            raise BuildError(f"--ssh {sid}: key files need ssh-agent and ssh-add",
                             hint="apt-get install openssh-client")
        sock = str(self.dir / "upstream.sock")
        self._agent = subprocess.Popen(["ssh-agent", "-D", "-a", sock],
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        while not os.path.exists(sock):
            if time.monotonic() > deadline or self._agent.poll() is not None:
                raise BuildError(f"--ssh {sid}: ssh-agent did not start")
            time.sleep(0.01)
        env = {**os.environ, "SSH_AUTH_SOCK": sock}
        env.pop("DISPLAY", None)  # never prompt for a passphrase
        proc = subprocess.run(["ssh-add", "-q", *keys], env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=30)
        if proc.returncode != 0:
            raise BuildError(f"--ssh {sid}: ssh-add failed: {proc.stderr.strip()}",
                             hint="keys with a passphrase need a running agent")
        return sock

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            try:
                up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                up.connect(self.upstream)
            except OSError:
                conn.close()
                continue
            for a, b in ((conn, up), (up, conn)):
                threading.Thread(target=_pump, args=(a, b), daemon=True).start()

    def close(self) -> None:
        self._closed = True
        server = getattr(self, "_server", None)
        if server is not None:
            with contextlib.suppress(OSError):
                server.shutdown(socket.SHUT_RDWR)
            server.close()
        if self._agent is not None:
            self._agent.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._agent.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

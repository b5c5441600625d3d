"""The byte relay between the Jupyter server's TCP channels and the kernel's unix sockets.

The launcher listens on the TCP ports of the server's connection file (its ``ip``, normally
127.0.0.1); each accepted connection is joined to the unix socket the kernel bound for the
same channel (``<dir>/k-<port>``, ipykernel's ``ipc`` transport) and bytes are copied both
ways until either side closes. ZMTP needs nothing more: greetings, handshakes and frames are
the same bytes over either transport. A connection that arrives before the kernel has bound
its socket waits for it (the server's greeting stays in the TCP buffer meanwhile).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterable
from pathlib import Path

CHANNELS = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")
CONNECT_RETRY = 0.02
CHUNK = 1 << 16


class Relay:
    """Listeners on ``ip``:``ports``, each relayed to ``sockdir/<prefix>-<port>``."""

    def __init__(self, ip: str, ports: Iterable[int], sockdir: Path, prefix: str = "k") -> None:
        self.sockdir, self.prefix = sockdir, prefix
        self.closed = threading.Event()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self.listeners: list[tuple[socket.socket, int]] = []
        host = "0.0.0.0" if ip in ("*", "") else ip
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            for port in ports:
                s = socket.socket(family, socket.SOCK_STREAM)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((host, port))
                s.listen(16)
                self.listeners.append((s, port))
        except OSError:
            self.close()
            raise

    def start(self) -> None:
        for listener, port in self.listeners:
            threading.Thread(target=self._accept, args=(listener, port), daemon=True,
                             name=f"relay-{port}").start()

    def _accept(self, listener: socket.socket, port: int) -> None:
        while not self.closed.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._track(conn)
            threading.Thread(target=self._join, args=(conn, port), daemon=True).start()

    def _track(self, s: socket.socket) -> None:
        with self._lock:
            self._open.add(s)

    def _forget(self, s: socket.socket) -> None:
        with self._lock:
            self._open.discard(s)
        with contextlib.suppress(OSError):
            s.close()

    def _connect(self, port: int) -> socket.socket | None:
        """The kernel's socket for ``port``, waiting until it is bound (or the relay stops)."""
        path = str(self.sockdir / f"{self.prefix}-{port}")
        while not self.closed.is_set():
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(path)
                return s
            except (FileNotFoundError, ConnectionRefusedError):
                s.close()
                time.sleep(CONNECT_RETRY)
            except OSError:
                s.close()
                return None
        return None

    def _join(self, conn: socket.socket, port: int) -> None:
        kernel = self._connect(port)
        if kernel is None:
            self._forget(conn)
            return
        self._track(kernel)
        back = threading.Thread(target=_copy, args=(kernel, conn), daemon=True)
        back.start()
        _copy(conn, kernel)
        back.join()
        self._forget(conn)
        self._forget(kernel)

    def close(self) -> None:
        """Stop listening and cut every relayed connection."""
        self.closed.set()
        for listener, _ in self.listeners:
            with contextlib.suppress(OSError):
                listener.close()
        with self._lock:
            live = list(self._open)
        for s in live:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


def _copy(src: socket.socket, dst: socket.socket) -> None:
    """Bytes from ``src`` to ``dst`` until ``src`` ends; then end ``dst``'s writing side."""
    try:
        while data := src.recv(CHUNK):
            dst.sendall(data)
    except OSError:
        pass
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)

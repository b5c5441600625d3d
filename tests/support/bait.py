"""The host side of the security probe: what a RUN must not reach.

An HTTP server on 127.0.0.1 answering with a marker, an abstract unix socket, UDP datagrams
carrying the marker on the host's loopback (for packet sniffers), a key in this process's
session keyring and one in root's user keyring (``@u``), and a client that keeps trying to
connect to the port the probe listens on. ``args`` are the probe's arguments.
"""

from __future__ import annotations

import ctypes
import http.server
import os
import socket
import threading
import uuid
from dataclasses import dataclass, field

from nbcontainer.localregistry import free_port

KEY_SPEC_SESSION_KEYRING, KEY_SPEC_USER_KEYRING = -3, -4
KEYCTL_UNLINK = 9
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
SYS_ADD_KEY, SYS_KEYCTL = 248, 250  # x86_64


def add_key(name: str, value: bytes, ring: int) -> int:
    """A ``user`` key in ``ring``; its serial."""
    serial = _libc.syscall(SYS_ADD_KEY, b"user", name.encode(), value,
                           ctypes.c_size_t(len(value)), ctypes.c_int(ring))
    if serial < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"add_key: {os.strerror(err)}")
    return int(serial)


def unlink_key(serial: int, ring: int) -> None:
    _libc.syscall(SYS_KEYCTL, ctypes.c_int(KEYCTL_UNLINK), ctypes.c_long(serial),
                  ctypes.c_int(ring))


@dataclass
class Bait:
    marker: str = field(default_factory=lambda: "nbbait-" + uuid.uuid4().hex[:12])
    listen_port: int = field(default_factory=free_port)
    connected: list[str] = field(default_factory=list)  # what the port prober reached
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _keys: list[tuple[int, int]] = field(default_factory=list)

    @property
    def session_key(self) -> str:
        return self.marker + "-s"

    @property
    def user_key(self) -> str:
        return self.marker + "-u"

    @property
    def args(self) -> list[str]:
        return [str(self.http_port), self.marker, str(self.listen_port), self.marker,
                self.session_key, self.user_key]

    def start(self) -> Bait:
        marker = self.marker.encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                self.send_response(200)
                self.end_headers()
                self.wfile.write(marker)

            def log_message(self, *args: object) -> None:
                pass

        self.http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http_port = self.http.server_address[1]
        self.abstract = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.abstract.bind("\0" + self.marker)
        self.abstract.listen(8)
        self._spawn(self.http.serve_forever)
        self._spawn(self._send_marker)
        self._spawn(self._knock)
        self._keys = [(add_key(self.session_key, b"secret", KEY_SPEC_SESSION_KEYRING),
                       KEY_SPEC_SESSION_KEYRING),
                      (add_key(self.user_key, b"secret", KEY_SPEC_USER_KEYRING),
                       KEY_SPEC_USER_KEYRING)]
        return self

    def _spawn(self, target: object) -> None:
        t = threading.Thread(target=target, daemon=True)  # type: ignore[arg-type]
        t.start()
        self._threads.append(t)

    def _send_marker(self) -> None:
        """UDP on the host's loopback, for the probe's packet and raw sockets to see."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            while not self._stop.wait(0.05):
                s.sendto(self.marker.encode(), ("127.0.0.1", 9))

    def _knock(self) -> None:
        """Keep trying the port the probe listens on, from the host."""
        while not self._stop.wait(0.1):
            try:
                with socket.create_connection(("127.0.0.1", self.listen_port), timeout=0.5):
                    self.connected.append("127.0.0.1")
            except OSError:
                pass

    def stop(self) -> None:
        self._stop.set()
        self.http.shutdown()
        self.http.server_close()
        self.abstract.close()
        for t in self._threads:
            t.join(timeout=5)
        for serial, ring in self._keys:
            unlink_key(serial, ring)


Verdicts = dict[str, tuple[str, str]]  # vector → (blocked|open, detail)


def parse(output: str) -> Verdicts:
    """The probe's lines: vector → (blocked|open, detail)."""
    found = {}
    for line in output.splitlines():
        vector, _, rest = line.partition(" ")
        verdict, _, detail = rest.partition(" ")
        if verdict in ("blocked", "open"):
            found[vector] = (verdict, detail)
    return found

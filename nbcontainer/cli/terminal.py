"""``run -t``: the container's terminal is a pty whose other side is joined to ours.

The command gets the pty's follower side as stdin, stdout, stderr and controlling terminal
(the sandbox makes it so); here the leader side is copied to our stdout and, with ``-i``,
our stdin to the leader. Our terminal, when stdin is one, is put in raw mode meanwhile (the
pty does the line editing and echo) and gives the pty its size.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import termios
import threading
import tty
from collections.abc import Iterator


def _copy_out(leader: int) -> None:
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO: every holder of the follower side is gone
            return
        if not data:
            return
        os.write(sys.stdout.fileno(), data)


def _copy_in(leader: int) -> None:
    while True:
        try:
            data = os.read(sys.stdin.fileno(), 65536)
            if not data:
                os.write(leader, b"\x04")  # EOF on our side: ^D to the pty
                return
            os.write(leader, data)
        except OSError:
            return


@contextlib.contextmanager
def pty_for_container(interactive: bool) -> Iterator[int]:
    """A pty; yields its follower side for ``api.run(..., stdin=fd, tty=True)``."""
    leader, follower = os.openpty()
    stdin = sys.stdin.fileno()
    saved = None
    if os.isatty(stdin):
        with contextlib.suppress(OSError):
            size = fcntl.ioctl(stdin, termios.TIOCGWINSZ, b"\0" * 8)
            fcntl.ioctl(follower, termios.TIOCSWINSZ, size)
        if interactive:
            saved = termios.tcgetattr(stdin)
            tty.setraw(stdin)
    sys.stdout.flush()
    reader = threading.Thread(target=_copy_out, args=(leader,), daemon=True)
    reader.start()
    if interactive:
        threading.Thread(target=_copy_in, args=(leader,), daemon=True).start()
    try:
        yield follower
    finally:
        os.close(follower)  # the container's copies are closed: the reader sees EIO
        reader.join(timeout=2)
        if saved is not None:
            termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
        os.close(leader)

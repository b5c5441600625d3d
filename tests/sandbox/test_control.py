"""Signals to a running command (``RunSpec.control``) and a terminal (``RunSpec.tty``), as
the kernels from images and ``run -t`` use them."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from nbcontainer.errors import BuildError
from nbcontainer.sandbox import RunSpec, Sandbox
from nbcontainer.sandbox.spec import Control
from tests.support.marks import needs_root
from tests.support.sandbox import Scratch

pytestmark = needs_root


def _when_started(control: Control, signum: int,
                  ready: threading.Event | None = None) -> threading.Thread:
    """Send ``signum`` once the command runs (and, with ``ready``, once it says so: a shell
    must have set its trap first)."""
    def send() -> None:
        if ready is not None:
            ready.wait(60)
        for _ in range(600):  # until the executor has attached its sender
            if control.signal(signum):
                return
            time.sleep(0.05)

    thread = threading.Thread(target=send)
    thread.start()
    return thread


@pytest.mark.parametrize("init", [True, False])
def test_a_signal_reaches_the_command(rootfs: Path, scratch: Callable[[], Scratch],
                                      init: bool) -> None:
    control = Control()
    assert control.signal(signal.SIGTERM) is False  # nothing runs yet
    s = scratch()
    script = "trap 'echo got TERM; exit 7' TERM; echo ready; while :; do sleep 0.1; done"
    ready = threading.Event()

    def output(chunk: bytes) -> None:
        if b"ready" in chunk:
            ready.set()

    with Sandbox() as box:
        sender = _when_started(control, signal.SIGTERM, ready)
        result = box.run(RunSpec(lowerdirs=[rootfs], upperdir=s.upper, workdir=s.work,
                                 argv=["/bin/sh", "-c", script], init=init, control=control,
                                 timeout=60, output=output))
        sender.join()
    assert result.exit_code == 7 and b"got TERM" in result.output_tail
    assert control.signal(signal.SIGTERM) is False  # detached when the command ended


def test_a_terminal_is_stdin_stdout_and_controlling_tty(rootfs: Path,
                                                        scratch: Callable[[], Scratch]) -> None:
    leader, follower = os.openpty()
    s = scratch()
    try:
        with Sandbox() as box:
            result = box.run(RunSpec(
                lowerdirs=[rootfs], upperdir=s.upper, workdir=s.work, stdin=follower, tty=True,
                argv=["/bin/sh", "-c", "[ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo all-ttys; "
                      "cat /proc/self/stat"], timeout=60))
        os.close(follower)
        text = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            if not chunk:
                break
            text += chunk
    finally:
        os.close(leader)
    assert result.exit_code == 0 and result.output_tail == b""  # everything went to the pty
    assert b"all-ttys" in text
    tty_nr = int(text.split(b")", 1)[1].split()[4])  # field 7 of /proc/self/stat
    assert tty_nr != 0  # the pty is the command's controlling terminal


def test_tty_needs_a_descriptor(rootfs: Path, scratch: Callable[[], Scratch]) -> None:
    s = scratch()
    with pytest.raises(BuildError, match="pty"):
        RunSpec(lowerdirs=[rootfs], upperdir=s.upper, workdir=s.work, argv=["true"], tty=True)

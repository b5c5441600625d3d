"""The helper's side of the control socket: events to the caller, the step being set up.

Runs inside the helper process (stdlib and siblings only).
"""

from __future__ import annotations

import os

from . import messages

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .messages import Event


class Step:
    """Which setup step is running, so an error can name the missing kernel feature."""

    name = "start"


def send(ctl: int, event: Event) -> None:
    try:
        os.write(ctl, messages.encode(event))
    except OSError:
        pass  # the caller is gone; the run is being torn down anyway


def report(ctl: int, exc: BaseException) -> None:
    """Tell the caller why setting up failed (at the current step)."""
    send(ctl, {"ev": "error", "step": Step.name, "errno": getattr(exc, "errno", None),
               "message": str(exc), "type": type(exc).__name__})


def ask_for_map(ctl: int) -> None:
    """After unsharing the user namespace: have the caller write our id maps, and wait."""
    send(ctl, {"ev": "map"})
    answer = messages.decode_answer(os.read(ctl, 4096))
    if answer["op"] == "go":
        return
    reason = answer.get("error") if answer["op"] == "abort" else None
    raise PermissionError(reason or "the id map was not written")


def ask_for_network(ctl: int) -> None:
    """After unsharing the network namespace: have the caller attach the user-mode network
    stack to it (slirp4netns on our pid), and wait until it is up."""
    send(ctl, {"ev": "net", "pid": os.getpid()})
    answer = messages.decode_answer(os.read(ctl, 4096))
    if answer["op"] == "go":
        return
    reason = answer.get("error") if answer["op"] == "abort" else None
    raise OSError(0, reason or "the user-mode network stack did not start")


def write_file(path: str, text: str) -> None:
    """One write(2), as /proc/<pid>/uid_map and friends require."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def map_self(uid: int, gid: int) -> None:
    """The single-id map a process may write for itself: container root is the caller."""
    write_file("/proc/self/setgroups", "deny")
    write_file("/proc/self/uid_map", f"0 {uid} 1")
    write_file("/proc/self/gid_map", f"0 {gid} 1")

"""The private network of RUN steps: a network namespace behind ``slirp4netns``.

BuildKit gives every RUN a private network with outbound access; so does nbcontainer, with
the user-mode TCP/IP stack rootless podman uses: ``slirp4netns`` reads the namespace's tap
device and turns its packets into ordinary sockets of the caller. ``--disable-host-loopback``
keeps the host's 127.0.0.1 (the Jupyter server, a database, another user's service) out of
reach: the gateway 10.0.2.2 refuses, and the namespace's own loopback is its own. DNS goes to
slirp's forwarder at 10.0.2.3.

A build starts one stack, the first time a RUN asks for the network (the fork server made
the namespace already, so that costs one ``slirp4netns`` start, a few milliseconds), and
every later RUN joins the same namespace: RUN steps that never use the network pay a
``setns``. ``nbcontainer run`` (one container) starts one for its own namespace.

It needs ``slirp4netns`` on PATH and a ``/dev/net/tun`` this user may open (a standard
system has it 0666; some minimal VMs and most pods do not). Where either is missing,
``detect`` says why, and a RUN on the default network gets no network (or the host's, with
``--allow network.host``): never the host's silently.
"""

from __future__ import annotations

import os
import re
import select
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass

from .errors import SandboxError
from .procs import wait_exit

TUN = "/dev/net/tun"
READY_TIMEOUT = 10.0
GUEST_DNS = "10.0.2.3"


@dataclass(frozen=True)
class Stack:
    """Whether the user-mode network stack can run here, and if not, why."""

    slirp4netns: str | None
    version: str = ""
    problem: str = ""  # empty: usable
    remedy: str = ""

    @property
    def usable(self) -> bool:
        return not self.problem

    def describe(self) -> str:
        if self.usable:
            return f"slirp4netns {self.version}, host loopback disabled".replace("  ", " ")
        return self.problem


_cache: dict[int, Stack] = {}
_lock = threading.Lock()


def detect(*, refresh: bool = False) -> Stack:
    """Find slirp4netns and try ``/dev/net/tun`` (cheap; cached per process and uid)."""
    with _lock:
        key = os.geteuid()
        if refresh or key not in _cache:
            _cache[key] = _detect()
        return _cache[key]


def _detect() -> Stack:
    path = shutil.which("slirp4netns")
    if path is None:
        return Stack(None, "", "slirp4netns is not installed",
                     "install it (Debian/Ubuntu: apt-get install slirp4netns)")
    try:
        fd = os.open(TUN, os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        return Stack(path, _version(path), f"{TUN} cannot be opened ({exc.strerror})",
                     _tun_remedy(exc.errno))
    os.close(fd)
    return Stack(path, _version(path))


def _tun_remedy(errno: int | None) -> str:
    if errno == 2:  # ENOENT: no device (a container without it)
        return ("give the container the tun device (podman/docker: --device /dev/net/tun; "
                "Kubernetes: a device plugin), or allow the host network: --allow network.host")
    return (f"as root: chmod 0666 {TUN} (its standard mode; udev sets it on most systems), "
            "or allow the host network: --allow network.host")


def _version(path: str) -> str:
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=5,
                             check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""
    m = re.search(r"version (\S+)", out)
    return m.group(1) if m else ""


class Slirp:
    """One running slirp4netns attached to a network namespace.

    ``netns``/``userns``: file descriptors of the namespaces (the fork server's), or ``pid``
    of a process in them (the one-shot helper). ``stop`` ends it (its exit fd is closed).
    """

    def __init__(self, path: str, *, netns: int | None = None, userns: int | None = None,
                 pid: int | None = None, userns_of_pid: bool = False) -> None:
        ready_r, ready_w = os.pipe()
        exit_r, self._exit_w = os.pipe()
        # --enable-seccomp: slirp parses whatever the RUN sends; --enable-sandbox (its own
        # mount namespace, every capability dropped) where it runs as real root: rootless it
        # runs as the user already, and its setegid(0) fails in a full id map's namespace
        argv = [path, "--configure", "--disable-host-loopback", "--enable-seccomp",
                *(["--enable-sandbox"] if os.geteuid() == 0 and userns is None and
                  not userns_of_pid else []),
                "--mtu", "65520", f"--ready-fd={ready_w}", f"--exit-fd={exit_r}"]
        passed = [ready_w, exit_r]
        if netns is not None:
            argv += ["--netns-type=path"]
            passed.append(netns)
            if userns is not None:
                argv.append(f"--userns-path=/proc/self/fd/{userns}")
                passed.append(userns)
            target = f"/proc/self/fd/{netns}"
        else:
            assert pid is not None
            if userns_of_pid:
                argv.append(f"--userns-path=/proc/{pid}/ns/user")
            target = str(pid)
        try:
            self.proc = subprocess.Popen([*argv, target, "tap0"], pass_fds=passed,
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.PIPE, start_new_session=True)
        finally:
            os.close(ready_w)
            os.close(exit_r)
        try:
            self._wait_ready(ready_r)
        except BaseException:
            self.stop()
            raise
        finally:
            os.close(ready_r)

    def _wait_ready(self, ready_r: int) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            left = deadline - time.monotonic()
            got, _, _ = select.select([ready_r], [], [], max(left, 0))
            if got and os.read(ready_r, 1) == b"1":
                return
            if not got and left > 0:
                continue
            if got:
                self.proc.wait(timeout=1)
            raise SandboxError(
                f"the private network could not be set up: slirp4netns "
                f"{'exited' if got else 'did not get ready'}: {self._stderr()}",
                hint="`nbcontainer info` shows whether slirp4netns and /dev/net/tun work here; "
                     "or build with RUN --network=none, or allow the host network "
                     "(--allow network.host)", feature="network", step="network")

    def _stderr(self) -> str:
        if self.proc.stderr is None or self.proc.poll() is None:
            return "no answer"
        return self.proc.stderr.read().decode(errors="replace").strip()[-500:] or \
            f"exit status {self.proc.returncode}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self._exit_w >= 0:
            os.close(self._exit_w)  # slirp4netns exits when its exit fd reads EOF
            self._exit_w = -1
        if not wait_exit(self.proc, 5):
            self.proc.kill()
            self.proc.wait()
        if self.proc.stderr is not None:
            self.proc.stderr.close()


def resolv_conf(host: bytes) -> bytes:
    """The private network's resolv.conf: slirp's forwarder, the host's search domains."""
    keep = [line for line in host.decode(errors="replace").splitlines()
            if line.split()[:1] in (["search"], ["domain"], ["options"])]
    return ("\n".join([f"nameserver {GUEST_DNS}", *keep]) + "\n").encode()

"""The caller's side of the sandbox: start the helper, feed it a RUN, stream its output.

Safe to call from a multi-threaded process (a Jupyter kernel) and from several threads at once:
the caller never forks itself or unshares; it only spawns processes through ``subprocess`` and
talks to them over pipes and a SOCK_SEQPACKET control socket.
"""

from __future__ import annotations

import marshal
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Sequence
from pathlib import Path

from nbcontainer.errors import BuildError

from .idmap import IdMapping
from .spec import DEFAULT_PATH, TAIL_BYTES, BindMount, RunResult, RunSpec, SecretMount

BOOT = Path(__file__).with_name("_boot.py")
KILL_GRACE = 5.0

# What a failing setup step means for the user.
_FEATURES = {
    "userns": ("user namespaces",
               "unprivileged user namespaces are disabled or unavailable; enable them "
               "(sysctl kernel.unprivileged_userns_clone=1, user.max_user_namespaces>0, "
               "kernel.apparmor_restrict_unprivileged_userns=0) or build as root"),
    "namespaces": ("mount/pid/uts/ipc namespaces",
                   "the kernel or a seccomp policy refuses unshare(); running inside a "
                   "container needs --privileged or equivalent"),
    "overlay": ("overlayfs",
                "load the overlay module (modprobe overlay); rootless builds need Linux >= "
                "5.11 for overlayfs in a user namespace, and the upper dir on a filesystem "
                "with user xattrs (ext4, xfs, btrfs; tmpfs only from 6.6)"),
    "network": ("network namespaces", "RUN --network=none needs CLONE_NEWNET"),
    "idmap": ("subordinate id mapping",
              "check this user's ranges in /etc/subuid and /etc/subgid and that newuidmap/"
              "newgidmap (package uidmap) are installed setuid root; or pass "
              "idmap=IdMapping.single(uid, gid)"),
}


class SandboxError(BuildError):
    """The sandbox could not be set up (not the command failing)."""

    def __init__(self, message: str, *, hint: str | None = None, feature: str | None = None,
                 step: str | None = None, errno: int | None = None) -> None:
        super().__init__(message, hint=hint)
        self.feature = feature
        self.step = step
        self.errno = errno


def _setup_error(event: dict) -> SandboxError:
    step, message = event.get("step", "?"), event.get("message", "")
    if step == "user":
        return SandboxError(f"USER: {message}", step=step)
    if step in _FEATURES:
        feature, hint = _FEATURES[step]
        return SandboxError(f"sandbox: {feature} not available ({message})", hint=hint,
                            feature=feature, step=step, errno=event.get("errno"))
    return SandboxError(f"sandbox setup failed at {step}: {message}", step=step,
                        errno=event.get("errno"))


class _Server:
    """The fork server: a fresh, single-threaded helper process that keeps one spare sandbox
    helper pre-warmed (namespaces unshared, ids mapped, pid 1 forked) and hands each RUN to
    it. A RUN then costs only its mounts and the exec."""

    def __init__(self, python: str, userns: str | None, idmap: IdMapping) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        args = [userns or "none", str(os.getuid()), str(os.getgid()),
                " ".join(idmap.newidmap_args("uid")), " ".join(idmap.newidmap_args("gid"))]
        try:
            self.proc = subprocess.Popen(
                [python, "-I", "-S", str(BOOT), "serve", str(theirs.fileno()), *args],
                pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL,
                start_new_session=True, close_fds=True)
        finally:
            theirs.close()
        self.sock = ours
        self.lock = threading.Lock()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def submit(self, fds: list[int]) -> None:
        """Send the RUN's fds straight to the pre-warmed spare (its pid 1, or the spare
        itself when it failed to set up and will report why)."""
        with self.lock:
            msg, got, _, _ = socket.recv_fds(self.sock, 16, 1)
            if not msg or len(got) != 1:
                for fd in got:
                    os.close(fd)
                raise ConnectionError("the sandbox fork server is gone")
            self.sock.send(b"take")
        with socket.socket(fileno=got[0]) as spare:
            socket.send_fds(spare, [b"run"], fds)

    def close(self) -> None:
        self.sock.close()  # EOF: the server exits; running children are unaffected
        try:
            self.proc.wait(timeout=KILL_GRACE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Sandbox:
    """Runs RUN commands in namespaces over overlayfs. Reusable and thread-safe.

    ``rootless=None`` picks a user namespace exactly when not running as root. ``idmap``
    overrides the map (default: the full subordinate range of ``/etc/subuid``/``subgid`` via
    newuidmap/newgidmap, else a single-id map). ``fork_server=False`` starts a fresh helper
    interpreter per RUN instead of forking it from a resident one (slower by ~15 ms).
    """

    def __init__(self, rootless: bool | None = None, *, idmap: IdMapping | None = None,
                 fork_server: bool = True, python: str | None = None) -> None:
        self.rootless = (os.geteuid() != 0) if rootless is None else rootless
        if idmap is None:
            if not self.rootless:
                idmap = IdMapping.identity()
            elif os.geteuid() == 0:
                idmap = IdMapping(((0, 0, 65536),), ((0, 0, 65536),))
            else:
                idmap = IdMapping.for_current_user()
        self.idmap = idmap
        self.python = python or sys.executable
        self.fork_server = fork_server
        self._server: _Server | None = None
        self._lock = threading.Lock()
        # The server lives in a slot shared with the finalizer, so it stops when the
        # Sandbox is garbage-collected or the interpreter exits.
        self._slot: list[_Server | None] = [None]
        self._finalizer = weakref.finalize(self, Sandbox._shutdown, self._slot)

    # -------------------------------------------------------------- lifecycle

    @staticmethod
    def _shutdown(slot: list[_Server | None]) -> None:
        server = slot[0]
        slot[0] = None
        if server is not None:
            server.close()

    def close(self) -> None:
        """Stop the fork server (idempotent; running RUNs are not affected)."""
        with self._lock:
            Sandbox._shutdown(self._slot)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def _userns_mode(self) -> str | None:
        if not self.rootless:
            return None
        if self.idmap.is_single and os.geteuid() != 0:
            return "self"
        return "parent"

    # -------------------------------------------------------------- running

    def run(self, spec: RunSpec) -> RunResult:
        """Run ``spec.argv``; return its exit status. Raises :class:`SandboxError` when the
        sandbox cannot be built, ``BuildError`` on timeout. Interrupting the caller (e.g.
        KeyboardInterrupt) kills the whole process tree before the exception propagates."""
        merged = spec.merged_dir
        merged.mkdir(exist_ok=True)
        wire = self._wire(spec, merged)
        return self._execute(wire, spec, merged)

    def _wire(self, spec: RunSpec, merged: Path) -> dict:
        env = {str(k): str(v) for k, v in spec.env.items()}
        env.setdefault("PATH", DEFAULT_PATH)
        mounts: list[tuple] = []
        for m in spec.mounts:
            if isinstance(m, BindMount):
                mounts.append(("bind", os.path.abspath(m.source), m.target, bool(m.readonly)))
            elif isinstance(m, SecretMount):
                mounts.append(("secret", m.target, bytes(m.data), m.mode, m.uid, m.gid))
            else:
                mounts.append(("tmpfs", m.target, m.size, m.mode))
        return {
            "lowers": [os.path.abspath(p) for p in spec.lowerdirs],
            "upper": os.path.abspath(spec.upperdir),
            "work": os.path.abspath(spec.workdir),
            "mountpoint": os.path.abspath(merged),
            "argv": [str(a) for a in spec.argv],
            "env": env,
            "user": spec.user or "",
            "cwd": spec.cwd or "/",
            "network": spec.network,
            "hostname": spec.hostname,
            "mounts": mounts,
            "hosts": _hosts_file(spec.hostname, spec.network, spec.extra_hosts),
            "resolv": _resolv_conf(),
            "userns": self._userns_mode,
            "host_uid": os.getuid(),
            "host_gid": os.getgid(),
            "tty_group": not self.idmap.is_single,
            "init": bool(spec.init),
        }

    def _spawn(self, ctl: int, specfd: int, out: int, stdin: int) -> subprocess.Popen | None:
        if not self.fork_server:
            return subprocess.Popen(
                [self.python, "-I", "-S", str(BOOT), "run", str(ctl), str(specfd)],
                pass_fds=[ctl, specfd], stdin=stdin, stdout=out, stderr=out,
                start_new_session=True, close_fds=True)
        with self._lock:
            server = self._slot[0]
            if server is None or not server.alive():
                server = self._slot[0] = _Server(self.python, self._userns_mode, self.idmap)
        try:
            server.submit([ctl, specfd, out, stdin])
        except OSError:
            with self._lock:  # the server died (killed?): start a new one once
                server = self._slot[0] = _Server(self.python, self._userns_mode, self.idmap)
            server.submit([ctl, specfd, out, stdin])
        return None

    def _execute(self, wire: dict, spec: RunSpec, merged: Path) -> RunResult:
        start = time.monotonic()
        specfd = os.memfd_create("nbsandbox-spec", os.MFD_CLOEXEC)
        os.write(specfd, marshal.dumps(wire))
        ctl, ctl_child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        out_r, out_w = os.pipe()
        feed: bytes | None = None
        stdin_w: int | None = None
        if spec.stdin is None:
            stdin_r = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        elif isinstance(spec.stdin, int):
            stdin_r = os.dup(spec.stdin)
        else:
            stdin_r, stdin_w = os.pipe()
            feed = bytes(spec.stdin)
        try:
            proc = self._spawn(ctl_child.fileno(), specfd, out_w, stdin_r)
        finally:
            for fd in (specfd, out_w, stdin_r):
                os.close(fd)
            ctl_child.close()
        run = _Run(self, ctl, out_r, stdin_w, feed, proc, spec)
        try:
            status, sig = run.loop()
        except BaseException:
            run.kill()
            raise
        finally:
            run.close()
        return RunResult(exit_code=status, duration=time.monotonic() - start,
                         output_tail=bytes(run.tail), idmap=self.idmap, signal=sig)

    def write_maps(self, pid: int) -> None:
        """Give process ``pid`` (just unshared) this sandbox's uid/gid maps."""
        if os.geteuid() == 0:
            for which in ("uid", "gid"):
                with open(f"/proc/{pid}/{which}_map", "w") as f:
                    f.write(self.idmap.map_lines(which))
            return
        procs = [subprocess.Popen([f"new{which}map", str(pid), *self.idmap.newidmap_args(which)],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT)
                 for which in ("uid", "gid")]
        errors = []
        for proc in procs:
            output, _ = proc.communicate()
            if proc.returncode:
                errors.append(f"{proc.args[0]}: {output.decode(errors='replace').strip()}")
        if errors:
            raise SandboxError("cannot map the subordinate id range: " + "; ".join(errors),
                               hint="check /etc/subuid and /etc/subgid for this user and that "
                                    "newuidmap/newgidmap (package uidmap) are setuid root",
                               feature="user namespaces", step="idmap")

    def run_in_userns(self, argv: Sequence[str]) -> int:
        """Run a host command as root of this sandbox's user namespace (no chroot, no
        mounts); e.g. ``["rm", "-rf", upper]`` or an extraction that must create files owned
        by subordinate ids. Without a user namespace (real root) it simply runs ``argv``."""
        if not self.rootless:
            return subprocess.run(list(argv), check=False).returncode
        ctl, ctl_child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        mode = self._userns_mode or "parent"
        try:
            proc = subprocess.Popen(
                [self.python, "-I", "-S", str(BOOT), "userns", str(ctl_child.fileno()), mode,
                 str(os.getuid()), str(os.getgid()), *argv],
                pass_fds=[ctl_child.fileno()], start_new_session=True)
        finally:
            ctl_child.close()
        error = None
        with ctl:
            while data := ctl.recv(65536):
                event = marshal.loads(data)
                if event["ev"] == "map":
                    try:
                        self.write_maps(proc.pid)
                        ctl.send(marshal.dumps({"op": "go"}))
                    except BaseException:
                        ctl.send(marshal.dumps({"op": "abort"}))
                        proc.wait()
                        raise
                elif event["ev"] == "error":
                    error = _setup_error(event)
        code = proc.wait()
        if error is not None:
            raise error
        return code


class _Run:
    """The caller's event loop for one RUN: output, control messages, stdin, timeout."""

    def __init__(self, sandbox: Sandbox, ctl: socket.socket, out: int, stdin_w: int | None,
                 feed: bytes | None, proc: subprocess.Popen | None, spec: RunSpec) -> None:
        self.sandbox, self.ctl, self.out, self.spec = sandbox, ctl, out, spec
        self.stdin_w, self.feed, self.proc = stdin_w, feed, proc
        self.tail = bytearray()
        self.helper_pid: int | None = proc.pid if proc else None
        self.pidfds: list[int] = []
        self.status: int | None = None
        self.signal: int | None = None
        self.error: SandboxError | None = None
        self.killed = False

    def _event(self, event: dict) -> None:
        kind = event["ev"]
        if kind == "pid":
            self.helper_pid = event["pid"]
            if self.proc is None:
                try:
                    self.pidfds.append(os.pidfd_open(event["pid"]))
                except ProcessLookupError:
                    pass
        elif kind == "started":
            try:
                self.pidfds.append(os.pidfd_open(event["pid"]))
            except ProcessLookupError:
                pass
        elif kind == "map":
            try:
                self.sandbox.write_maps(self.helper_pid or 0)
            except BaseException:
                self.ctl.send(marshal.dumps({"op": "abort"}))
                raise
            self.ctl.send(marshal.dumps({"op": "go"}))
        elif kind == "signal":
            self.signal = event["signal"]
        elif kind == "exit":
            self.status = event["status"]
        elif kind == "error" and self.error is None:
            self.error = _setup_error(event)

    def loop(self) -> tuple[int, int | None]:
        spec = self.spec
        deadline = None if spec.timeout is None else time.monotonic() + spec.timeout
        sel = selectors.DefaultSelector()
        sel.register(self.out, selectors.EVENT_READ, "out")
        sel.register(self.ctl, selectors.EVENT_READ, "ctl")
        if self.stdin_w is not None:
            os.set_blocking(self.stdin_w, False)
            sel.register(self.stdin_w, selectors.EVENT_WRITE, "in")
        open_streams = 2
        while open_streams:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready = sel.select(timeout)
            if not ready and deadline is not None and time.monotonic() >= deadline:
                self.kill()
                raise BuildError(f"RUN {spec.command_text()} timed out after {spec.timeout:g} s",
                                 hint="the sandbox and all its processes were killed")
            for key, _ in ready:
                if key.data == "out":
                    chunk = os.read(self.out, 65536)
                    if not chunk:
                        sel.unregister(self.out)
                        open_streams -= 1
                        continue
                    self.tail += chunk
                    if len(self.tail) > TAIL_BYTES:
                        del self.tail[:-TAIL_BYTES]
                    if spec.output is not None:
                        spec.output(chunk)
                elif key.data == "ctl":
                    data = self.ctl.recv(65536)
                    if not data:
                        sel.unregister(self.ctl)
                        open_streams -= 1
                        continue
                    self._event(marshal.loads(data))
                else:
                    self._feed_stdin(sel)
        sel.close()
        self._reap()
        if self.error is not None:
            raise self.error
        if self.status is None:
            raise SandboxError("the sandbox helper died unexpectedly\n" +
                               self.tail[-2000:].decode(errors="replace"))
        if self.status < 0:  # pid 1 itself was killed
            return 128 - self.status, -self.status
        return self.status, self.signal

    def _feed_stdin(self, sel: selectors.BaseSelector) -> None:
        assert self.stdin_w is not None and self.feed is not None
        try:
            written = os.write(self.stdin_w, self.feed[:65536])
            self.feed = self.feed[written:]
        except (BrokenPipeError, BlockingIOError) as exc:
            if isinstance(exc, BlockingIOError):
                return
            self.feed = b""
        if not self.feed:
            sel.unregister(self.stdin_w)
            os.close(self.stdin_w)
            self.stdin_w = None

    def _reap(self, timeout: float | None = None) -> None:
        """Wait until the helper and pid 1 have exited (then nothing of the sandbox is left)."""
        if self.proc is not None:
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        if self.pidfds:
            sel = selectors.DefaultSelector()
            for fd in self.pidfds:
                sel.register(fd, selectors.EVENT_READ)
            end = None if timeout is None else time.monotonic() + timeout
            pending = len(self.pidfds)
            while pending:
                left = None if end is None else max(0.0, end - time.monotonic())
                ready = sel.select(left)
                if not ready:
                    break
                for key, _ in ready:
                    sel.unregister(key.fd)
                    pending -= 1
            sel.close()

    def kill(self) -> None:
        """Tear everything down: SIGKILL the helper and pid 1, then wait for them to go."""
        if self.killed:
            return
        self.killed = True
        try:
            self.ctl.send(marshal.dumps({"op": "kill"}))
        except OSError:
            pass
        for fd in self.pidfds:
            try:
                signal.pidfd_send_signal(fd, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc is not None:
            self.proc.kill()
        try:
            # EOF on the control socket: the helper saw it and every holder (H, C) is gone;
            # processes it announces meanwhile are killed as they appear.
            self.ctl.shutdown(socket.SHUT_WR)
            self.ctl.settimeout(KILL_GRACE)
            while data := self.ctl.recv(65536):
                event = marshal.loads(data)
                if event.get("ev") in ("pid", "started") and not (
                        self.proc is not None and event["ev"] == "pid"):
                    fd = os.pidfd_open(event["pid"])
                    self.pidfds.append(fd)
                    signal.pidfd_send_signal(fd, signal.SIGKILL)
        except (OSError, ValueError, EOFError):
            pass
        self._reap(timeout=KILL_GRACE)

    def close(self) -> None:
        for fd in self.pidfds:
            os.close(fd)
        self.pidfds = []
        os.close(self.out)
        if self.stdin_w is not None:
            os.close(self.stdin_w)
        self.ctl.close()


def _read_host(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


def _resolv_conf() -> bytes:
    data = _read_host("/etc/resolv.conf")
    if b"nameserver" not in data:
        data += b"nameserver 8.8.8.8\nnameserver 8.8.4.4\n"  # Docker's fallback
    return data


def _hosts_file(hostname: str, network: str, extra: dict | object) -> bytes:
    lines = [f"127.0.0.1\tlocalhost {hostname}", "::1\tlocalhost ip6-localhost ip6-loopback"]
    text = "\n".join(lines) + "\n"
    if network == "host":
        text += _read_host("/etc/hosts").decode(errors="replace")
        if not text.endswith("\n"):
            text += "\n"
    for name, address in dict(extra).items():  # type: ignore[call-overload]
        text += f"{address}\t{name}\n"
    return text.encode()

"""The namespace executor, caller's side: start the helper, feed it a RUN, stream its output.

Safe to call from a multi-threaded process (a Jupyter kernel) and from several threads at once:
the caller never forks itself or unshares; it only spawns processes through ``subprocess`` and
talks to them over pipes and a SOCK_SEQPACKET control socket. What happens in the helper is
in ``_helper.py``; the messages in ``messages.py``.
"""

from __future__ import annotations

import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from nbcontainer.errors import BuildError
from nbcontainer.layers.idmap import IdMap, IdRange
from nbcontainer.layers.owners import write_owners

from . import messages
from .errors import SandboxError, setup_error
from .executor import Executor
from .hardening import ALL_CAPS, DOCKER_CAPS, Hardening, Wire, effective_network, seccomp_program
from .limits import Limits, make_limits
from .network import Slirp, Stack, detect, resolv_conf
from .procs import wait_exit
from .spec import (
    DEFAULT_PATH,
    TAIL_BYTES,
    BindMount,
    Mount,
    RunResult,
    RunSpec,
    SecretMount,
    TmpfsMount,
)
from .vfs import APT_SANDBOX, APT_SANDBOX_CONF, TreeRun, upper_owners

if TYPE_CHECKING:
    from .ladder import Settings
    from .messages import Event, MountWire, RunWire, ServeArgs, UsernsMode

# clone flags (``_namespaces``: the helper's module, not imported here)
CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWPID = 0x20000, 0x4000000, 0x8000000, 0x20000000

BOOT = Path(__file__).with_name("_boot.py")
KILL_GRACE = 5.0
WAKE = 0.5  # seconds: the longest a RUN's wait goes without checking for Ctrl-C


def _helper_argv(python: str, argv: list[str]) -> list[str]:
    return [python, "-I", "-S", str(BOOT), *argv]


class _Server:
    """The fork server: a fresh, single-threaded helper process that keeps spare sandbox
    helpers pre-warmed (namespaces unshared, pid 1 forked) and hands each RUN to one. It
    makes the build's user namespace (every RUN runs in it) and the private network
    namespace once; a RUN then costs only its mounts and the exec."""

    def __init__(self, python: str, userns: UsernsMode | None, write_maps: Callable[[int], None],
                 nsflags: int | None = None, *, net: bool = False,
                 cgroups: Sequence[str] = ()) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        args: ServeArgs = {"mode": "serve", "sock": theirs.fileno(), "userns": userns,
                           "uid": os.getuid(), "gid": os.getgid()}
        if nsflags is not None:
            args["nsflags"] = nsflags
        if net:
            args["net"] = True
        if cgroups:
            args["cgroups"] = list(cgroups)
        argv = messages.serve_argv(args)
        try:
            self.proc = subprocess.Popen(
                _helper_argv(python, argv), pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL, start_new_session=True, close_fds=True)
        finally:
            theirs.close()
        self.sock = ours
        self.lock = threading.Lock()
        self.userns_fd: int | None = None
        self.net_fd: int | None = None  # the private network namespace (ours)
        self.netfd_there = -1  # its fd number in the server and the spares
        self.netproblem = ""
        self.slirp: Slirp | None = None
        try:
            self._hello(write_maps)
        except BaseException:
            self.close()
            raise

    def _hello(self, write_maps: Callable[[int], None]) -> None:
        """Serve the server's id-map request; take the namespaces' fds it sends when set."""
        while True:
            data, fds, _, _ = socket.recv_fds(self.sock, 65536, 2)
            event = messages.decode_server_event(data)
            if event["ev"] == "map":
                try:
                    write_maps(event.get("pid", self.proc.pid))
                except BaseException:
                    self.sock.send(messages.encode({"op": "abort"}))
                    raise
                self.sock.send(messages.encode({"op": "go"}))
                continue
            if event["ev"] == "error":
                for fd in fds:
                    os.close(fd)
                raise setup_error(event)
            if event["userns"]:
                self.userns_fd = fds.pop(0)
            if event["netfd"] >= 0:
                self.net_fd, self.netfd_there = fds.pop(0), event["netfd"]
            self.netproblem = event.get("netproblem", "")
            return

    def network(self, stack: Stack) -> int:
        """The private network's fd number for a RUN's wire, its user-mode stack started
        the first time a RUN asks for it (RUNs that never do pay nothing for it)."""
        with self.lock:
            if self.slirp is None or not self.slirp.alive():
                if self.net_fd is None or stack.slirp4netns is None:
                    raise SandboxError(
                        "RUN's private network: no network namespace can be made here ("
                        f"{self.netproblem or 'not requested'})",
                        hint="`nbcontainer info` shows what the probe found; RUN "
                             "--network=host with --allow network.host shares the host's",
                        feature="network namespaces", step="network")
                self.slirp = Slirp(stack.slirp4netns, netns=self.net_fd, userns=self.userns_fd)
        return self.netfd_there

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
            self.sock.send(messages.TAKE)
        with socket.socket(fileno=got[0]) as spare:
            socket.send_fds(spare, [messages.RUN], fds)

    def close(self) -> None:
        self.sock.close()  # EOF: the server exits; running children are unaffected
        if not wait_exit(self.proc, KILL_GRACE):
            self.proc.kill()
            self.proc.wait()
        if self.slirp is not None:
            self.slirp.stop()
            self.slirp = None
        for fd in (self.userns_fd, self.net_fd):
            if fd is not None:
                os.close(fd)
        self.userns_fd = self.net_fd = None


class NamespaceExecutor(Executor):
    """Runs RUN commands in namespaces over overlayfs. Reusable and thread-safe.

    ``rootless=None`` picks a user namespace exactly when not running as root. ``idmap``
    overrides the map (default: the full subordinate range of ``/etc/subuid``/``subgid`` via
    newuidmap/newgidmap, else a single-id map). ``fork_server=False`` starts a fresh helper
    interpreter per RUN instead of forking it from a resident one (slower by ~15 ms).
    """

    name = "namespaces"
    vfs = False  # per-RUN tree copies instead of overlayfs (vfs.py)
    records = False  # files belong to the caller; owners recorded beside trees

    def __init__(self, rootless: bool | None = None, *, idmap: IdMap | None = None,
                 fork_server: bool = True, python: str | None = None,
                 settings: Settings | None = None, hardening: Hardening | None = None) -> None:
        self.settings = settings
        self.hardening = hardening or Hardening()
        self._limits: Limits | None = None
        self._extra: dict[str, object] = {}
        self._nsflags: int | None = None
        if settings is not None:
            rootless = settings.userns is not None and not settings.records and \
                os.geteuid() != 0
            idmap = settings.idmap
            self.vfs, self.records = settings.vfs, settings.records
            self._configure(settings)
        self.rootless = (os.geteuid() != 0) if rootless is None else rootless
        self.idmap = idmap or _default_idmap(self.rootless)
        self.python = python or sys.executable
        self.fork_server = fork_server
        self._lock = threading.Lock()
        # The server lives in a slot shared with the finalizer, so it stops when the
        # executor is garbage-collected or the interpreter exits.
        self._slot: list[_Server | None] = [None]
        self._held: list[Limits] = []
        self._finalizer = weakref.finalize(self, NamespaceExecutor._shutdown, self._slot,
                                           self._held)

    # -------------------------------------------------------------- lifecycle

    @staticmethod
    def _shutdown(slot: list[_Server | None], held: list[Limits]) -> None:
        server = slot[0]
        slot[0] = None
        if server is not None:
            server.close()
        while held:
            held.pop().close()

    def close(self) -> None:
        """Stop the fork server and remove the cgroup (idempotent; running RUNs are not
        affected)."""
        with self._lock:
            NamespaceExecutor._shutdown(self._slot, self._held)
            self._limits = None

    @property
    def limits(self) -> Limits:
        """The RUN steps' limits (a cgroup made on first use, else rlimits)."""
        if self._limits is None:
            self._limits = make_limits(self.hardening.pids_limit, self.hardening.memory)
            self._held.append(self._limits)
        return self._limits

    @property
    def network_stack(self) -> Stack:
        return detect()

    def __enter__(self) -> NamespaceExecutor:
        return self

    def _configure(self, s: Settings) -> None:
        """The wire fields of a reduced rung (the full rung sends none of them)."""
        flags = CLONE_NEWNS | CLONE_NEWIPC | (CLONE_NEWUTS if s.uts else 0) | \
            (CLONE_NEWPID if s.pid else 0)
        if flags != CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWPID:
            self._nsflags = flags
            self._extra["nsflags"] = flags
        if s.proc != "fresh":
            self._extra["proc"] = s.proc
        if not s.pivot:
            self._extra["pivot"] = False
        if s.vfs:
            self._extra["rootfs"] = "bind"
        if s.userns == "self":
            self._extra["fake_chown"] = True

    @property
    def _userns_mode(self) -> UsernsMode | None:
        if self.settings is not None:
            return self.settings.userns
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
        if self.vfs:
            return self._run_copy(spec, merged)
        if not self.records:
            return self._execute(self._wire(spec, merged), spec)
        # A single-id map over overlayfs: apt's sandbox configuration (mounted over a stub
        # target, never in the upper dir), and the upper dir's owners from the lowers' records.
        if any(Path(lower, "etc/apt/apt.conf.d").is_dir() for lower in spec.lowerdirs):
            spec = replace(spec, mounts=[*spec.mounts, SecretMount(
                "/" + APT_SANDBOX, APT_SANDBOX_CONF, 0o644)])
        result = self._execute(self._wire(spec, merged), spec)
        if result.ok:
            write_owners(spec.upperdir, upper_owners(Path(spec.upperdir),
                                                     [Path(p) for p in spec.lowerdirs]))
        return result

    def _run_copy(self, spec: RunSpec, merged: Path) -> RunResult:
        """The reduced rung's tree copies: the RUN over a copy, its diff in layer format."""
        if len(spec.lowerdirs) != 1:
            raise SandboxError("tree copies run over one tree", step="rootfs")
        targets = [(m.target, not isinstance(m, SecretMount) and (
            isinstance(m, TmpfsMount) or Path(m.source).is_dir())) for m in spec.mounts]
        single = self._userns_mode == "self"
        job = TreeRun(Path(spec.lowerdirs[0]), Path(spec.upperdir), records=self.records,
                      own=os.geteuid() == 0, mount_targets=targets, apt_sandbox=single,
                      consume=spec.private_lower, lower_files=spec.lower_files)
        mounts = list(spec.mounts)
        if job.apt:  # apt cannot drop to _apt under a single-id map; never lands in a layer
            mounts.append(SecretMount("/" + APT_SANDBOX, APT_SANDBOX_CONF, 0o644))
        run_spec = replace(spec, lowerdirs=[job.tree], mounts=mounts, private_lower=False,
                           lower_files=())
        result = self._execute(self._wire(run_spec, merged), run_spec)
        if result.ok:
            return replace(result, tree=job.commit())
        return result

    def _wire(self, spec: RunSpec, merged: Path) -> RunWire:
        env = {str(k): str(v) for k, v in spec.env.items()}
        env.setdefault("PATH", DEFAULT_PATH)
        wire: RunWire = {
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
            "mounts": [_mount_wire(m) for m in spec.mounts],
            "hosts": _hosts_file(spec.hostname, spec.network, spec.extra_hosts),
            "resolv": _resolv_conf(),
            "userns": self._userns_mode,
            "host_uid": os.getuid(),
            "host_gid": os.getgid(),
            "tty_group": not self.idmap.is_single,
            "init": bool(spec.init),
            **({"tty": True} if spec.tty else {}),  # type: ignore[typeddict-item]
            "caller": os.getpid(),
            **self._extra,  # type: ignore[typeddict-item]
        }
        if spec.lower_files:
            wire["lower_files"] = [{"target": f.target, "data": bytes(f.data), "mode": f.mode}
                                   for f in spec.lower_files]
        return wire

    def _harden(self, wire: RunWire, spec: RunSpec) -> RunWire:
        """The RUN's containment on the wire: network, seccomp, capabilities, masks, limits."""
        insecure = self.hardening.security(spec.security) == "insecure"
        caps = ALL_CAPS if insecure else DOCKER_CAPS
        if insecure:
            wire["caps"] = sum(1 << c for c in caps)
            wire["masks"] = False
        else:
            program = seccomp_program(self.hardening, caps)
            if program is not None:
                wire["seccomp"] = program
        network = self._network(spec)
        wire["network"] = network
        if network == "sandbox":
            wire["resolv"] = resolv_conf(wire["resolv"])
        limits = self.limits
        if limits.rlimits:
            wire["rlimits"] = limits.rlimits
        if limits.view is not None:
            wire["cgroup_view"] = limits.view
        return wire

    def _network(self, spec: RunSpec) -> Wire:
        stack = self.network_stack
        return effective_network(self.hardening.network(spec.network), self.hardening,
                                 stack.usable)

    def _spawn(self, ctl: int, specfd: int, out: int, stdin: int,
               wire: RunWire) -> subprocess.Popen[bytes] | None:
        if not self.fork_server:
            os.write(specfd, messages.encode(wire))
            argv = messages.run_argv({"mode": "run", "ctl": ctl, "specfd": specfd})
            return subprocess.Popen(
                _helper_argv(self.python, argv), pass_fds=[ctl, specfd], stdin=stdin,
                stdout=out, stderr=out, start_new_session=True, close_fds=True)
        server = self._server()
        try:
            self._send_wire(server, wire, specfd)
            server.submit([ctl, specfd, out, stdin])
        except OSError:
            server = self._server(restart=True)  # the server died (killed?): a new one, once
            self._send_wire(server, wire, specfd)
            server.submit([ctl, specfd, out, stdin])
        return None

    def _send_wire(self, server: _Server, wire: RunWire, specfd: int) -> None:
        if wire["network"] == "sandbox":
            wire["netfd"] = server.network(self.network_stack)
        os.ftruncate(specfd, 0)
        os.lseek(specfd, 0, os.SEEK_SET)
        os.write(specfd, messages.encode(wire))

    def _server(self, *, restart: bool = False) -> _Server:
        with self._lock:
            server = self._slot[0]
            if restart or server is None or not server.alive():
                if server is not None:
                    server.close()
                limits = self.limits
                server = self._slot[0] = _Server(
                    self.python, self._userns_mode, self.write_maps, self._nsflags,
                    net=self.network_stack.usable, cgroups=limits.procs)
            return server

    def _execute(self, wire: RunWire, spec: RunSpec) -> RunResult:
        start = time.monotonic()
        wire = self._harden(wire, spec)
        if not self.fork_server and self.limits.dirs:
            wire["cgroups"] = self.limits.procs
        specfd = os.memfd_create("nbsandbox-spec", os.MFD_CLOEXEC)
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
        # Ctrl-C may land anywhere from here on, even between the hand-over of the RUN and
        # the start of the loop: whatever was started is then killed through the control
        # socket before the interrupt goes on (an orphaned RUN would hold the build up).
        run: _Run | None = None
        try:
            try:
                proc = self._spawn(ctl_child.fileno(), specfd, out_w, stdin_r, wire)
            finally:
                for fd in (specfd, out_w, stdin_r):
                    os.close(fd)
                ctl_child.close()
            run = _Run(self, ctl, out_r, stdin_w, feed, proc, spec)
            status, sig = run.loop()
        except BaseException:
            if run is None:
                run = _Run(self, ctl, out_r, stdin_w, feed, None, spec)
            run.kill()
            raise
        finally:
            if run is not None:
                run.close()
            else:
                ctl.close()
                os.close(out_r)
                if stdin_w is not None:
                    os.close(stdin_w)
        return RunResult(exit_code=status, duration=time.monotonic() - start,
                         output_tail=bytes(run.tail), idmap=self.idmap, signal=sig)

    def write_maps(self, pid: int) -> None:
        """Give process ``pid`` (just unshared) this sandbox's uid/gid maps."""
        if os.geteuid() == 0:
            for which in ("uid", "gid"):
                with open(f"/proc/{pid}/{which}_map", "w") as f:
                    f.write(self.idmap.map_lines(which))
            return
        procs = {f"new{which}map": subprocess.Popen(
            [f"new{which}map", str(pid), *self.idmap.newidmap_args(which)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            for which in ("uid", "gid")}
        errors = []
        for tool, proc in procs.items():
            output, _ = proc.communicate()
            if proc.returncode:
                errors.append(f"{tool}: {output.decode(errors='replace').strip()}")
        if errors:
            raise SandboxError("cannot map the subordinate id range: " + "; ".join(errors),
                               hint=_idmap_hint(), feature="user namespaces", step="idmap")

    def run_in_userns(self, argv: Sequence[str], *, stdin: int | None = None,
                      stdout: int | None = None) -> int:
        """Run a host command as root of this sandbox's user namespace (no chroot, no
        mounts); e.g. ``["rm", "-rf", upper]`` or an extraction that must create files owned
        by subordinate ids. Without a user namespace (real root) it simply runs ``argv``."""
        if not self.rootless:
            return subprocess.run(list(argv), stdin=stdin, stdout=stdout, check=False).returncode
        ctl, ctl_child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        helper = messages.userns_argv({
            "mode": "userns", "ctl": ctl_child.fileno(), "userns": self._userns_mode or "parent",
            "uid": os.getuid(), "gid": os.getgid(), "argv": list(argv)})
        try:
            proc = subprocess.Popen(_helper_argv(self.python, helper), stdin=stdin, stdout=stdout,
                                    pass_fds=[ctl_child.fileno()], start_new_session=True)
        finally:
            ctl_child.close()
        error = None
        with ctl:
            while data := ctl.recv(65536):
                event = messages.decode_event(data)
                if event["ev"] == "map":
                    self._answer_map(ctl, proc.pid, proc)
                elif event["ev"] == "error":
                    error = setup_error(event)
        code = proc.wait()
        if error is not None:
            raise error
        return code

    def _answer_map(self, ctl: socket.socket, pid: int,
                    proc: subprocess.Popen[bytes] | None = None) -> None:
        """Write the id maps of ``pid``, which asked for them, and tell it to go on."""
        try:
            self.write_maps(pid)
        except BaseException:
            ctl.send(messages.encode({"op": "abort"}))
            if proc is not None:
                proc.wait()
            raise
        ctl.send(messages.encode({"op": "go"}))


Sandbox = NamespaceExecutor  # the name callers have used since the sandbox has existed


def _idmap_hint() -> str:
    """Why newuidmap may have failed, from what this process is (not a guess)."""
    try:
        with open("/proc/self/status") as f:
            nnp = any(line.split() == ["NoNewPrivs:", "1"] for line in f)
    except OSError:
        nnp = False
    if nnp:
        return ("no_new_privs is set, so the setuid newuidmap gains no privilege; run without "
                "it (Kubernetes: allowPrivilegeEscalation: true) or build with "
                "--isolation reduced (a single-id map)")
    return ("check this user's ranges in /etc/subuid and /etc/subgid and that newuidmap/"
            "newgidmap (package uidmap) are setuid root; `nbcontainer info` shows what the "
            "probe found")


def _default_idmap(rootless: bool) -> IdMap:
    if not rootless:
        return IdMap.identity()
    if os.geteuid() == 0:  # rootless by request as root: any range can be mapped
        return IdMap((IdRange(0, 0, 65536),), (IdRange(0, 0, 65536),))
    return IdMap.for_current_user()


def _mount_wire(m: Mount) -> MountWire:
    if isinstance(m, BindMount):
        return {"kind": "bind", "source": os.path.abspath(m.source), "target": m.target,
                "readonly": bool(m.readonly)}
    if isinstance(m, SecretMount):
        return {"kind": "secret", "target": m.target, "data": bytes(m.data), "mode": m.mode,
                "uid": m.uid, "gid": m.gid}
    assert isinstance(m, TmpfsMount)
    return {"kind": "tmpfs", "target": m.target, "size": m.size, "mode": m.mode}


class _Run:
    """The caller's event loop for one RUN: output, control messages, stdin, timeout."""

    def __init__(self, sandbox: NamespaceExecutor, ctl: socket.socket, out: int,
                 stdin_w: int | None, feed: bytes | None, proc: subprocess.Popen[bytes] | None,
                 spec: RunSpec) -> None:
        self.sandbox, self.ctl, self.out, self.spec = sandbox, ctl, out, spec
        self.stdin_w, self.feed, self.proc = stdin_w, feed, proc
        self.tail = bytearray()
        self.helper_pid: int | None = proc.pid if proc else None
        self.pidfds: list[int] = []
        self.status: int | None = None
        self.signal: int | None = None
        self.error: SandboxError | None = None
        self.killed = False
        self.open_streams = 2
        self.slirp: Slirp | None = None
        if spec.control is not None:
            spec.control.attach(self.send_signal)

    def send_signal(self, signum: int) -> None:
        """Forward ``signum`` to the command (H passes it to C, which runs it or its init)."""
        self.ctl.send(messages.encode({"op": "signal", "signal": signum}))

    def _watch(self, pid: int) -> None:
        try:
            self.pidfds.append(os.pidfd_open(pid))
        except ProcessLookupError:
            pass

    def _event(self, event: Event) -> None:
        if event["ev"] == "pid":
            self.helper_pid = event["pid"]
            if self.proc is None:
                self._watch(event["pid"])
        elif event["ev"] == "started":
            self._watch(event["pid"])
        elif event["ev"] == "map":
            self.sandbox._answer_map(self.ctl, self.helper_pid or 0)
        elif event["ev"] == "net":
            self._start_network(event["pid"])
        elif event["ev"] == "signal":
            self.signal = event["signal"]
        elif event["ev"] == "exit":
            self.status = event["status"]
        elif event["ev"] == "error" and self.error is None:
            self.error = setup_error(event)

    def _start_network(self, pid: int) -> None:
        """The one-shot helper's own network namespace: its user-mode stack, for this RUN."""
        stack = self.sandbox.network_stack
        try:
            if stack.slirp4netns is None:
                raise SandboxError(stack.problem, step="network")
            self.slirp = Slirp(stack.slirp4netns, pid=pid,
                               userns_of_pid=self.sandbox._userns_mode is not None)
        except BaseException:
            self.ctl.send(messages.encode({"op": "abort", "error": "no user-mode network"}))
            raise
        self.ctl.send(messages.encode({"op": "go"}))

    def loop(self) -> tuple[int, int | None]:
        spec = self.spec
        deadline = None if spec.timeout is None else time.monotonic() + spec.timeout
        sel = selectors.DefaultSelector()
        sel.register(self.out, selectors.EVENT_READ, "out")
        sel.register(self.ctl, selectors.EVENT_READ, "ctl")
        if self.stdin_w is not None:
            os.set_blocking(self.stdin_w, False)
            sel.register(self.stdin_w, selectors.EVENT_WRITE, "in")
        while self.open_streams:
            # Wake up now and then even when nothing happens: a Ctrl-C that the kernel hands
            # to another thread interrupts no system call here, and Python runs its handler
            # (KeyboardInterrupt) only when this thread runs again.
            timeout = WAKE if deadline is None else \
                min(WAKE, max(0.0, deadline - time.monotonic()))
            ready = sel.select(timeout)
            if not ready and deadline is not None and time.monotonic() >= deadline:
                self.kill()
                raise BuildError(f"RUN {spec.command_text()} timed out after {spec.timeout:g} s",
                                 hint="the sandbox and all its processes were killed")
            for key, _ in ready:
                if key.data == "out":
                    self._read_output(sel)
                elif key.data == "ctl":
                    self._read_control(sel)
                else:
                    self._feed_stdin(sel)
        sel.close()
        self._reap()
        return self._outcome()

    def _read_output(self, sel: selectors.BaseSelector) -> None:
        chunk = os.read(self.out, 65536)
        if not chunk:
            sel.unregister(self.out)
            self.open_streams -= 1
            return
        self.tail += chunk
        if len(self.tail) > TAIL_BYTES:
            del self.tail[:-TAIL_BYTES]
        if self.spec.output is not None:
            self.spec.output(chunk)

    def _read_control(self, sel: selectors.BaseSelector) -> None:
        data = self.ctl.recv(65536)
        if not data:
            sel.unregister(self.ctl)
            self.open_streams -= 1
            return
        self._event(messages.decode_event(data))

    def _outcome(self) -> tuple[int, int | None]:
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
        except BlockingIOError:
            return
        except BrokenPipeError:
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
        if not self.pidfds:
            return
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
            self.ctl.send(messages.encode({"op": "kill"}))
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
            self._kill_late_arrivals()
        except (OSError, ValueError, EOFError):
            pass
        self._reap(timeout=KILL_GRACE)

    def _kill_late_arrivals(self) -> None:
        """EOF on the control socket: the helper saw it and every holder (H, C) is gone;
        processes it announces meanwhile are killed as they appear."""
        self.ctl.shutdown(socket.SHUT_WR)
        self.ctl.settimeout(KILL_GRACE)
        while data := self.ctl.recv(65536):
            event = messages.decode_event(data)
            if event["ev"] == "started" or (event["ev"] == "pid" and self.proc is None):
                fd = os.pidfd_open(event["pid"])
                self.pidfds.append(fd)
                signal.pidfd_send_signal(fd, signal.SIGKILL)

    def close(self) -> None:
        if self.slirp is not None:
            self.slirp.stop()
            self.slirp = None
        if self.spec.control is not None:
            self.spec.control.attach(None)
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


def _hosts_file(hostname: str, network: str, extra: Mapping[str, str]) -> bytes:
    lines = [f"127.0.0.1\tlocalhost {hostname}", "::1\tlocalhost ip6-localhost ip6-loopback"]
    text = "\n".join(lines) + "\n"
    if network == "host":
        text += _read_host("/etc/hosts").decode(errors="replace")
        if not text.endswith("\n"):
            text += "\n"
    for name, address in dict(extra).items():
        text += f"{address}\t{name}\n"
    return text.encode()

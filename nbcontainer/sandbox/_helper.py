"""The process model of the namespace sandbox: everything that runs in the helper process.

The caller (often a multi-threaded Jupyter kernel) never forks or unshares itself: it starts
this code in a fresh interpreter (``python -I -S _boot.py``), either once as a single-threaded
fork server that forks one child per RUN, or one-shot per RUN. Process tree of one RUN::

    H  helper child: unshare(user?, mnt, pid, uts, ipc), id maps, forks C; then waits for
    |  C and reports its status on the control socket
    +-- C  pid 1 of the new pid namespace: builds the root (``_rootfs``), pivot_root, then
        |  (like runc for a RUN) becomes the command: drops capabilities, resolves USER
        |  inside the image, chdir, execve
        +-- D  only with ``init``: C stays a tiny init that reaps orphans and forwards
               signals, and D becomes the command

When C exits the kernel kills everything left in the pid namespace; when H exits the mount
namespace (overlay, /dev, binds) disappears. C has PDEATHSIG=SIGKILL, so killing H kills all.

Stdlib and sibling modules only. The messages (``messages.py``) are ``marshal``-encoded
dicts on SOCK_SEQPACKET sockets.
"""

from __future__ import annotations

import fcntl
import gc
import marshal
import os
import select
import signal
import socket
import termios
import warnings  # noqa: F401 - os.execvpe imports it, after pivot_root when it cannot

from . import _namespaces as ns
from . import _seccomp, messages
from ._confine import confine
from ._control import Step, ask_for_map, ask_for_network, map_self, report, send
from ._rootfs import mount_rootfs
from ._users import UserLookupError, resolve_user

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from .messages import (
        ProbeArgs,
        ProbeResult,
        PtraceConfine,
        RunArgs,
        RunWire,
        ServeArgs,
        UsernsArgs,
        UsernsMode,
    )

EXIT_SETUP_FAILED = 125
SPARES = 2  # pre-warmed helpers the fork server keeps queued for the caller
_FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
              signal.SIGUSR2)


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def _read_spec(specfd: int) -> RunWire:
    os.lseek(specfd, 0, os.SEEK_SET)
    return messages.decode_run(_read_all(specfd))


# ---------------------------------------------------------------- H: namespaces, supervision


DEFAULT_NS = ns.CLONE_NEWNS | ns.CLONE_NEWPID | ns.CLONE_NEWUTS | ns.CLONE_NEWIPC


def _prepare(userns: UsernsMode | None, uid: int, gid: int,
             request_map: Callable[[], None],
             flags: int = DEFAULT_NS, request_net: Callable[[], None] | None = None
             ) -> tuple[int, socket.socket]:
    """The half of H that does not depend on the RUN: namespaces, id maps, pid 1 forked.

    The fork server runs it ahead of time in a spare helper, so a RUN pays for none of it
    (two forks and unshare; the server already is in the build's user namespace). The
    one-shot H also makes the user namespace (``userns``) and, for a RUN on the private
    network, the network namespace the caller attaches the user-mode stack to
    (``request_net``). Returns C's pid and the socket on which C waits for the RUN's fds.
    """
    os.umask(0o022)
    try:
        os.setsid()  # terminal signals go to the caller only; it tears the sandbox down
    except OSError:
        pass
    Step.name = "userns" if userns else "namespaces"
    ns.unshare(flags | (ns.CLONE_NEWUSER if userns else 0))
    if not flags & ns.CLONE_NEWPID:
        # No pid namespace: orphans of the command come to H, which kills them when the
        # command ends (what the end of a pid namespace does otherwise).
        ns.prctl(ns.PR_SET_CHILD_SUBREAPER, 1)
        _Orphans.reap = True
    if userns == "self":
        map_self(uid, gid)  # single-id map written by ourselves: only container root exists
    elif userns == "parent":
        Step.name = "idmap"
        request_map()  # someone outside runs newuidmap/newgidmap on our pid
    if request_net is not None:
        Step.name = "network"
        ns.loopback_up()
        request_net()  # the caller starts the user-mode stack on our network namespace
    Step.name = "mount"
    ns.mount(None, "/", None, ns.MS_REC | ns.MS_PRIVATE)
    # Fork pid 1 now: /proc must be mounted from inside the new pid namespace, and a user
    # namespace may mount proc only while the host's /proc is still visible (before
    # pivot_root), so C does all the mounting. H shares its mount namespace and only waits.
    Step.name = "fork"
    h_sock, c_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    life_r, life_w = os.pipe()  # H keeps life_w until it dies
    pid = os.fork()
    if pid == 0:
        code = EXIT_SETUP_FAILED
        try:
            os.close(life_w)
            h_sock.close()
            code = _init_main(c_sock, life_r)
        finally:
            os._exit(code)
    os.close(life_r)
    c_sock.close()
    return pid, h_sock


def _hand_over(ctl: int, pid: int, h_sock: socket.socket, fds: list[int]) -> int:
    """Give C the RUN ([ctl, spec, output, stdin]), then supervise it."""
    socket.send_fds(h_sock, [messages.RUN], fds)
    echoed = _take_ctl(h_sock)  # C hands every H its control socket back: ours already
    if echoed is not None:
        os.close(echoed)
    send(ctl, {"ev": "started", "pid": pid})
    for fd in {*fds[1:], 0, 1, 2}:  # only C's copies may keep the output pipe open
        try:
            os.close(fd)
        except OSError:
            pass
    return _supervise(ctl, pid)


def main(argv: list[str]) -> int:
    """The helper process's main (``_boot.py``): one of four jobs."""
    args = messages.parse_argv(argv)
    if args["mode"] == "serve":
        return serve(args)
    if args["mode"] == "run":
        return child_main(args)
    if args["mode"] == "probe":
        os.write(1, messages.encode(probe(args)))
        return 0
    if args["mode"] == "hostprobe":
        from ._probe import host_probe

        os.write(1, marshal.dumps(host_probe(args)))
        return 0
    if args["mode"] == "ptrace":
        return ptrace_exec(args["argv"], args["status_fd"], args["confine_fd"])
    return userns_exec(args)


def child_main(args: RunArgs) -> int:
    """One-shot H (a fresh interpreter per RUN): 0 = stdin, 1 and 2 = the output pipe."""
    ctl, specfd = args["ctl"], args["specfd"]
    os.set_inheritable(ctl, False)
    os.set_inheritable(specfd, False)
    try:
        send(ctl, {"ev": "pid", "pid": os.getpid()})
        spec = _read_spec(specfd)
        _join_cgroups(spec.get("cgroups", []))
        flags = spec.get("nsflags", DEFAULT_NS)
        private_net = spec["network"] == "sandbox"
        pid, h_sock = _prepare(spec["userns"], spec["host_uid"], spec["host_gid"],
                               lambda: ask_for_map(ctl),
                               flags | (ns.CLONE_NEWNET if private_net else 0),
                               (lambda: ask_for_network(ctl)) if private_net else None)
        return _hand_over(ctl, pid, h_sock, [ctl, specfd, 1, 0])
    except BaseException as exc:  # noqa: BLE001 - every failure must reach the caller
        report(ctl, exc)
        return EXIT_SETUP_FAILED


def _join_cgroups(procs: list[str]) -> None:
    """Move this process (and so everything it forks) into the caller's cgroups."""
    if procs:
        Step.name = "cgroup"
    for path in procs:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)


def _take_ctl(h_sock: socket.socket) -> int | None:
    """The control socket C forwards to H once it has its RUN (None: C died first)."""
    try:
        msg, fds, _, _ = socket.recv_fds(h_sock, 16, 1)
    except OSError:
        msg, fds = b"", []
    h_sock.close()
    if not msg or len(fds) != 1:
        for fd in fds:
            os.close(fd)
        return None
    return fds[0]


def spare_main(zsock: socket.socket, flags: int = DEFAULT_NS) -> int:
    """Pre-warmed H forked by the fork server: prepare now, take a RUN later.

    When ready, H passes the socket to its C through the server to the caller, which sends
    the RUN's fds straight to C (no relay through the server and H on the critical path);
    C forwards the control socket back to H, which then reports and supervises. An unused
    spare dies with the server (PDEATHSIG), C with H.
    """
    server = os.getppid()
    ns.prctl(ns.PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != server:
        return 0  # the server died before PDEATHSIG was armed
    try:
        pid, h_sock = _prepare(None, 0, 0, lambda: None, flags)
    except BaseException as exc:  # noqa: BLE001 - reported with the RUN that uses us
        step = Step.name
        zsock.send(messages.encode({"ev": "failed"}))
        return _spare_failed(zsock, step, exc)
    socket.send_fds(zsock, [messages.encode({"ev": "ready"})], [h_sock.fileno()])
    zsock.close()
    ctl = _take_ctl(h_sock)
    if ctl is None:
        return 0
    ns.prctl(ns.PR_SET_PDEATHSIG, 0)  # a started RUN outlives the server
    os.set_inheritable(ctl, False)
    send(ctl, {"ev": "pid", "pid": os.getpid()})
    send(ctl, {"ev": "started", "pid": pid})
    return _supervise(ctl, pid)


def _spare_failed(zsock: socket.socket, step: str, error: BaseException) -> int:
    """A spare that could not prepare waits for its RUN and reports why to it."""
    msg, fds, _, _ = socket.recv_fds(zsock, 4096, 4)
    if not msg or len(fds) != 4:
        return 0  # the server went away
    ctl = fds[0]
    for fd in fds:
        os.set_inheritable(fd, False)
    send(ctl, {"ev": "pid", "pid": os.getpid()})
    Step.name = step
    report(ctl, error)
    return EXIT_SETUP_FAILED


class _Orphans:
    """H as the subreaper of a RUN without a pid namespace."""

    reap = False

    @staticmethod
    def children() -> list[int]:
        found: list[int] = []
        for task in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{task}/children") as f:
                    found += [int(p) for p in f.read().split()]
            except OSError:
                continue
        return found

    @classmethod
    def kill_all(cls) -> None:
        """SIGKILL every process left below H, until none is."""
        for _ in range(1000):
            left = cls.children()
            if not left:
                return
            for child in left:
                try:
                    os.kill(child, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            for _child in left:
                try:
                    os.waitpid(-1, 0)
                except ChildProcessError:
                    return


def _supervise(ctl: int, pid: int) -> int:
    """Wait for C; a ``kill`` request or the caller vanishing (EOF) kills the whole tree."""
    pidfd = os.pidfd_open(pid)
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    poller.register(ctl, select.POLLIN)
    while True:
        for fd, _ in poller.poll():
            if fd == pidfd:
                _, status = os.waitpid(pid, 0)
                if _Orphans.reap:
                    _Orphans.kill_all()
                send(ctl, {"ev": "exit", "status": os.waitstatus_to_exitcode(status)})
                return 0
            op = messages.decode_op(os.read(ctl, 4096))
            if op["op"] == "kill":
                os.kill(pid, signal.SIGKILL)
                poller.unregister(ctl)
            elif op["op"] == "signal":
                os.kill(pid, op["signal"])  # C forwards it to the command


# ---------------------------------------------------------------- C: pid 1, builds the root


def _init_main(c_sock: socket.socket, life_r: int) -> int:
    ns.prctl(ns.PR_SET_PDEATHSIG, signal.SIGKILL)
    os.set_blocking(life_r, False)
    try:
        if os.read(life_r, 1) == b"":
            return EXIT_SETUP_FAILED  # H died before PDEATHSIG was armed
    except BlockingIOError:
        pass
    os.close(life_r)
    msg, fds, _, _ = socket.recv_fds(c_sock, 4096, 4)  # wait for a RUN
    if not msg or len(fds) != 4:
        return EXIT_SETUP_FAILED
    ctl, specfd, out, stdin = fds
    socket.send_fds(c_sock, [messages.CTL], [ctl])  # H supervises through the same socket
    c_sock.close()
    os.set_inheritable(ctl, False)
    try:
        spec = _read_spec(specfd)
        os.close(specfd)
        tty = spec.get("tty", False)  # the terminal takes all three (docker run -t)
        os.dup2(stdin, 0)
        os.dup2(stdin if tty else out, 1)
        os.dup2(stdin if tty else out, 2)
        for fd in (stdin, out):
            if fd > 2:
                os.close(fd)
        _Filter.prepare(spec)  # before the root changes: no module loads after
        _enter_root(spec)
        if spec["init"]:
            return _init_loop(ctl, spec)
        return _exec_main(ctl, spec)  # like runc: the command itself is pid 1
    except BaseException as exc:  # noqa: BLE001
        report(ctl, exc)
        return EXIT_SETUP_FAILED


def _enter_root(spec: RunWire) -> None:
    """Hostname, network, the root filesystem; then make it ``/``."""
    Step.name = "mount"
    if spec.get("nsflags", DEFAULT_NS) & ns.CLONE_NEWUTS:
        ns.sethostname(spec["hostname"])
    _enter_network(spec)
    mount_rootfs(spec)
    os.chdir(spec["mountpoint"])
    if spec.get("pivot", True):
        Step.name = "pivot_root"
        ns.pivot_root(".", ".")
        ns.umount(".", ns.MNT_DETACH)
    else:  # the reduced rung where pivot_root is denied (buildah's chroot isolation)
        Step.name = "chroot"
        os.chroot(".")
    os.chdir("/")


def _enter_network(spec: RunWire) -> None:
    """``none``: a network namespace of our own with only ``lo``; ``sandbox``: the build's
    private network (the fork server's namespace, behind the user-mode stack; the one-shot
    H made its own); ``host``: stay where we are."""
    netfd = spec.get("netfd", -1)
    if spec["network"] == "none":
        Step.name = "network"
        ns.unshare(ns.CLONE_NEWNET)  # owned by the sandbox's user namespace, if any
        ns.loopback_up()
    elif spec["network"] == "sandbox" and netfd >= 0:
        Step.name = "network"
        ns.setns(netfd, ns.CLONE_NEWNET)
    if netfd >= 0:
        os.close(netfd)  # the command must not hold the namespace


def _init_loop(ctl: int, spec: RunWire) -> int:
    """``init``: fork the command, forward signals to it, reap orphans until it exits."""
    Step.name = "fork"
    pid = os.fork()
    if pid == 0:
        code = EXIT_SETUP_FAILED
        try:
            code = _exec_main(ctl, spec)
        except BaseException as exc:  # noqa: BLE001
            report(ctl, exc)
        os._exit(code)

    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for signum in _FORWARDED:
        signal.signal(signum, forward)
    while True:
        try:
            child, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return EXIT_SETUP_FAILED
        if child == pid:
            code = os.waitstatus_to_exitcode(status)
            if code < 0:
                send(ctl, {"ev": "signal", "signal": -code})
                return 128 - code
            return code


# ---------------------------------------------------------------- D: the command


def _exec_main(ctl: int, spec: RunWire) -> int:
    for signum in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)  # Python ignores SIGPIPE; commands must not
    Step.name = "user"
    try:
        user = resolve_user(spec["user"])
    except UserLookupError as exc:
        report(ctl, exc)
        return EXIT_SETUP_FAILED
    if spec["userns"] == "self" and (user.uid or user.gid or user.groups):
        raise PermissionError(
            f"USER {spec['user']} needs uid {user.uid}/gid {user.gid}, but without a "
            "subordinate id range only container root (0) is mapped")
    env = dict(spec["env"])
    env.setdefault("HOME", user.home)
    cwd = spec["cwd"] or "/"
    Step.name = "workdir"
    if not os.path.isdir(cwd):
        os.makedirs(cwd, 0o755, exist_ok=True)  # like Docker, created as root
    confine(spec, _Filter.programs)
    Step.name = "credentials"
    if spec["userns"] != "self":
        os.setgroups(list(user.groups))
    os.setresgid(user.gid, user.gid, user.gid)
    os.setresuid(user.uid, user.uid, user.uid)
    os.chdir(cwd)
    try:
        os.setsid()
    except OSError:
        pass
    if spec.get("tty"):
        Step.name = "tty"
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    Step.name = "exec"
    return _exec(spec["argv"], env)


class _Filter:
    """The seccomp programs of this RUN, assembled before ``pivot_root`` (``_seccomp``):
    the single-id map's chown emulation, then the profile the caller compiled."""

    programs: list[bytes] = []

    @classmethod
    def prepare(cls, spec: RunWire) -> None:
        programs = []
        if spec.get("fake_chown"):
            own = _seccomp.build(fake_chown=True)
            if own is not None:
                programs.append(own)
        if spec.get("seccomp"):
            programs.append(spec["seccomp"])
        cls.programs = programs


def _exec(argv: list[str], env: dict[str, str]) -> int:
    """Become the command; on failure, the shell's exit codes (127 not found, 126 else)."""
    try:
        os.execvpe(argv[0], argv, env)
    except OSError as exc:
        reason = ("executable file not found in $PATH"
                  if isinstance(exc, FileNotFoundError) and "/" not in argv[0]
                  else exc.strerror)
        os.write(2, f"exec: {argv[0]!r}: {reason}\n".encode())
        return 127 if isinstance(exc, FileNotFoundError) else 126
    return EXIT_SETUP_FAILED  # not reached


# ---------------------------------------------------------------- the fork server


class _ForkServer:
    """Keeps ``SPARES`` pre-warmed spare helpers queued for the caller, which gives each the
    next RUN directly; a new spare is prepared while that RUN runs."""

    def __init__(self, sock: socket.socket, args: ServeArgs) -> None:
        self.sock = sock
        self.flags = args.get("nsflags", DEFAULT_NS)

    def serve(self) -> int:
        ready = 0
        while True:
            try:
                while os.waitpid(-1, os.WNOHANG)[0] > 0:  # reap finished helpers
                    pass
            except ChildProcessError:
                pass
            # Two spares in the caller's queue: preparing one (forks, unshare) can take
            # longer than a short RUN on a busy machine, and the next RUN should not wait.
            while ready < SPARES:
                if not self._offer(*self._new_spare()):
                    return 0
                ready += 1
            try:
                if not self.sock.recv(16):  # TAKE: replace that spare while the RUN runs
                    return 0
            except OSError:
                return 0
            ready -= 1

    def _offer(self, kind: bytes, fd: int) -> bool:
        """Queue a spare for the caller's next RUN; False when the caller is gone."""
        try:
            socket.send_fds(self.sock, [kind], [fd])
        except OSError:
            return False
        finally:
            os.close(fd)
        return True

    def _new_spare(self) -> tuple[bytes, int]:
        """Fork a spare and wait until it is ready."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            code = EXIT_SETUP_FAILED
            try:
                self.sock.close()
                ours.close()
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                code = spare_main(theirs, self.flags)
            finally:
                os._exit(code)
        theirs.close()
        data, fds, _, _ = socket.recv_fds(ours, 4096, 1)
        event = messages.decode_spare_event(data)
        if event["ev"] == "ready" and len(fds) == 1:
            ours.close()
            return messages.SPARE, fds[0]  # the socket to the spare's C
        for fd in fds:
            os.close(fd)
        # Failed (or died): the RUN goes to H itself, which reports the error.
        return messages.FAILED, ours.detach()


def _private_network() -> int:
    """A network namespace with ``lo`` up, owned by our user namespace; an fd holding it.

    Made in a child, so the server (and every spare) stays in the caller's network: a RUN
    joins this one only when it asks for the private network."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:
        code = EXIT_SETUP_FAILED
        try:
            ours.close()
            ns.unshare(ns.CLONE_NEWNET)
            ns.loopback_up()
            fd = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            socket.send_fds(theirs, [b"net"], [fd])
            code = 0
        except OSError as exc:
            theirs.send(f"{exc.errno or 0} {exc}".encode())
        finally:
            os._exit(code)
    theirs.close()
    try:
        msg, fds, _, _ = socket.recv_fds(ours, 4096, 1)
    finally:
        ours.close()
        os.waitpid(pid, 0)
    if msg != b"net" or len(fds) != 1:
        err, _, text = msg.decode(errors="replace").partition(" ")
        raise OSError(int(err) if err.isdigit() else 0, text or "the network helper died")
    return fds[0]


def _server_setup(sock: socket.socket, args: ServeArgs) -> None:
    """Once per fork server: its cgroups, the build's user namespace (every RUN of the
    build runs in it, as rootless podman's and BuildKit's containers share theirs), and the
    private network namespace. The caller hears ``hello`` with the namespaces' fds (it
    starts the user-mode stack on them when a RUN first needs it), or why setting up
    failed."""
    fds: list[int] = []
    try:
        _join_cgroups(args.get("cgroups", []))
        if args["userns"]:
            Step.name = "userns"
            ns.unshare(ns.CLONE_NEWUSER)
            if args["userns"] == "self":
                map_self(args["uid"], args["gid"])
            else:
                Step.name = "idmap"
                sock.send(messages.encode({"ev": "map", "pid": os.getpid()}))
                answer = messages.decode_answer(sock.recv(4096))
                if answer["op"] != "go":
                    reason = answer.get("error") if answer["op"] == "abort" else None
                    raise PermissionError(reason or "the id map was not written")
            fds.append(os.open("/proc/self/ns/user", os.O_RDONLY | os.O_CLOEXEC))
        netfd, netproblem = -1, ""
        if args.get("net"):
            Step.name = "network"
            try:
                netfd = _private_network()
                fds.append(netfd)
            except OSError as exc:  # said when a RUN needs it; others run as usual
                netproblem = str(exc)
    except BaseException as exc:  # noqa: BLE001 - the caller raises it
        sock.send(messages.encode({"ev": "error", "step": Step.name,
                                   "errno": getattr(exc, "errno", None), "message": str(exc),
                                   "type": type(exc).__name__}))
        raise SystemExit(EXIT_SETUP_FAILED) from None
    socket.send_fds(sock, [messages.encode({"ev": "hello", "netfd": netfd,
                                            "netproblem": netproblem,
                                            "userns": bool(args["userns"])})], fds)
    for fd in fds:
        if fd != netfd:  # spares inherit the network namespace's fd, under this number
            os.close(fd)


def serve(args: ServeArgs) -> int:
    """Fork server main: runs until the caller closes its end of the socket."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # No cyclic garbage worth collecting here or in the short-lived children, and a collection
    # in a forked child would touch (and so copy) every page of the server's heap.
    gc.disable()
    gc.freeze()
    sock = socket.socket(fileno=args["sock"])
    _server_setup(sock, args)
    return _ForkServer(sock, args).serve()


# ---------------------------------------------------------------- probe, userns exec


def probe(args: ProbeArgs) -> ProbeResult:
    """Try each kernel feature the sandbox needs; run in a throwaway process (it unshares)."""
    scratch, userns, uid, gid = args["scratch"], args["userns"], args["uid"], args["gid"]
    step = "userns" if userns else "namespaces"
    try:
        flags = ns.CLONE_NEWNS | ns.CLONE_NEWUTS | ns.CLONE_NEWIPC
        ns.unshare(flags | (ns.CLONE_NEWUSER if userns else 0))
        if userns:
            map_self(uid, gid)
        step = "mount"
        ns.mount(None, "/", None, ns.MS_REC | ns.MS_PRIVATE)
        for name in ("lower", "upper", "work", "merged"):
            os.mkdir(f"{scratch}/{name}")
        os.close(os.open(f"{scratch}/lower/f", os.O_CREAT | os.O_WRONLY, 0o644))
        step = "overlay"
        opts = f"lowerdir={scratch}/lower,upperdir={scratch}/upper,workdir={scratch}/work"
        ns.mount("overlay", f"{scratch}/merged", "overlay", 0,
                 opts + (",userxattr" if userns else ""))
        step = "whiteout"
        os.unlink(f"{scratch}/merged/f")
        ns.umount(f"{scratch}/merged")
    except OSError as exc:
        return {"ok": False, "step": step, "errno": exc.errno, "message": str(exc)}
    return {"ok": True}


def userns_exec(args: UsernsArgs) -> int:
    """Exec a host command as root of a user namespace with the sandbox's id map.

    Lets an unprivileged caller create, chown or delete files owned by subordinate ids (extract
    a base layer with its real owners, remove a rootless upper dir).
    """
    ctl, argv = args["ctl"], args["argv"]
    os.set_inheritable(ctl, False)
    try:
        Step.name = "userns"
        ns.unshare(ns.CLONE_NEWUSER | ns.CLONE_NEWNS)
        if args["userns"] == "self":
            map_self(args["uid"], args["gid"])
        else:
            ask_for_map(ctl)
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
        Step.name = "exec"
        os.execvp(argv[0], argv)
    except BaseException as exc:  # noqa: BLE001
        report(ctl, exc)
    return EXIT_SETUP_FAILED


def ptrace_exec(argv: list[str], status_fd: int = -1, confine_fd: int = -1) -> int:
    """The ptrace rung: proot with ``statx`` refused and chown to ids that may not exist here
    faked (see ``_seccomp``), in its own session, under as much of the namespace rungs'
    confinement as needs no namespace: a fresh session keyring, resource limits, no
    inheritable or ambient capabilities, the seccomp profile, and (no network namespace to
    give it) no sockets but AF_UNIX unless the RUN may use the host's network."""
    from ._confine import join_keyring, set_rlimits

    try:
        os.setsid()
    except OSError:
        pass
    confined: PtraceConfine = {"seccomp": None, "sockets": True, "rlimits": {}}
    if confine_fd >= 0:
        confined = messages.decode_ptrace(_read_all(confine_fd))
        os.close(confine_fd)
    join_keyring()
    set_rlimits(confined["rlimits"])
    _limit_caps(confined.get("caps"))
    if not confined["sockets"]:  # the host's abstract sockets are in the network we share
        ns.landlock_scope()
    own = _seccomp.build(statx_enosys=True, fake_chown=True, sockets=confined["sockets"])
    for program in (own, confined["seccomp"]):
        if program is not None:  # proot runs with no_new_privs anyway (it is not setuid)
            _seccomp.install(program, no_new_privs=True)
    if status_fd >= 0 and status_fd != messages.STATUS_FD:
        os.dup2(status_fd, messages.STATUS_FD, inheritable=True)
        os.close(status_fd)
    os.execvp(argv[0], argv)
    return EXIT_SETUP_FAILED


def _limit_caps(keep: int | None) -> None:
    """Of what this process holds, keep ``keep`` (None: all), and pass nothing on through
    inheritable or ambient. The bounding set is trimmed where we may (CAP_SETPCAP)."""
    with open("/proc/self/status") as f:
        status = dict(line.split(":\t", 1) for line in f if ":\t" in line)
    eff, prm = int(status["CapEff"], 16), int(status["CapPrm"], 16)
    if keep is not None:
        if prm >> 8 & 1:  # CAP_SETPCAP
            ns.drop_bounding_caps(frozenset(c for c in range(64) if keep >> c & 1))
        eff, prm = eff & keep, prm & keep
    ns.set_capabilities(eff, prm, 0)

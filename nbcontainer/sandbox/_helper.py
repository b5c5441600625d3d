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
from . import messages
from ._control import Step, ask_for_map, map_self, report, send, write_file
from ._rootfs import mount_rootfs
from ._users import UserLookupError, resolve_user

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from .messages import (
        ProbeArgs,
        ProbeResult,
        RunArgs,
        RunWire,
        ServeArgs,
        UsernsArgs,
        UsernsMode,
    )

# Docker's default capability set for RUN/containers (moby/oci/caps/defaults.go).
DOCKER_CAPS = frozenset({0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31})
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
             flags: int = DEFAULT_NS) -> tuple[int, socket.socket]:
    """The half of H that does not depend on the RUN: namespaces, id maps, pid 1 forked.

    The fork server runs it ahead of time in a spare helper, so a RUN pays for none of it
    (two forks, unshare and, rootless, the newuidmap round trip). Returns C's pid and the
    socket on which C waits for the RUN's fds.
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
        return ptrace_exec(args["argv"], args["status_fd"])
    return userns_exec(args)


def child_main(args: RunArgs) -> int:
    """One-shot H (a fresh interpreter per RUN): 0 = stdin, 1 and 2 = the output pipe."""
    ctl, specfd = args["ctl"], args["specfd"]
    os.set_inheritable(ctl, False)
    os.set_inheritable(specfd, False)
    try:
        send(ctl, {"ev": "pid", "pid": os.getpid()})
        spec = _read_spec(specfd)
        pid, h_sock = _prepare(spec["userns"], spec["host_uid"], spec["host_gid"],
                               lambda: ask_for_map(ctl), spec.get("nsflags", DEFAULT_NS))
        return _hand_over(ctl, pid, h_sock, [ctl, specfd, 1, 0])
    except BaseException as exc:  # noqa: BLE001 - every failure must reach the caller
        report(ctl, exc)
        return EXIT_SETUP_FAILED


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


def spare_main(zsock: socket.socket, userns: UsernsMode | None, uid: int, gid: int,
               flags: int = DEFAULT_NS) -> int:
    """Pre-warmed H forked by the fork server: prepare now, take a RUN later.

    When ready, H passes the socket to its C through the server to the caller, which sends
    the RUN's fds straight to C (no relay through the server and H on the critical path);
    C forwards the control socket back to H, which then reports and supervises. An unused
    spare dies with the server (PDEATHSIG), C with H.
    """

    def request_map() -> None:
        zsock.send(messages.encode({"ev": "map", "pid": os.getpid()}))
        answer = messages.decode_answer(zsock.recv(4096))
        if answer["op"] != "go":
            reason = answer.get("error") if answer["op"] == "abort" else None
            raise PermissionError(reason or "the id map was not written")

    server = os.getppid()
    ns.prctl(ns.PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != server:
        return 0  # the server died before PDEATHSIG was armed
    try:
        pid, h_sock = _prepare(userns, uid, gid, request_map, flags)
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
        if spec.get("fake_chown"):  # built before the root changes: no module loads after
            _Filter.prepare(fake_chown=True)
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
    if spec["network"] == "none":
        Step.name = "network"
        ns.unshare(ns.CLONE_NEWNET)  # owned by the sandbox's user namespace, if any
        ns.loopback_up()
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
    Step.name = "credentials"
    ns.drop_bounding_caps(DOCKER_CAPS)
    if spec["userns"] != "self":
        os.setgroups(list(user.groups))
    os.setresgid(user.gid, user.gid, user.gid)
    os.setresuid(user.uid, user.uid, user.uid)
    if spec.get("fake_chown"):
        Step.name = "seccomp"
        _fake_chown()
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
    """The seccomp program of this RUN, assembled before ``pivot_root`` (``_seccomp``)."""

    program: bytes | None = None
    install: Callable[..., None] | None = None

    @classmethod
    def prepare(cls, *, fake_chown: bool) -> None:
        from ._seccomp import build, install

        cls.program, cls.install = build(fake_chown=fake_chown), install


def _fake_chown() -> None:
    """Single-id map: chown to an id the map lacks succeeds without effect (``_seccomp``)."""
    program, install = _Filter.program, _Filter.install
    if program is None or install is None:
        return
    try:
        install(program, no_new_privs=False)
    except PermissionError:  # no CAP_SYS_ADMIN left here: no_new_privs makes it allowed
        install(program, no_new_privs=True)


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


def _map_ids(pid: int, uid_map: str, gid_map: str) -> str | None:
    """Write a spare's id maps (as root directly, else with newuidmap/newgidmap)."""
    maps = {"uid": uid_map.split(), "gid": gid_map.split()}
    if os.geteuid() == 0:
        for which, values in maps.items():
            lines = "".join(" ".join(values[i:i + 3]) + "\n" for i in range(0, len(values), 3))
            write_file(f"/proc/{pid}/{which}_map", lines)
        return None
    import subprocess

    procs = {f"new{which}map": subprocess.Popen(
        [f"new{which}map", str(pid), *values], stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for which, values in maps.items()}
    errors = []
    for tool, proc in procs.items():
        output, _ = proc.communicate()
        if proc.returncode:
            errors.append(f"{tool}: {output.decode(errors='replace').strip()}")
    return "; ".join(errors) or None


class _ForkServer:
    """Keeps ``SPARES`` pre-warmed spare helpers queued for the caller, which gives each the
    next RUN directly; a new spare is prepared while that RUN runs."""

    def __init__(self, sock: socket.socket, args: ServeArgs) -> None:
        self.sock = sock
        self.userns, self.uid, self.gid = args["userns"], args["uid"], args["gid"]
        self.uid_map, self.gid_map = args["uid_map"], args["gid_map"]
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
        """Fork a spare; serve its id-map request; wait until it is ready."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            code = EXIT_SETUP_FAILED
            try:
                self.sock.close()
                ours.close()
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                code = spare_main(theirs, self.userns, self.uid, self.gid, self.flags)
            finally:
                os._exit(code)
        theirs.close()
        while True:
            data, fds, _, _ = socket.recv_fds(ours, 4096, 1)
            event = messages.decode_spare_event(data)
            if event["ev"] == "ready" and len(fds) == 1:
                ours.close()
                return messages.SPARE, fds[0]  # the socket to the spare's C
            for fd in fds:
                os.close(fd)
            if event["ev"] != "map":
                # Failed (or died): the RUN goes to H itself, which reports the error.
                return messages.FAILED, ours.detach()
            try:
                error = _map_ids(event.get("pid", pid), self.uid_map, self.gid_map)
            except OSError as exc:
                error = str(exc)
            if error:
                ours.send(messages.encode({"op": "abort", "error": error}))
            else:
                ours.send(messages.encode({"op": "go"}))


def serve(args: ServeArgs) -> int:
    """Fork server main: runs until the caller closes its end of the socket."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # No cyclic garbage worth collecting here or in the short-lived children, and a collection
    # in a forked child would touch (and so copy) every page of the server's heap.
    gc.disable()
    gc.freeze()
    return _ForkServer(socket.socket(fileno=args["sock"]), args).serve()


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


def ptrace_exec(argv: list[str], status_fd: int = -1) -> int:
    """The ptrace rung: proot with ``statx`` refused and chown to ids that may not exist here
    faked (see ``_seccomp``), in its own session."""
    from ._seccomp import build, install

    try:
        os.setsid()
    except OSError:
        pass
    program = build(statx_enosys=True, fake_chown=True)
    if program is not None:
        install(program, no_new_privs=True)
    if status_fd >= 0 and status_fd != messages.STATUS_FD:
        os.dup2(status_fd, messages.STATUS_FD, inheritable=True)
        os.close(status_fd)
    os.execvp(argv[0], argv)
    return EXIT_SETUP_FAILED

"""Every message that crosses one of the sandbox's process boundaries, in one place.

The processes (see ``_helper.py`` for the tree)::

    caller ──BootArgs (argv)─► helper (_boot.py: serve | run | probe | userns)
    caller ──RunWire (memfd)─────────────────────► C (pid 1 of the RUN)
    caller ◄─Event── ctl socket ──Op─► H, C       (pid, started, map, net, exit, signal, error)
    caller ◄─ServerEvent── fork server ──Op─►     (map, hello + namespace fds, error)
    fork server ◄─SpareEvent── spare H            (ready, failed)
    caller ◄─SPARE|FAILED + fd── fork server ◄─TAKE
    caller ──RUN + fds─► spare's C ──CTL + fd─► its H
    caller ◄─ProbeResult (stdout)── helper probe
    caller ──FileOpsRequest (stdin)─► ``python -m nbcontainer.sandbox.fileops`` ──LayerRecord (stdout)─►

Both ends run the same interpreter, so records are ``marshal``-encoded dicts: built in,
several times faster than json, and bytes pass through as they are. This module is imported
by the helper, which starts per build and forks per RUN: stdlib only, and the types below
exist for the type checker only (``typing`` alone would cost the helper milliseconds to
import). Build records as dict literals; the checker holds them to these definitions.
"""

from __future__ import annotations

import marshal

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any, Literal, NotRequired, TypedDict

    UsernsMode = Literal["self", "parent"]  # self: single-id map we write; parent: newuidmap

    # ------------------------------------------------------------ helper command lines

    class ServeArgs(TypedDict):
        mode: Literal["serve"]  # the fork server, on socket ``sock``
        sock: int
        userns: UsernsMode | None
        uid: int  # the caller's ids
        gid: int
        nsflags: NotRequired[int]  # namespaces each spare unshares
        net: NotRequired[bool]  # make the private network namespace RUNs may join
        cgroups: NotRequired[list[str]]  # cgroup.procs files the server moves itself into

    class RunArgs(TypedDict):
        mode: Literal["run"]  # one RUN in a fresh helper (no fork server)
        ctl: int
        specfd: int  # holds the RunWire

    class ProbeArgs(TypedDict):
        mode: Literal["probe"]  # try the kernel features in ``scratch``; ProbeResult on stdout
        scratch: str
        userns: bool
        uid: int
        gid: int

    class UsernsArgs(TypedDict):
        mode: Literal["userns"]  # exec ``argv`` as root of a user namespace with the id map
        ctl: int
        userns: UsernsMode
        uid: int
        gid: int
        argv: list[str]

    class HostProbeArgs(TypedDict):
        mode: Literal["hostprobe"]  # try every rung's pieces; marshal'ed steps on stdout
        scratch: str  # an empty dir on the store's filesystem
        userns: bool
        uid: int
        gid: int
        subuid: list[int]  # [start, count], or empty: no newuidmap attempt
        subgid: list[int]

    class PtraceArgs(TypedDict):
        mode: Literal["ptrace"]  # confine (filters, keyring, caps, limits), exec ``argv``
        status_fd: int  # becomes fd 9 of proot (-1: none): the command's exit status
        confine_fd: int  # a memfd with the PtraceConfine (-1: only the rung's own filter)
        argv: list[str]

    class PtraceConfine(TypedDict):
        """What the ptrace rung applies besides its own filter (no namespace to use)."""

        seccomp: bytes | None  # the compiled profile (None: unconfined)
        sockets: bool  # False: every socket but AF_UNIX refused (no network)
        rlimits: dict[str, int]
        caps: NotRequired[int | None]  # capabilities kept of those held (None: all)

    BootArgs = ServeArgs | RunArgs | ProbeArgs | UsernsArgs | HostProbeArgs | PtraceArgs

    # ------------------------------------------------------------ the RUN (caller → C)

    class BindWire(TypedDict):
        kind: Literal["bind"]
        source: str  # absolute host path
        target: str
        readonly: bool

    class TmpfsWire(TypedDict):
        kind: Literal["tmpfs"]
        target: str
        size: int | None
        mode: int

    class SecretWire(TypedDict):
        kind: Literal["secret"]
        target: str
        data: bytes
        mode: int
        uid: int
        gid: int

    MountWire = BindWire | TmpfsWire | SecretWire

    class LowerFileWire(TypedDict):
        target: str  # written into the stub lower layer (spec.LowerFile)
        data: bytes
        mode: int

    class RunWire(TypedDict):
        """What C needs to build the root and exec the command (absolute host paths)."""

        lowers: list[str]  # top first
        upper: str
        work: str
        mountpoint: str
        argv: list[str]
        env: dict[str, str]
        user: str
        cwd: str
        network: Literal["host", "none", "sandbox"]  # sandbox: the private network
        hostname: str
        mounts: list[MountWire]
        hosts: bytes  # /etc/hosts, resolv.conf: generated, bind-mounted read-only
        resolv: bytes
        userns: UsernsMode | None
        host_uid: int
        host_gid: int
        tty_group: bool  # gid 5 is mapped
        init: bool
        tty: NotRequired[bool]  # stdin is a terminal: also stdout/stderr, the controlling tty
        volatile: NotRequired[bool]  # mount the overlay "volatile" (default True)
        caller: NotRequired[int]  # the caller's pid: names the scaffold mount (nbsandbox-PID)
        # The reduced rung's replacements (absent: the full rung's way).
        nsflags: NotRequired[int]  # namespaces H unshares besides user (default: mnt|pid|uts|ipc)
        rootfs: NotRequired[Literal["overlay", "bind"]]  # bind: ``lowers[0]`` is the whole tree
        proc: NotRequired[Literal["fresh", "bind"]]  # bind: rbind the existing /proc
        pivot: NotRequired[bool]  # False: chroot instead of pivot_root
        fake_chown: NotRequired[bool]  # single-id map: chown to unmapped ids succeeds, no effect
        lower_files: NotRequired[list[LowerFileWire]]  # files of the stub lower layer
        # Hardening (absent: the default shown).
        netfd: NotRequired[int]  # the fork server's private network namespace (sandbox)
        seccomp: NotRequired[bytes]  # the compiled profile (absent: unconfined)
        caps: NotRequired[int]  # capabilities kept (absent: Docker's set)
        keyring: NotRequired[bool]  # a fresh session keyring (True)
        masks: NotRequired[bool]  # Docker's masked and read-only paths (True)
        rlimits: NotRequired[dict[str, int]]  # nproc, data: where no cgroup holds the limits
        cgroup_view: NotRequired[str]  # a cgroup dir shown read-only at /sys/fs/cgroup
        cgroups: NotRequired[list[str]]  # cgroup.procs files the one-shot H moves itself into

    # ------------------------------------------------------------ control (H, C → caller)

    class PidEvent(TypedDict):
        ev: Literal["pid"]  # H's pid, as soon as it runs
        pid: int

    class StartedEvent(TypedDict):
        ev: Literal["started"]  # C's pid, once it has the RUN
        pid: int

    class MapEvent(TypedDict):
        ev: Literal["map"]  # unshared: write my id maps, then answer GoOp or AbortOp
        pid: NotRequired[int]  # set when the asker is not the caller's child (the server)

    class NetEvent(TypedDict):
        ev: Literal["net"]  # unshared the network: attach the user-mode stack, then GoOp
        pid: int

    class ExitEvent(TypedDict):
        ev: Literal["exit"]
        status: int  # os.waitstatus_to_exitcode of C: negative when killed by a signal

    class SignalEvent(TypedDict):
        ev: Literal["signal"]  # the command (under an init) was killed by this signal
        signal: int

    class ErrorEvent(TypedDict):
        ev: Literal["error"]  # setting up the sandbox failed at ``step``
        step: str
        errno: int | None
        message: str
        type: str

    Event = PidEvent | StartedEvent | MapEvent | NetEvent | ExitEvent | SignalEvent | ErrorEvent

    # ------------------------------------------------------------ fork server → caller

    class HelloEvent(TypedDict):
        ev: Literal["hello"]  # set up; fds: [its user namespace if any, the network's]
        netfd: int  # the network namespace's fd number in the server (-1: none)
        netproblem: NotRequired[str]  # why it could not be made
        userns: bool

    ServerEvent = MapEvent | HelloEvent | ErrorEvent

    # ------------------------------------------------------------ fork server ↔ spare H

    class ReadyEvent(TypedDict):
        ev: Literal["ready"]  # sent with the socket to the spare's C

    class FailedEvent(TypedDict):
        ev: Literal["failed"]  # it reports why to the RUN that takes it

    SpareEvent = ReadyEvent | FailedEvent

    # ------------------------------------------------------------ control (caller → H, C)

    class GoOp(TypedDict):
        op: Literal["go"]  # the id maps are written

    class AbortOp(TypedDict):
        op: Literal["abort"]
        error: NotRequired[str | None]

    class KillOp(TypedDict):
        op: Literal["kill"]  # SIGKILL the whole tree

    class SignalOp(TypedDict):
        op: Literal["signal"]  # forward a signal to the command
        signal: int

    Op = GoOp | AbortOp | KillOp | SignalOp

    # ------------------------------------------------------------ probe (helper → caller)

    class ProbeResult(TypedDict):
        ok: bool
        step: NotRequired[str]  # the setup step that failed
        errno: NotRequired[int | None]
        message: NotRequired[str]

    # ------------------------------------------------------------ file operations

    MkdirOp = tuple[Literal["mkdir"], str, int, int, int, int]  # rel, mode, uid, gid, mtime_ns
    FileOp = tuple[Literal["file"], str, str, int, int, int, int]  # rel, src, mode, uid, gid, mtime
    DataOp = tuple[Literal["data"], str, str, int, int, int, int]  # rel, text, mode, uid, gid, mtime
    SymlinkOp = tuple[Literal["symlink"], str, str, int, int, int]  # rel, target, uid, gid, mtime
    ExtractOp = tuple[Literal["extract"], str, str, int, int]  # rel, archive, uid, gid (-1: keep)
    LinkOp = tuple[Literal["link"], str, str]  # rel, rel of the name it shares an inode with
    CopyOp = MkdirOp | FileOp | DataOp | SymlinkOp | ExtractOp | LinkOp

    class ExtractRequest(TypedDict):
        op: Literal["extract"]  # apply layer blobs (bottom first) onto ``target``
        target: str
        blobs: list[str]

    class CopyRequest(TypedDict):
        op: Literal["copy"]  # create a COPY plan's entries below ``root``
        root: str
        ops: list[CopyOp]

    class LayerRequest(TypedDict):
        op: Literal["layer"]  # write the layer of diff/upper dir ``root`` to file ``out``
        root: str
        out: str
        epoch: int | None

    FileOpsRequest = ExtractRequest | CopyRequest | LayerRequest

    class LayerRecord(TypedDict):
        """The answer to a LayerRequest: the written layer's descriptor facts."""

        digest: str
        diff_id: str
        size: int
        uncompressed_size: int
        media_type: str


STATUS_FD = 9  # the ptrace rung's wrapper writes the command's exit status here

# Tokens sent with file descriptors (SCM_RIGHTS) on the fork server's sockets.
SPARE = b"spare"  # server → caller: a prepared spare (fd: the socket to its C)
FAILED = b"failed"  # server → caller: a spare that failed (fd: the socket to it, to report)
TAKE = b"take"  # caller → server: the spare was taken, prepare the next one
RUN = b"run"  # caller → C, and H → C: the RUN's fds [ctl, spec, output, stdin]
CTL = b"ctl"  # C → H: the control socket, so H reports on it


def encode(message: RunWire | Event | ServerEvent | SpareEvent | Op | ProbeResult
           | FileOpsRequest | LayerRecord | PtraceConfine) -> bytes:
    return marshal.dumps(message)  # type: ignore[arg-type]  # a TypedDict is a dict


def _load(data: bytes) -> Any:
    value = marshal.loads(data)
    if not isinstance(value, dict):
        raise ValueError("not a sandbox message")
    return value


def decode_run(data: bytes) -> RunWire:
    wire: RunWire = _load(data)
    return wire


def decode_event(data: bytes) -> Event:
    event: Event = _load(data)
    return event


def decode_server_event(data: bytes) -> ServerEvent:
    event: ServerEvent = _load(data) if data else {
        "ev": "error", "step": "start", "errno": None, "type": "EOFError",
        "message": "the sandbox fork server exited while starting"}
    return event


def decode_ptrace(data: bytes) -> PtraceConfine:
    confine: PtraceConfine = _load(data)
    return confine


def decode_spare_event(data: bytes) -> SpareEvent:
    event: SpareEvent = _load(data) if data else {"ev": "failed"}
    return event


def decode_op(data: bytes) -> Op:
    """An op from the caller; end of file means it went away, which means kill."""
    op: Op = _load(data) if data else {"op": "kill"}
    return op


def decode_answer(data: bytes) -> Op:
    """The answer to a MapEvent; end of file means abort."""
    op: Op = _load(data) if data else {"op": "abort"}
    return op


def decode_probe(data: bytes) -> ProbeResult:
    result: ProbeResult = _load(data)
    return result


def decode_fileops(data: bytes) -> FileOpsRequest:
    request: FileOpsRequest = _load(data)
    return request


def decode_layer(data: bytes) -> LayerRecord:
    record: LayerRecord = _load(data)
    return record


# ---------------------------------------------------------------- helper command lines
# ``_boot.py MODE ARGS...``: plain strings, so ``ps`` shows what each helper is for.


def serve_argv(a: ServeArgs) -> list[str]:
    argv = ["serve", str(a["sock"]), a["userns"] or "none", str(a["uid"]), str(a["gid"])]
    if "nsflags" in a:
        argv.append(f"nsflags={a['nsflags']}")
    if a.get("net"):
        argv.append("net=1")
    argv += [f"cgroup={path}" for path in a.get("cgroups", [])]
    return argv


def run_argv(a: RunArgs) -> list[str]:
    return ["run", str(a["ctl"]), str(a["specfd"])]


def probe_argv(a: ProbeArgs) -> list[str]:
    return ["probe", a["scratch"], "1" if a["userns"] else "0", str(a["uid"]), str(a["gid"])]


def hostprobe_argv(a: HostProbeArgs) -> list[str]:
    ids = [",".join(map(str, a["subuid"])) or "-", ",".join(map(str, a["subgid"])) or "-"]
    return ["hostprobe", a["scratch"], "1" if a["userns"] else "0", str(a["uid"]),
            str(a["gid"]), *ids]


def ptrace_argv(a: PtraceArgs) -> list[str]:
    return ["ptrace", str(a["status_fd"]), str(a["confine_fd"]), *a["argv"]]


def _ints(text: str) -> list[int]:
    return [] if text == "-" else [int(v) for v in text.split(",")]


def userns_argv(a: UsernsArgs) -> list[str]:
    return ["userns", str(a["ctl"]), a["userns"], str(a["uid"]), str(a["gid"]), *a["argv"]]


def _userns_mode(text: str) -> UsernsMode | None:
    if text == "self":
        return "self"
    if text == "parent":
        return "parent"
    if text == "none":
        return None
    raise ValueError(f"unknown user namespace mode {text!r}")


def parse_argv(argv: list[str]) -> BootArgs:
    """The inverse of the ``*_argv`` functions above."""
    mode, args = argv[0], argv[1:]
    if mode == "serve":
        sock, userns, uid, gid, *options = args
        serve: ServeArgs = {"mode": "serve", "sock": int(sock), "userns": _userns_mode(userns),
                            "uid": int(uid), "gid": int(gid)}
        for option in options:
            key, _, value = option.partition("=")
            if key == "nsflags":
                serve["nsflags"] = int(value)
            elif key == "net":
                serve["net"] = value == "1"
            elif key == "cgroup":
                serve.setdefault("cgroups", []).append(value)
        return serve
    if mode == "run":
        ctl, specfd = args
        return {"mode": "run", "ctl": int(ctl), "specfd": int(specfd)}
    if mode == "probe":
        scratch, flag, uid, gid = args
        return {"mode": "probe", "scratch": scratch, "userns": flag == "1", "uid": int(uid),
                "gid": int(gid)}
    if mode == "hostprobe":
        scratch, flag, uid, gid, subuid, subgid = args
        return {"mode": "hostprobe", "scratch": scratch, "userns": flag == "1",
                "uid": int(uid), "gid": int(gid), "subuid": _ints(subuid),
                "subgid": _ints(subgid)}
    if mode == "ptrace":
        return {"mode": "ptrace", "status_fd": int(args[0]), "confine_fd": int(args[1]),
                "argv": args[2:]}
    if mode == "userns":
        ctl, ns_mode, uid, gid, *command = args
        mapping = _userns_mode(ns_mode)
        if mapping is None:
            raise ValueError("userns needs a user namespace mode")
        return {"mode": "userns", "ctl": int(ctl), "userns": mapping, "uid": int(uid),
                "gid": int(gid), "argv": command}
    raise ValueError(f"unknown helper mode {mode!r}")

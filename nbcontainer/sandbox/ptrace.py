"""The ptrace rung: RUN through ``proot`` where no namespace can be made.

proot follows every system call of the command and rewrites paths so that the tree copy
(``vfs.TreeRun``) looks like ``/``; ``-0`` makes the command believe it is root (USER ``app``
becomes ``-i uid:gid``). There is no containment beyond that: the command shares the host's
processes, network and kernel interfaces (``info`` says so). Debian's proot 5.1.0 does not
translate ``statx``; the helper refuses it (ENOSYS) with a seccomp filter, so programs fall
back to ``newfstatat``, which proot translates. Ownership changes inside the RUN are faked
by proot and not recorded: files the RUN creates belong to root in the layer.

Without proot (the ``none`` rung) the same executor refuses RUN with the probe's cause.
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from nbcontainer.errors import BuildError, NbcontainerError
from nbcontainer.layers.idmap import IdMap
from nbcontainer.layers.rootfs import resolve_in_root

from . import messages
from ._users import UserLookupError, resolve_user
from .errors import SandboxError
from .executor import Executor
from .hardening import DOCKER_CAPS, Hardening, effective_network, seccomp_program
from .ladder import Finding
from .namespaced import BOOT, KILL_GRACE, _hosts_file, _resolv_conf
from .spec import DEFAULT_PATH, TAIL_BYTES, BindMount, RunResult, RunSpec, SecretMount
from .vfs import TreeRun

if TYPE_CHECKING:
    from .messages import PtraceConfine

MKNOD = 27
# Docker's masked paths, bound over by proot (no mount namespace here): files by /dev/null,
# directories by an empty one; /dev/kmsg too (by the directory), since the host's /dev is shown.
MASKED = ("/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
          "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
          "/sys/firmware", "/sys/devices/virtual/powercap", "/dev/kmsg")


class PtraceExecutor(Executor):
    """RUN under proot over tree copies; ``proot=None``: the ``none`` rung (RUN refused)."""

    rootless = False  # every file belongs to the caller; owners are recorded beside trees
    vfs = True
    records = True

    def __init__(self, proot: str | None, *, why_not: Sequence[Finding] = (),
                 python: str | None = None, hardening: Hardening | None = None) -> None:
        self.proot = proot
        self.hardening = hardening or Hardening()
        self.name = "ptrace" if proot else "none"
        self.why_not = why_not
        self.idmap = IdMap.single(os.getuid(), os.getgid())
        self.python = python or sys.executable

    def run_in_userns(self, argv: Sequence[str], *, stdin: int | None = None,
                      stdout: int | None = None) -> int:
        return subprocess.run(list(argv), stdin=stdin, stdout=stdout, check=False).returncode

    def _refuse(self, spec: RunSpec) -> SandboxError:
        """Every cause (no namespaces because …, no ptrace because …) and every remedy."""
        causes = "; ".join(f"{f.what}: {f.cause}" for f in self.why_not) or \
            "no namespaces and no proot"
        fixes = [x for f in self.why_not for x in (f.user_fix, f.admin_fix) if x]
        return SandboxError(f"RUN {spec.command_text()}: no sandbox can run it here: {causes}",
                            hint="; ".join(dict.fromkeys(fixes)) or None,
                            feature="namespaces", step="isolation")

    def run(self, spec: RunSpec) -> RunResult:
        if self.proot is None:
            raise self._refuse(spec)
        if len(spec.lowerdirs) != 1:
            raise SandboxError("the ptrace rung runs over one tree", step="rootfs")
        start = time.monotonic()
        targets = [(m.target, isinstance(m, BindMount) and Path(m.source).is_dir())
                   for m in spec.mounts]
        job = TreeRun(Path(spec.lowerdirs[0]), Path(spec.upperdir), records=True, own=False,
                      mount_targets=targets, consume=spec.private_lower,
                      lower_files=spec.lower_files)
        files = Path(tempfile.mkdtemp(prefix="proot-", dir=Path(spec.upperdir).parent))
        try:
            argv = self._argv(spec, job.tree, files)
            status, tail = self._supervise(spec, argv, files)
            tree = job.commit() if status == 0 else None
        finally:
            shutil.rmtree(files, ignore_errors=True)
        code, sig = (128 - status, -status) if status < 0 else (status, None)
        return RunResult(code, time.monotonic() - start, tail, self.idmap, sig, tree)

    def _argv(self, spec: RunSpec, tree: Path, files: Path) -> list[str]:
        assert self.proot is not None
        argv = [self.proot, "-r", str(tree), "-w", spec.cwd or "/"]
        argv += self._identity(spec.user, tree)
        for path in ("/dev", "/proc", "/sys"):
            argv += ["-b", path]
        if spec.security != "insecure":
            argv += _masks(files)
        generated = {"/etc/resolv.conf": _resolv_conf(),
                     "/etc/hosts": _hosts_file(spec.hostname, "host", spec.extra_hosts),
                     "/etc/hostname": spec.hostname.encode() + b"\n"}
        for index, mount in enumerate(spec.mounts):
            if isinstance(mount, BindMount):
                argv += ["-b", f"{os.path.abspath(mount.source)}:{mount.target}"]
            elif isinstance(mount, SecretMount):
                generated[mount.target] = mount.data
            else:  # tmpfs: an empty directory of our own
                empty = files / f"tmpfs{index}"
                empty.mkdir(mode=0o1777)
                argv += ["-b", f"{empty}:{mount.target}"]
        for index, (target, data) in enumerate(generated.items()):
            made = files / f"file{index}"
            made.write_bytes(data)
            argv += ["-b", f"{made}:{target}"]
        env = {str(k): str(v) for k, v in spec.env.items()}
        env.setdefault("PATH", DEFAULT_PATH)
        env.setdefault("HOME", "/root")
        command = [*spec.argv]
        if _exists(tree, "/usr/bin/env"):
            command = ["/usr/bin/env", "-i", *(f"{k}={v}" for k, v in env.items()), *command]
        if _exists(tree, "/bin/sh"):
            # proot exits with the status of the last process to end, which may be one the
            # command left in the background: the command's own goes out on fd 9.
            command = ["/bin/sh", "-c", f'"$@"; echo $? >&{messages.STATUS_FD}', "nbrun", *command]
        return argv + command

    @staticmethod
    def _identity(user: str, tree: Path) -> list[str]:
        if not user:
            return ["-0"]
        try:
            found = resolve_user(user, _in_tree(tree, "/etc/passwd"),
                                 _in_tree(tree, "/etc/group"))
        except UserLookupError as exc:
            raise SandboxError(f"USER: {exc}", step="user") from None
        return ["-0"] if not (found.uid or found.gid) else ["-i", f"{found.uid}:{found.gid}"]

    def _supervise(self, spec: RunSpec, argv: list[str], files: Path) -> tuple[int, bytes]:
        status_r, status_w = os.pipe()
        confine_fd = self._confinement(spec)
        helper = [self.python, "-I", "-S", str(BOOT),
                  *messages.ptrace_argv({"mode": "ptrace", "status_fd": status_w,
                                         "confine_fd": confine_fd, "argv": argv})]
        env = {str(k): str(v) for k, v in spec.env.items()}
        env.setdefault("PATH", DEFAULT_PATH)
        env["PROOT_TMP_DIR"] = str(files)
        env["PATH"] = os.environ.get("PATH", DEFAULT_PATH) + ":" + env["PATH"]
        stdin = subprocess.DEVNULL if spec.stdin is None else (
            spec.stdin if isinstance(spec.stdin, int) else subprocess.PIPE)
        try:
            proc = subprocess.Popen(helper, stdin=stdin, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, env=env, close_fds=True,
                                    pass_fds=[status_w, confine_fd])
        finally:
            os.close(status_w)
            os.close(confine_fd)
        tail = bytearray()
        if spec.control is not None:
            spec.control.attach(lambda signum: _signal_command(proc.pid, signum))
        try:
            if isinstance(spec.stdin, bytes) and proc.stdin is not None:
                try:
                    proc.stdin.write(spec.stdin)
                finally:
                    proc.stdin.close()
            self._pump(proc, spec, tail)
            status = proc.wait()
            reported = os.read(status_r, 64).strip()
        except BaseException:
            _kill(proc)
            raise
        finally:
            os.close(status_r)
            if spec.control is not None:
                spec.control.attach(None)
        if reported.isdigit() and status >= 0:
            status = int(reported)
        return status, bytes(tail)

    def _confinement(self, spec: RunSpec) -> int:
        """What the helper applies before proot (a memfd): no namespace can give this rung
        a network of its own, so a RUN without the host's network gets no sockets but
        AF_UNIX; the seccomp profile; the pids limit as RLIMIT_NPROC."""
        h = self.hardening
        network = effective_network(h.network(spec.network), h, False)
        insecure = h.security(spec.security) == "insecure"
        rlimits = {"nproc": h.pids_limit} if h.pids_limit else {}
        if h.memory:
            rlimits["data"] = h.memory
        confine: PtraceConfine = {
            "seccomp": None if insecure else seccomp_program(h, DOCKER_CAPS),
            "sockets": network == "host", "rlimits": rlimits,
            # Docker's set when the caller holds more (root), without CAP_MKNOD: no nodev
            # mount here could keep a node it makes from being opened
            "caps": None if insecure else sum(1 << c for c in DOCKER_CAPS - {MKNOD})}
        fd = os.memfd_create("nbptrace-confine")
        os.write(fd, messages.encode(confine))
        os.lseek(fd, 0, os.SEEK_SET)
        return fd

    @staticmethod
    def _pump(proc: subprocess.Popen[bytes], spec: RunSpec, tail: bytearray) -> None:
        assert proc.stdout is not None
        deadline = None if spec.timeout is None else time.monotonic() + spec.timeout
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        fd = proc.stdout.fileno()
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not sel.select(left):
                _kill(proc)
                raise BuildError(f"RUN {spec.command_text()} timed out after "
                                 f"{spec.timeout:g} s", hint="the command was killed")
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            tail += chunk
            del tail[:-TAIL_BYTES]
            if spec.output is not None:
                spec.output(chunk)
        sel.close()


def _masks(files: Path) -> list[str]:
    empty = files / "masked"
    empty.mkdir(mode=0o555)
    argv = []
    for path in MASKED:
        if os.path.isdir(path) or path == "/dev/kmsg":  # (root could write to /dev/null)
            argv += ["-b", f"{empty}:{path}"]
        elif os.path.exists(path):
            argv += ["-b", f"/dev/null:{path}"]
    return argv


def _in_tree(tree: Path, path: str) -> str:
    """``path`` of the image as a host path (symlinks resolved inside the tree)."""
    try:
        rel = resolve_in_root(tree, path)
    except (OSError, ValueError, NbcontainerError):
        rel = None
    return str(tree / rel) if rel is not None else str(tree / "nonexistent" / path.lstrip("/"))


def _exists(tree: Path, path: str) -> bool:
    return os.path.exists(_in_tree(tree, path))


def _signal_command(proot: int, signum: int) -> None:
    """``docker kill -s`` on this rung: SIGKILL takes proot's whole session; any other signal
    goes to the command and its children only: proot (the session leader) and the shell that
    reports the exit status (its direct child) must outlive it."""
    if signum == signal.SIGKILL:
        os.killpg(proot, signal.SIGKILL)
        return
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == proot:
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[2]) == proot and int(fields[1]) != proot:  # pgid, ppid
                os.kill(int(entry), signum)
        except (OSError, ValueError, IndexError):
            continue


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """proot leads its own session (the helper calls setsid): kill the session's group;
    PTRACE_O_EXITKILL takes the traced processes with it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=KILL_GRACE)
    except subprocess.TimeoutExpired:
        pass

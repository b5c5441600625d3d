"""Everything that runs inside the sandbox helper process.

The caller (often a multi-threaded Jupyter kernel) never forks or unshares itself: it starts
this code in a fresh interpreter (``python -I -S _boot.py``), either once as a single-threaded
fork server that forks one child per RUN, or one-shot per RUN. Process tree of one RUN::

    H  helper child: unshare(user?, mnt, pid, uts, ipc, net?), id maps, mounts, pivot_root,
    |                then waits for C and reports its status on the control socket
    +-- C  pid 1 of the new pid namespace: mounts /proc, then (like runc for a RUN) becomes
        |  the command: drops capabilities, resolves USER inside the image, chdir, execve
        +-- D  only with ``init``: C stays a tiny init that reaps orphans and forwards
               signals, and D becomes the command

When C exits the kernel kills everything left in the pid namespace; when H exits the mount
namespace (overlay, /dev, binds) disappears. C has PDEATHSIG=SIGKILL, so killing H kills all.

Stdlib and sibling modules only; messages are ``marshal``-encoded dicts on a SOCK_SEQPACKET
control socket (marshal is built in, unlike json, and both ends run the same interpreter).
"""

from __future__ import annotations

import gc
import marshal
import os
import select
import signal
import socket
import stat
from collections.abc import Callable

from . import namespaces as ns
from .devices import setup_dev
from .users import UserLookupError, resolve_user

# Docker's default capability set for RUN/containers (moby/oci/caps/defaults.go).
DOCKER_CAPS = frozenset({0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31})
# Docker's masked and read-only /proc paths (the subset that exists on common kernels).
MASKED_FILES = ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug")
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
MOUNT_FILES = ("/etc/hosts", "/etc/resolv.conf", "/etc/hostname")
EXIT_SETUP_FAILED = 125
SPARES = 2  # pre-warmed helpers the fork server keeps queued for the caller


class _Step:
    """Which setup step is running, so an error can name the missing kernel feature."""

    name = "start"


def send(ctl: int, message: dict) -> None:
    try:
        os.write(ctl, marshal.dumps(message))
    except OSError:
        pass  # the caller is gone; the run is being torn down anyway


def _report(ctl: int, exc: BaseException) -> None:
    send(ctl, {"ev": "error", "step": _Step.name, "errno": getattr(exc, "errno", None),
               "message": str(exc), "type": type(exc).__name__})


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


# ---------------------------------------------------------------- H: namespaces and mounts


def _prepare(userns: str | None, uid: int, gid: int,
             request_map: Callable[[], None]) -> tuple[int, socket.socket]:
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
    flags = ns.CLONE_NEWNS | ns.CLONE_NEWPID | ns.CLONE_NEWUTS | ns.CLONE_NEWIPC
    _Step.name = "userns" if userns else "namespaces"
    ns.unshare(flags | (ns.CLONE_NEWUSER if userns else 0))
    if userns == "self":
        # Single-id map written by ourselves: only container root exists.
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"0 {uid} 1")
        _write("/proc/self/gid_map", f"0 {gid} 1")
    elif userns == "parent":
        _Step.name = "idmap"
        request_map()  # someone outside runs newuidmap/newgidmap on our pid
    _Step.name = "mount"
    ns.mount(None, "/", None, ns.MS_REC | ns.MS_PRIVATE)
    # Fork pid 1 now: /proc must be mounted from inside the new pid namespace, and a user
    # namespace may mount proc only while the host's /proc is still visible (before
    # pivot_root), so C does all the mounting. H shares its mount namespace and only waits.
    _Step.name = "fork"
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
    socket.send_fds(h_sock, [b"run"], fds)
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


def _ask(ctl: int) -> None:
    send(ctl, {"ev": "map"})
    reply = os.read(ctl, 4096)
    answer = marshal.loads(reply) if reply else {"op": "abort"}
    if answer.get("op") != "go":
        raise PermissionError(answer.get("error") or "the id map was not written")


def child_main(ctl: int, specfd: int) -> int:
    """One-shot H (a fresh interpreter per RUN): 0 = stdin, 1 and 2 = the output pipe."""
    os.set_inheritable(ctl, False)
    os.set_inheritable(specfd, False)
    try:
        send(ctl, {"ev": "pid", "pid": os.getpid()})
        os.lseek(specfd, 0, os.SEEK_SET)
        spec = marshal.loads(_read_all(specfd))
        pid, h_sock = _prepare(spec["userns"], spec["host_uid"], spec["host_gid"],
                               lambda: _ask(ctl))
        return _hand_over(ctl, pid, h_sock, [ctl, specfd, 1, 0])
    except BaseException as exc:  # noqa: BLE001 - every failure must reach the caller
        _report(ctl, exc)
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


def spare_main(zsock: socket.socket, userns: str | None, uid: int, gid: int) -> int:
    """Pre-warmed H forked by the fork server: prepare now, take a RUN later.

    When ready, H passes the socket to its C through the server to the caller, which sends
    the RUN's fds straight to C (no relay through the server and H on the critical path);
    C forwards the control socket back to H, which then reports and supervises. An unused
    spare dies with the server (PDEATHSIG), C with H.
    """

    def request_map() -> None:
        zsock.send(marshal.dumps({"ev": "map", "pid": os.getpid()}))
        reply = zsock.recv(4096)
        answer = marshal.loads(reply) if reply else {"op": "abort"}
        if answer.get("op") != "go":
            raise PermissionError(answer.get("error") or "the id map was not written")

    error: BaseException | None = None
    step = ""
    server = os.getppid()
    ns.prctl(ns.PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != server:
        return 0  # the server died before PDEATHSIG was armed
    try:
        pid, h_sock = _prepare(userns, uid, gid, request_map)
    except BaseException as exc:  # noqa: BLE001 - reported with the RUN that uses us
        error, step = exc, _Step.name
        zsock.send(marshal.dumps({"ev": "failed"}))
    else:
        socket.send_fds(zsock, [marshal.dumps({"ev": "ready"})], [h_sock.fileno()])
        zsock.close()
        ctl = _take_ctl(h_sock)
        if ctl is None:
            return 0
        ns.prctl(ns.PR_SET_PDEATHSIG, 0)  # a started RUN outlives the server
        os.set_inheritable(ctl, False)
        send(ctl, {"ev": "pid", "pid": os.getpid()})
        send(ctl, {"ev": "started", "pid": pid})
        return _supervise(ctl, pid)
    msg, fds, _, _ = socket.recv_fds(zsock, 4096, 4)
    if not msg or len(fds) != 4:
        return 0  # the server went away: C dies with us (PDEATHSIG)
    ctl = fds[0]
    for fd in fds:
        os.set_inheritable(fd, False)
    send(ctl, {"ev": "pid", "pid": os.getpid()})
    _Step.name = step
    _report(ctl, error)
    return EXIT_SETUP_FAILED


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
                send(ctl, {"ev": "exit", "status": os.waitstatus_to_exitcode(status)})
                return 0
            data = os.read(ctl, 4096)
            message = marshal.loads(data) if data else {"op": "kill"}
            if message.get("op") == "kill":
                os.kill(pid, signal.SIGKILL)
                poller.unregister(ctl)
            elif message.get("op") == "signal":
                os.kill(pid, message["signal"])  # C forwards it to the command


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _fdpath(fd: int) -> str:
    return f"/proc/self/fd/{fd}"


def _mount_rootfs(spec: dict) -> None:
    """Overlay at the mountpoint, then /dev, /sys, /etc files and the caller's mounts on it.

    A small "scaffold" tmpfs is mounted at the mountpoint first and then shadowed by the
    overlay. It holds the generated files (hosts, resolv.conf, hostname, secrets) and, when a
    mount target is missing from the image, a stub lower layer placed on top of the image
    layers that contains just the missing targets (and copies of their parent directories'
    metadata). Mount targets therefore always exist in a *lower* layer and nothing is ever
    created in the upper dir to serve as a mount point.
    """
    root = spec["mountpoint"]
    _Step.name = "scaffold"
    ns.mount("nbsandbox", root, "tmpfs", ns.MS_NOSUID | ns.MS_NODEV, "mode=755,size=16m")
    os.mkdir(f"{root}/files", 0o755)
    os.mkdir(f"{root}/stub", 0o755)
    files: dict[str, str] = {}
    for name, data in (("hosts", spec["hosts"]), ("resolv.conf", spec["resolv"]),
                       ("hostname", spec["hostname"].encode() + b"\n")):
        files[f"/etc/{name}"] = _new_file(f"{root}/files/{name}", data, 0o644, 0, 0)
    for index, mount in enumerate(spec["mounts"]):
        if mount[0] == "secret":
            _, target, data, mode, uid, gid = mount
            files[target] = _new_file(f"{root}/files/secret{index}", data, mode, uid, gid)
    stub_fd = os.open(f"{root}/stub", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    # Keep the generated files reachable by fd once the overlay shadows the scaffold.
    file_fds = {t: os.open(p, os.O_PATH | os.O_CLOEXEC) for t, p in files.items()}

    layer_fds = [os.open(p, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC) for p in spec["lowers"]]
    upper_fd = os.open(spec["upper"], os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    work = spec["work"]
    if os.path.lexists(os.path.join(work, "work", "incompat")):  # a reused volatile workdir
        work = _fresh_workdir(work)
    work_fd = os.open(work, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    def mount_overlay(with_stub: bool) -> None:
        lowers = ([stub_fd] if with_stub or not layer_fds else []) + layer_fds
        # Layers are named by fd number relative to /proc/self/fd: short whatever the paths
        # are (the option string is limited to one page) and immune to ':' or ',' in names.
        opts = f"lowerdir={':'.join(map(str, lowers))},upperdir={upper_fd},workdir={work_fd}"
        # No redirects or metacopy files: the layer writer sees plain copy-ups and whiteouts
        # (userxattr implies that and rejects redirect_dir=off, which means "follow").
        opts += ",index=off,userxattr" if spec["userns"] else ",index=off,redirect_dir=off,metacopy=off"
        # volatile: unmounting would otherwise syncfs() the whole upper filesystem at every
        # RUN (milliseconds, far more on a busy disk). The layer blob is fsynced when it is
        # stored, and snapshots from an earlier boot are not trusted (build/snapshots.py).
        # It leaves work/incompat/volatile behind, so a remount needs a fresh workdir.
        if spec.get("volatile", True):
            opts += ",volatile"
        cwd = os.open(".", os.O_PATH | os.O_CLOEXEC)
        os.chdir("/proc/self/fd")
        try:
            ns.mount("overlay", root, "overlay", 0, opts)
        finally:
            os.fchdir(cwd)
            os.close(cwd)

    targets: list[tuple[str, bool]] = [("/proc", True), ("/dev", True), ("/sys", True)]
    targets += [(t, False) for t in MOUNT_FILES]
    for mount in spec["mounts"]:
        if mount[0] == "bind":
            targets.append((mount[2], os.path.isdir(mount[1])))
        elif mount[0] == "tmpfs":
            targets.append((mount[1], True))
        else:
            targets.append((mount[1], False))
    # Predict the missing targets from the layer dirs themselves, so the overlay is usually
    # mounted once: an unmount and remount costs an RCU grace period and more. A target the
    # prediction misses is still caught after mounting (the slow path below).
    _Step.name = "mount targets"
    stubbed = _prestub(spec["lowers"], _fdpath(stub_fd), targets)
    _Step.name = "overlay"
    mount_overlay(with_stub=stubbed)
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    _Step.name = "mount targets"
    missing = [(t, d) for t, d in targets if not _exists(root_fd, t)]
    if missing:
        _build_stubs(root_fd, _fdpath(stub_fd), missing)
        os.close(root_fd)
        ns.umount(root)
        _Step.name = "overlay"
        if spec.get("volatile", True):  # the first mount marked the workdir: use a new one
            os.close(work_fd)
            work_fd = os.open(_fresh_workdir(spec["work"]), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        mount_overlay(with_stub=True)
        root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    _Step.name = "/dev"
    target = ns.open_in_root(root_fd, "/dev")
    ns.mount("tmpfs", _fdpath(target), "tmpfs", ns.MS_NOSUID | ns.MS_STRICTATIME,
             "mode=755,size=65536k")
    os.close(target)
    dev = ns.open_in_root(root_fd, "/dev")
    setup_dev(_fdpath(dev), tty_group=spec["tty_group"])
    os.close(dev)

    _Step.name = "/sys"
    target = ns.open_in_root(root_fd, "/sys")
    try:
        ns.mount("sysfs", _fdpath(target), "sysfs",
                 ns.MS_RDONLY | ns.MS_NOSUID | ns.MS_NODEV | ns.MS_NOEXEC)
    except PermissionError:
        # A user namespace may mount sysfs only with its own network namespace: bind the
        # host's instead (what rootless podman does for --network host).
        ns.mount("/sys", _fdpath(target), None, ns.MS_BIND | ns.MS_REC)
        _readonly(root_fd, "/sys", recursive=True)
    os.close(target)

    _Step.name = "/proc"
    target = ns.open_in_root(root_fd, "/proc")
    ns.mount("proc", _fdpath(target), "proc", ns.MS_NOSUID | ns.MS_NODEV | ns.MS_NOEXEC)
    os.close(target)
    for path in MASKED_FILES:
        if _exists(root_fd, path):
            _bind(root_fd, "/dev/null", path, readonly=False, recursive=False)
    for path in READONLY_PATHS:
        if _exists(root_fd, path):
            target = ns.open_in_root(root_fd, path)
            ns.mount(_fdpath(target), _fdpath(target), None, ns.MS_BIND | ns.MS_REC)
            os.close(target)
            _readonly(root_fd, path, recursive=True)

    _Step.name = "bind mounts"
    for path, fd in file_fds.items():
        if path in MOUNT_FILES and not _is_file(root_fd, path):
            continue  # e.g. the image has a directory there: leave it alone
        _bind(root_fd, _fdpath(fd), path, readonly=True, recursive=False)
    for mount in sorted(spec["mounts"], key=lambda m: m[1 if m[0] != "bind" else 2].count("/")):
        if mount[0] == "bind":
            _, source, target_path, readonly = mount
            src = os.open(source, os.O_PATH | os.O_CLOEXEC)
            _bind(root_fd, _fdpath(src), target_path, readonly=readonly, recursive=True)
            os.close(src)
        elif mount[0] == "tmpfs":
            _, target_path, size, mode = mount
            target = ns.open_in_root(root_fd, target_path)
            opts = f"mode={mode:o}" + (f",size={size}" if size else "")
            ns.mount("tmpfs", _fdpath(target), "tmpfs", ns.MS_NOSUID | ns.MS_NODEV, opts)
            os.close(target)
    for fd in [*file_fds.values(), *layer_fds, upper_fd, work_fd, stub_fd, root_fd]:
        os.close(fd)


def _fresh_workdir(work: str) -> str:
    """A new empty workdir beside ``work`` (same filesystem), removed with the scratch dir
    by the caller: the overlay's own marker files make ``work`` unusable for a remount."""
    for n in range(1, 100):
        path = os.path.join(work, f"w{n}")
        try:
            os.mkdir(path, 0o700)
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free workdir below {work}")


_OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")


def _is_opaque(path: str) -> bool:
    for name in _OPAQUE_XATTRS:
        try:
            if os.getxattr(path, name, follow_symlinks=False) == b"y":
                return True
        except OSError:
            continue
    return False


def _union_missing(lowers: list[str], path: str) -> list[os.stat_result] | None:
    """Overlayfs's lookup of ``path`` done on the layer dirs (top first), without a mount.

    Returns the stats of the existing ancestors (the topmost copy of each, as the merged view
    shows them) when the path is certainly missing; None when it exists or when the answer is
    not certain (a symlink or a non-directory on the way, an unreadable dir): the caller then
    relies on the check made on the mounted overlay.
    """
    parts = [p for p in path.split("/") if p and p != "."]
    if not parts or ".." in parts:
        return None
    copies = list(lowers)  # the layers' copies of the current directory that overlay merges
    ancestors: list[os.stat_result] = []
    for name in parts:
        found: list[str] = []
        top: os.stat_result | None = None
        for d in copies:
            p = os.path.join(d, name)
            try:
                st = os.lstat(p)
            except FileNotFoundError:
                continue
            except OSError:
                return None
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:  # whiteout: hidden below
                break
            if not stat.S_ISDIR(st.st_mode):
                if top is None:
                    return None  # a file or symlink: exists (leaf) or needs resolving
                break  # a non-dir below a dir ends the merge
            if top is None:
                top = st
            found.append(p)
            if _is_opaque(p):
                break
        if top is None:
            return ancestors
        ancestors.append(top)
        copies = found
    return None


def _prestub(lowers: list[str], stub: str, targets: list[tuple[str, bool]]) -> bool:
    """Create in the stub layer the targets ``_union_missing`` proves absent (with copies of
    their parents' metadata, like ``_build_stubs``). True when the stub layer is needed."""
    if not lowers:
        return True
    times: list[tuple[str, int, int]] = []
    made = False
    for path, is_dir in targets:
        ancestors = _union_missing(lowers, path)
        if ancestors is None:
            continue
        parts = [p for p in path.split("/") if p and p != "."]
        for depth, st in enumerate(ancestors, start=1):
            full = os.path.join(stub, *parts[:depth])
            if os.path.lexists(full):
                continue
            os.mkdir(full)
            _copy_owner_mode(full, st)
            times.append((full, st.st_atime_ns, st.st_mtime_ns))
        for index in range(len(ancestors), len(parts)):
            full = os.path.join(stub, *parts[:index + 1])
            if os.path.lexists(full):
                continue
            if index == len(parts) - 1 and not is_dir:
                os.close(os.open(full, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
            else:
                os.mkdir(full, 0o755)
        made = True
    for full, atime, mtime in reversed(times):
        os.utime(full, ns=(atime, mtime))
    return made


def _new_file(path: str, data: bytes, mode: int, uid: int, gid: int) -> str:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        os.write(fd, data)
        if uid or gid:
            os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)
    return path


def _exists(root_fd: int, path: str) -> bool:
    try:
        os.close(ns.open_in_root(root_fd, path))
    except FileNotFoundError:
        return False
    return True


def _is_file(root_fd: int, path: str) -> bool:
    fd = ns.open_in_root(root_fd, path)
    try:
        return stat.S_ISREG(os.fstat(fd).st_mode)
    finally:
        os.close(fd)


def _bind(root_fd: int, source: str, path: str, *, readonly: bool, recursive: bool) -> None:
    target = ns.open_in_root(root_fd, path)
    try:
        ns.mount(source, _fdpath(target), None, ns.MS_BIND | (ns.MS_REC if recursive else 0))
    finally:
        os.close(target)
    if readonly:
        _readonly(root_fd, path, recursive=recursive)


def _readonly(root_fd: int, path: str, *, recursive: bool) -> None:
    # Re-open: the fd must name the new mount's root, not the dentry it was mounted on.
    fd = ns.open_in_root(root_fd, path)
    try:
        ns.make_readonly(_fdpath(fd), recursive=recursive)
    finally:
        os.close(fd)


def _build_stubs(root_fd: int, stub: str, missing: list[tuple[str, bool]]) -> None:
    """Create missing mount targets in the stub layer, copying parent dirs' metadata.

    A merged directory takes its attributes from the topmost layer that has it, so each parent
    copied into the stub gets the mode, owner and times the image shows; a later copy-up of that
    directory (the RUN creates a file in /etc) then records exactly the image's metadata.
    """
    real_root = os.readlink(_fdpath(root_fd)).rstrip("/")
    times: list[tuple[str, int, int]] = []
    for path, is_dir in missing:
        parts = [p for p in path.split("/") if p and p != "."]
        if ".." in parts or not parts:
            raise ValueError(f"invalid mount target {path!r}")
        # Deepest existing ancestor, canonicalised inside the image (it may be a symlink).
        base: list[str] = []
        rest = parts
        for depth in range(len(parts) - 1, 0, -1):
            try:
                fd = ns.open_in_root(root_fd, "/".join(parts[:depth]))
            except FileNotFoundError:
                continue
            try:
                if not stat.S_ISDIR(os.fstat(fd).st_mode):
                    raise NotADirectoryError(f"mount target {path}: a parent is not a directory")
                real = os.readlink(_fdpath(fd))
            finally:
                os.close(fd)
            base = [p for p in real[len(real_root):].split("/") if p]
            rest = parts[depth:]
            break
        # Replicate the existing ancestors (each level) with the image's metadata.
        for depth in range(1, len(base) + 1):
            rel = "/".join(base[:depth])
            if os.path.lexists(f"{stub}/{rel}"):
                continue
            fd = ns.open_in_root(root_fd, rel)
            try:
                st = os.fstat(fd)
            finally:
                os.close(fd)
            os.mkdir(f"{stub}/{rel}")
            _copy_owner_mode(f"{stub}/{rel}", st)
            times.append((f"{stub}/{rel}", st.st_atime_ns, st.st_mtime_ns))
        # Create the missing components: directories, and the leaf as a dir or empty file.
        current = "/".join(base)
        for index, name in enumerate(rest):
            current = f"{current}/{name}" if current else name
            leaf = index == len(rest) - 1
            full = f"{stub}/{current}"
            if os.path.lexists(full):
                continue
            if leaf and not is_dir:
                os.close(os.open(full, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
            else:
                os.mkdir(full, 0o755)
    # Creating entries touched the copied directories' mtimes: restore them last.
    for path, atime, mtime in reversed(times):
        os.utime(path, ns=(atime, mtime))


def _copy_owner_mode(path: str, st: os.stat_result) -> None:
    try:
        os.lchown(path, st.st_uid, st.st_gid)
    except OSError:
        pass  # an id outside a single-id map: the stub stays owned by container root
    os.chmod(path, stat.S_IMODE(st.st_mode))


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
    socket.send_fds(c_sock, [b"ctl"], [ctl])  # H supervises through the same socket
    c_sock.close()
    os.set_inheritable(ctl, False)
    try:
        os.dup2(stdin, 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        for fd in (stdin, out):
            if fd > 2:
                os.close(fd)
        os.lseek(specfd, 0, os.SEEK_SET)
        spec = marshal.loads(_read_all(specfd))
        os.close(specfd)
        return _setup_and_exec(ctl, spec)
    except BaseException as exc:  # noqa: BLE001
        _report(ctl, exc)
        return EXIT_SETUP_FAILED


def _setup_and_exec(ctl: int, spec: dict) -> int:
    _Step.name = "mount"
    ns.sethostname(spec["hostname"])
    if spec["network"] == "none":
        _Step.name = "network"
        ns.unshare(ns.CLONE_NEWNET)  # owned by the sandbox's user namespace, if any
        ns.loopback_up()
    _mount_rootfs(spec)

    _Step.name = "pivot_root"
    os.chdir(spec["mountpoint"])
    ns.pivot_root(".", ".")
    ns.umount(".", ns.MNT_DETACH)
    os.chdir("/")

    if not spec["init"]:
        return _exec_main(ctl, spec)  # like runc: the command itself is pid 1

    _Step.name = "fork"
    pid = os.fork()
    if pid == 0:
        code = EXIT_SETUP_FAILED
        try:
            code = _exec_main(ctl, spec)
        except BaseException as exc:  # noqa: BLE001
            _report(ctl, exc)
        os._exit(code)

    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT,
                   signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(signum, forward)
    while True:  # reap orphans until the command itself exits
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


def _exec_main(ctl: int, spec: dict) -> int:
    for signum in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)  # Python ignores SIGPIPE; commands must not
    _Step.name = "user"
    try:
        user = resolve_user(spec["user"])
    except UserLookupError as exc:
        _report(ctl, exc)
        return EXIT_SETUP_FAILED
    if spec["userns"] == "self" and (user.uid or user.gid or user.groups):
        raise PermissionError(
            f"USER {spec['user']} needs uid {user.uid}/gid {user.gid}, but without a "
            "subordinate id range only container root (0) is mapped")
    env = dict(spec["env"])
    env.setdefault("HOME", user.home)
    cwd = spec["cwd"] or "/"
    _Step.name = "workdir"
    if not os.path.isdir(cwd):
        os.makedirs(cwd, 0o755, exist_ok=True)  # like Docker, created as root
    _Step.name = "credentials"
    ns.drop_bounding_caps(DOCKER_CAPS)
    if spec["userns"] != "self":
        os.setgroups(list(user.groups))
    os.setresgid(user.gid, user.gid, user.gid)
    os.setresuid(user.uid, user.uid, user.uid)
    os.chdir(cwd)
    try:
        os.setsid()
    except OSError:
        pass
    argv = spec["argv"]
    _Step.name = "exec"
    try:
        os.execvpe(argv[0], argv, env)
    except OSError as exc:
        reason = ("executable file not found in $PATH"
                  if isinstance(exc, FileNotFoundError) and "/" not in argv[0]
                  else exc.strerror)
        os.write(2, f"exec: {argv[0]!r}: {reason}\n".encode())
        return 127 if isinstance(exc, FileNotFoundError) else 126
    return EXIT_SETUP_FAILED  # not reached


# ---------------------------------------------------------------- entry points


def _map_ids(pid: int, uid_map: str, gid_map: str) -> str | None:
    """Write a spare's id maps (as root directly, else with newuidmap/newgidmap)."""
    maps = {"uid": uid_map.split(), "gid": gid_map.split()}
    if os.geteuid() == 0:
        for which, values in maps.items():
            lines = "".join(" ".join(values[i:i + 3]) + "\n" for i in range(0, len(values), 3))
            _write(f"/proc/{pid}/{which}_map", lines)
        return None
    import subprocess

    procs = [subprocess.Popen([f"new{which}map", str(pid), *values], stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for which, values in maps.items()]
    errors = []
    for proc in procs:
        output, _ = proc.communicate()
        if proc.returncode:
            errors.append(f"{proc.args[0]}: {output.decode(errors='replace').strip()}")
    return "; ".join(errors) or None


def serve(sock_fd: int, userns: str | None, uid: int, gid: int, uid_map: str,
          gid_map: str) -> int:
    """Fork server: keeps one pre-warmed spare helper and hands it to the caller, which gives
    it the next RUN directly; a new spare is prepared while that RUN runs."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # No cyclic garbage worth collecting here or in the short-lived children, and a collection
    # in a forked child would touch (and so copy) every page of the server's heap.
    gc.disable()
    gc.freeze()
    sock = socket.socket(fileno=sock_fd)

    def new_spare() -> tuple[bytes, int]:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            code = EXIT_SETUP_FAILED
            try:
                sock.close()
                ours.close()
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                code = spare_main(theirs, userns, uid, gid)
            finally:
                os._exit(code)
        theirs.close()
        while True:  # serve its id-map request, wait until it is ready
            data, fds, _, _ = socket.recv_fds(ours, 4096, 1)
            message = marshal.loads(data) if data else {"ev": "failed"}
            if message["ev"] == "ready" and len(fds) == 1:
                ours.close()
                return b"spare", fds[0]  # the socket to the spare's C
            for fd in fds:
                os.close(fd)
            if message["ev"] != "map":
                # Failed (or died): the RUN goes to H itself, which reports the error.
                return b"failed", ours.detach()
            try:
                error = _map_ids(message["pid"], uid_map, gid_map)
            except OSError as exc:
                error = str(exc)
            ours.send(marshal.dumps({"op": "abort" if error else "go", "error": error}))

    ready = 0
    while True:
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:  # reap finished helpers
                pass
        except ChildProcessError:
            pass
        # Two spares in the caller's queue: preparing one (forks, unshare) can take longer
        # than a short RUN on a busy machine, and the next RUN should not wait for it.
        while ready < SPARES:
            kind, fd = new_spare()
            try:
                socket.send_fds(sock, [kind], [fd])  # picked up by the caller's next RUN
            except OSError:
                return 0
            finally:
                os.close(fd)
            ready += 1
        try:
            if not sock.recv(16):  # "take": replace that spare while the RUN runs
                return 0
        except OSError:
            return 0
        ready -= 1


def probe(scratch: str, userns: bool, uid: int, gid: int) -> dict:
    """Try each kernel feature the sandbox needs; run in a throwaway process (it unshares)."""
    step = "userns" if userns else "namespaces"
    try:
        flags = ns.CLONE_NEWNS | ns.CLONE_NEWUTS | ns.CLONE_NEWIPC
        ns.unshare(flags | (ns.CLONE_NEWUSER if userns else 0))
        if userns:
            _write("/proc/self/setgroups", "deny")
            _write("/proc/self/uid_map", f"0 {uid} 1")
            _write("/proc/self/gid_map", f"0 {gid} 1")
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


def userns_exec(ctl: int, args: list[str]) -> int:
    """Exec a host command as root of a user namespace with the sandbox's id map.

    Lets an unprivileged caller create, chown or delete files owned by subordinate ids (extract
    a base layer with its real owners, remove a rootless upper dir). ``args`` is
    ``[mode, host_uid, host_gid, *argv]`` with mode ``self`` or ``parent`` as in a RUN.
    """
    mode, uid, gid, *argv = args
    os.set_inheritable(ctl, False)
    try:
        _Step.name = "userns"
        ns.unshare(ns.CLONE_NEWUSER | ns.CLONE_NEWNS)
        if mode == "self":
            _write("/proc/self/setgroups", "deny")
            _write("/proc/self/uid_map", f"0 {uid} 1")
            _write("/proc/self/gid_map", f"0 {gid} 1")
        else:
            send(ctl, {"ev": "map"})
            reply = os.read(ctl, 4096)
            if not reply or marshal.loads(reply).get("op") != "go":
                return EXIT_SETUP_FAILED
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
        _Step.name = "exec"
        os.execvp(argv[0], argv)
    except BaseException as exc:  # noqa: BLE001
        _report(ctl, exc)
    return EXIT_SETUP_FAILED

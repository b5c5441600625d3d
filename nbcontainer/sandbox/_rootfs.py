"""Building a RUN's root inside the helper: the overlay and its stub layer, ``/dev``,
``/sys``, ``/proc``, the generated ``/etc`` files and the caller's mounts.

Runs in C (pid 1 of the RUN's namespaces) before ``pivot_root``; stdlib and siblings only.
Every mount target is opened with ``openat2(RESOLVE_IN_ROOT)``, so symlinks in the image
resolve inside the image, never on the host.
"""

from __future__ import annotations

import os
import stat

from . import _namespaces as ns
from ._control import Step
from ._devices import setup_dev

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from .messages import LowerFileWire, MountWire, RunWire

# Docker's masked and read-only paths (moby's oci/defaults.go): a masked file is covered by
# /dev/null, a masked directory by an empty read-only tmpfs (as runc does); those this kernel
# lacks are skipped.
MASKED_PROC = ("/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys",
               "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
               "/proc/sched_debug", "/proc/scsi")
MASKED_SYS = ("/sys/firmware", "/sys/devices/virtual/powercap")
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
MOUNT_FILES = ("/etc/hosts", "/etc/resolv.conf", "/etc/hostname")
_O_DIR = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC

Target = tuple[str, bool]  # a mount target in the image, and whether it is a directory


def _fdpath(fd: int) -> str:
    return f"/proc/self/fd/{fd}"


def mount_rootfs(spec: RunWire) -> None:
    """Overlay at the mountpoint, then /dev, /sys, /proc, /etc files and the caller's mounts.

    A small "scaffold" tmpfs is mounted at the mountpoint first and then shadowed by the
    overlay. It holds the generated files (hosts, resolv.conf, hostname, secrets) and, when a
    mount target is missing from the image, a stub lower layer placed on top of the image
    layers that contains just the missing targets (and copies of their parent directories'
    metadata). Mount targets therefore always exist in a *lower* layer and nothing is ever
    created in the upper dir to serve as a mount point.
    """
    Step.name = "scaffold"
    stub_fd, file_fds = _scaffold(spec)
    if spec.get("rootfs") == "bind":  # a tree copy: the caller made every mount target
        Step.name = "bind rootfs"
        ns.mount(spec["lowers"][0], spec["mountpoint"], None, ns.MS_BIND | ns.MS_REC)
        ns.set_mount_attrs(spec["mountpoint"], ns.MOUNT_ATTR_NODEV, recursive=False)
        root_fd = os.open(spec["mountpoint"], _O_DIR)
    else:
        overlay = _Overlay(spec, stub_fd)
        try:
            root_fd = overlay.mount_over(_targets(spec))
        finally:
            overlay.close()
    masks = spec.get("masks", True)
    Step.name = "/dev"
    _mount_dev(root_fd, tty_group=spec["tty_group"])
    Step.name = "/sys"
    _mount_sys(root_fd, masks=masks, cgroup=spec.get("cgroup_view"))
    Step.name = "/proc"
    _mount_proc(root_fd, fresh=spec.get("proc", "fresh") == "fresh", masks=masks)
    Step.name = "bind mounts"
    for path, fd in file_fds.items():
        if path in MOUNT_FILES and not _is_file(root_fd, path):
            continue  # e.g. the image has a directory there: leave it alone
        _bind(root_fd, _fdpath(fd), path, readonly=True, recursive=False)
    for mount in sorted(spec["mounts"], key=lambda m: m["target"].count("/")):
        _mount_extra(root_fd, mount)
    for fd in [*file_fds.values(), stub_fd, root_fd]:
        os.close(fd)


def _scaffold(spec: RunWire) -> tuple[int, dict[str, int]]:
    """The scaffold tmpfs with the generated files; O_PATH fds of its stub dir and files
    (keeping them reachable once the overlay shadows the scaffold)."""
    root = spec["mountpoint"]
    # Named after the caller, so a caller can tell its own sandboxes' mounts from others'.
    ns.mount(f"nbsandbox-{spec.get('caller', 0)}", root, "tmpfs", ns.MS_NOSUID | ns.MS_NODEV,
             "mode=755,size=16m")
    os.mkdir(f"{root}/files", 0o755)
    os.mkdir(f"{root}/stub", 0o755)
    files: dict[str, str] = {}
    for name, data in (("hosts", spec["hosts"]), ("resolv.conf", spec["resolv"]),
                       ("hostname", spec["hostname"].encode() + b"\n")):
        files[f"/etc/{name}"] = _new_file(f"{root}/files/{name}", data, 0o644, 0, 0)
    for index, mount in enumerate(spec["mounts"]):
        if mount["kind"] == "secret":
            files[mount["target"]] = _new_file(f"{root}/files/secret{index}", mount["data"],
                                               mount["mode"], mount["uid"], mount["gid"])
    stub_fd = os.open(f"{root}/stub", _O_DIR)
    return stub_fd, {t: os.open(p, os.O_PATH | os.O_CLOEXEC) for t, p in files.items()}


def _targets(spec: RunWire) -> list[Target]:
    targets: list[Target] = [("/proc", True), ("/dev", True), ("/sys", True)]
    targets += [(t, False) for t in MOUNT_FILES]
    for mount in spec["mounts"]:
        if mount["kind"] == "bind":
            targets.append((mount["target"], os.path.isdir(mount["source"])))
        else:
            targets.append((mount["target"], mount["kind"] == "tmpfs"))
    return targets


class _Overlay:
    """The overlay of one RUN: its layer, upper and work dirs held open as O_PATH fds."""

    def __init__(self, spec: RunWire, stub_fd: int) -> None:
        self.root = spec["mountpoint"]
        self.lowers = spec["lowers"]
        self.userns = spec["userns"] is not None
        self.volatile = spec.get("volatile", True)
        self.workdir = spec["work"]
        self.stub_fd = stub_fd
        self.files = spec.get("lower_files", [])
        self.layer_fds = [os.open(p, _O_DIR) for p in self.lowers]
        self.upper_fd = os.open(spec["upper"], _O_DIR)
        work = self.workdir
        if os.path.lexists(os.path.join(work, "work", "incompat")):  # a reused volatile workdir
            work = _fresh_workdir(work)
        self.work_fd = os.open(work, _O_DIR)

    def close(self) -> None:
        for fd in [*self.layer_fds, self.upper_fd, self.work_fd]:
            os.close(fd)

    def mount_over(self, targets: list[Target]) -> int:
        """Mount the overlay so that every target exists in it; an O_PATH fd of its root."""
        # Predict the missing targets from the layer dirs themselves, so the overlay is usually
        # mounted once: an unmount and remount costs an RCU grace period and more. A target the
        # prediction misses is still caught after mounting (the slow path below).
        Step.name = "mount targets"
        stubbed = _prestub(self.lowers, _fdpath(self.stub_fd), targets)
        stubbed = _stub_files(self.lowers, _fdpath(self.stub_fd), self.files) or stubbed
        Step.name = "overlay"
        self._mount(with_stub=stubbed)
        root_fd = os.open(self.root, _O_DIR)
        Step.name = "mount targets"
        missing = [(t, d) for t, d in targets if not _exists(root_fd, t)]
        if not missing:
            return root_fd
        _build_stubs(root_fd, _fdpath(self.stub_fd), missing)
        os.close(root_fd)
        ns.umount(self.root)
        Step.name = "overlay"
        if self.volatile:  # the first mount marked the workdir: use a new one
            os.close(self.work_fd)
            self.work_fd = os.open(_fresh_workdir(self.workdir), _O_DIR)
        self._mount(with_stub=True)
        return os.open(self.root, _O_DIR)

    def _mount(self, *, with_stub: bool) -> None:
        lowers = ([self.stub_fd] if with_stub or not self.layer_fds else []) + self.layer_fds
        # Layers are named by fd number relative to /proc/self/fd: short whatever the paths
        # are (the option string is limited to one page) and immune to ':' or ',' in names.
        opts = (f"lowerdir={':'.join(map(str, lowers))},upperdir={self.upper_fd},"
                f"workdir={self.work_fd}")
        # No redirects or metacopy files: the layer writer sees plain copy-ups and whiteouts
        # (userxattr implies that and rejects redirect_dir=off, which means "follow").
        opts += ",index=off,userxattr" if self.userns else ",index=off,redirect_dir=off,metacopy=off"
        # volatile: unmounting would otherwise syncfs() the whole upper filesystem at every
        # RUN (milliseconds, far more on a busy disk). The layer blob is fsynced when it is
        # stored, and snapshots from an earlier boot are not trusted (store/snapshots.py).
        # It leaves work/incompat/volatile behind, so a remount needs a fresh workdir.
        if self.volatile:
            opts += ",volatile"
        cwd = os.open(".", os.O_PATH | os.O_CLOEXEC)
        os.chdir("/proc/self/fd")
        try:
            # nodev: a device node the RUN makes (mknod is allowed, as in Docker) cannot be
            # opened; only the sandbox's own /dev entries work (Docker's device cgroup).
            ns.mount("overlay", self.root, "overlay", ns.MS_NODEV, opts)
        finally:
            os.fchdir(cwd)
            os.close(cwd)


def _mount_dev(root_fd: int, *, tty_group: bool) -> None:
    target = ns.open_in_root(root_fd, "/dev")
    # nodev too: the host's device nodes bound into it keep their own mount's flags.
    ns.mount("tmpfs", _fdpath(target), "tmpfs", ns.MS_NOSUID | ns.MS_NODEV | ns.MS_STRICTATIME,
             "mode=755,size=65536k")
    os.close(target)
    dev = ns.open_in_root(root_fd, "/dev")  # the new tmpfs, not the dentry below it
    setup_dev(_fdpath(dev), tty_group=tty_group)
    os.close(dev)


def _mount_sys(root_fd: int, *, masks: bool = True, cgroup: str | None = None) -> None:
    target = ns.open_in_root(root_fd, "/sys")
    fresh = True
    try:
        ns.mount("sysfs", _fdpath(target), "sysfs",
                 ns.MS_RDONLY | ns.MS_NOSUID | ns.MS_NODEV | ns.MS_NOEXEC)
    except PermissionError:
        # A user namespace may mount sysfs only with its own network namespace: bind the
        # host's instead (what rootless podman does for --network host).
        fresh = False
        ns.mount("/sys", _fdpath(target), None, ns.MS_BIND | ns.MS_REC)
        _readonly(root_fd, "/sys", recursive=True)
    finally:
        os.close(target)
    if cgroup is not None and _exists(root_fd, "/sys/fs/cgroup"):
        # The RUN's own limits, where they live, read-only (Docker mounts its cgroup there).
        _guarded(fresh, lambda fd, path: _bind(fd, cgroup, path, readonly=True, recursive=False),
                 root_fd, "/sys/fs/cgroup")
    if masks:
        for path in MASKED_SYS:
            if _exists(root_fd, path):
                _guarded(fresh, _mask, root_fd, path)


def _mount_proc(root_fd: int, *, fresh: bool = True, masks: bool = True) -> None:
    target = ns.open_in_root(root_fd, "/proc")
    if fresh:
        ns.mount("proc", _fdpath(target), "proc", ns.MS_NOSUID | ns.MS_NODEV | ns.MS_NOEXEC)
    else:  # a fresh procfs is refused over a masked /proc: the existing one, masks and all
        ns.mount("/proc", _fdpath(target), None, ns.MS_BIND | ns.MS_REC)
    os.close(target)
    if not masks:  # RUN --security=insecure: BuildKit's privileged spec masks nothing
        return
    for path in MASKED_PROC:
        if _exists(root_fd, path):
            _guarded(fresh, _mask, root_fd, path)
    for path in READONLY_PATHS:
        if _exists(root_fd, path):
            _guarded(fresh, _readonly_bind, root_fd, path)


def _mask(root_fd: int, path: str) -> None:
    """/dev/null over a file, an empty read-only tmpfs over a directory (runc's maskPath)."""
    target = ns.open_in_root(root_fd, path)
    try:
        if stat.S_ISDIR(os.fstat(target).st_mode):
            ns.mount("tmpfs", _fdpath(target), "tmpfs", ns.MS_RDONLY | ns.MS_NOSUID |
                     ns.MS_NODEV | ns.MS_NOEXEC, "mode=555")
        else:
            ns.mount("/dev/null", _fdpath(target), None, ns.MS_BIND)
    finally:
        os.close(target)


def _guarded(strict: bool, action: Callable[[int, str], None], root_fd: int,
             path: str) -> None:
    """Masks over an rbind of /proc may meet mounts locked by the outer container (which
    masks them already): skip those."""
    try:
        action(root_fd, path)
    except OSError:
        if strict:
            raise


def _readonly_bind(root_fd: int, path: str) -> None:
    target = ns.open_in_root(root_fd, path)
    ns.mount(_fdpath(target), _fdpath(target), None, ns.MS_BIND | ns.MS_REC)
    os.close(target)
    _readonly(root_fd, path, recursive=True)


def _mount_extra(root_fd: int, mount: MountWire) -> None:
    """A ``RUN --mount`` bind or tmpfs (secrets are bound with the generated files)."""
    if mount["kind"] == "bind":
        src = os.open(mount["source"], os.O_PATH | os.O_CLOEXEC)
        _bind(root_fd, _fdpath(src), mount["target"], readonly=mount["readonly"],
              recursive=True, nodev=True)
        os.close(src)
    elif mount["kind"] == "tmpfs":
        target = ns.open_in_root(root_fd, mount["target"])
        opts = f"mode={mount['mode']:o}" + (f",size={mount['size']}" if mount["size"] else "")
        ns.mount("tmpfs", _fdpath(target), "tmpfs", ns.MS_NOSUID | ns.MS_NODEV, opts)
        os.close(target)


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
    walk = _union_dirs(lowers, parts)
    if walk is None or walk[1]:
        return None
    return walk[0]


def _union_dirs(lowers: list[str], parts: list[str]) -> tuple[list[os.stat_result], bool] | None:
    """The directories ``parts`` leads through in the merged view: the stats of those that
    exist (topmost copy of each), and whether all do; None when a symlink or a non-directory
    is on the way or a directory cannot be read."""
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
            return ancestors, False
        ancestors.append(top)
        copies = found
    return ancestors, True


def _stub_files(lowers: list[str], stub: str, files: list[LowerFileWire]) -> bool:
    """Write the caller's lower files (``spec.LowerFile``) into the stub layer. Parents the
    image has are replicated with the metadata it shows (a copy-up then records the image's),
    missing ones made 0755; a file below a symlink or a non-directory is not placed.
    True when one was placed."""
    times: dict[str, tuple[int, int]] = {}
    placed = False
    for item in files:
        parts = [p for p in item["target"].split("/") if p and p != "."]
        walk = _union_dirs(lowers, parts[:-1]) if lowers else ([], False)
        if not parts or ".." in parts or walk is None:
            continue
        ancestors = walk[0]
        for depth in range(1, len(parts)):
            full = os.path.join(stub, *parts[:depth])
            image = ancestors[depth - 1] if depth <= len(ancestors) else None
            if image is not None:  # (also for stub dirs made before: files were added below)
                times[full] = (image.st_atime_ns, image.st_mtime_ns)
            if os.path.lexists(full):
                continue
            os.mkdir(full, 0o755)
            if image is not None:
                _copy_owner_mode(full, image)
        path = os.path.join(stub, *parts)
        if not os.path.lexists(path):
            _new_file(path, item["data"], item["mode"], 0, 0)
            placed = True
    for full, (atime, mtime) in sorted(times.items(), key=lambda kv: -kv[0].count("/")):
        os.utime(full, ns=(atime, mtime))
    return placed


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


def _bind(root_fd: int, source: str, path: str, *, readonly: bool, recursive: bool,
          nodev: bool = False) -> None:
    target = ns.open_in_root(root_fd, path)
    try:
        ns.mount(source, _fdpath(target), None, ns.MS_BIND | (ns.MS_REC if recursive else 0))
    finally:
        os.close(target)
    if readonly or nodev:
        _readonly(root_fd, path, recursive=recursive, nodev=nodev, rdonly=readonly)


def _readonly(root_fd: int, path: str, *, recursive: bool, nodev: bool = False,
              rdonly: bool = True) -> None:
    # Re-open: the fd must name the new mount's root, not the dentry it was mounted on.
    fd = ns.open_in_root(root_fd, path)
    attrs = (ns.MOUNT_ATTR_RDONLY if rdonly else 0) | (ns.MOUNT_ATTR_NODEV if nodev else 0)
    try:
        ns.set_mount_attrs(_fdpath(fd), attrs, recursive=recursive)
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

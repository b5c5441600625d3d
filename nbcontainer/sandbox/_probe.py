"""What the kernel lets this process do, tried for real in throwaway children (helper side).

Each attempt runs in a forked child, because unsharing cannot be undone; the child reports
every step it tried (``ok``, ``errno``, message) on a pipe. Stdlib and siblings only: this runs
in the helper's fresh, single-threaded interpreter (``unshare(CLONE_NEWUSER)`` refuses a
threaded process).
"""

from __future__ import annotations

import marshal
import os

from . import _namespaces as ns
from ._control import map_self

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from .messages import HostProbeArgs

Steps = dict[str, list[object]]  # step name -> [ok, errno, message]


def _try(steps: Steps, name: str, action: Callable[[], object]) -> bool:
    try:
        action()
    except OSError as exc:
        steps[name] = [False, exc.errno, os.strerror(exc.errno) if exc.errno else str(exc)]
        return False
    steps[name] = [True, None, ""]
    return True


def _in_child(body: Callable[[Steps], None]) -> Steps:
    """Run ``body`` in a forked child; the steps it recorded."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        steps: Steps = {}
        try:
            os.close(r)
            body(steps)
        except BaseException as exc:  # noqa: BLE001 - reported as a step
            steps["crash"] = [False, getattr(exc, "errno", None), repr(exc)]
        finally:
            os.write(w, marshal.dumps(steps))
            os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    try:
        found = marshal.loads(data)
    except (EOFError, ValueError, TypeError):
        return {"crash": [False, None, "the probe child died"]}
    return found if isinstance(found, dict) else {}


def _mkdirs(base: str, *names: str) -> None:
    for name in names:
        os.makedirs(f"{base}/{name}", exist_ok=True)


def _overlay(steps: Steps, name: str, base: str, userxattr: bool) -> None:
    """An overlay with its upper dir in ``base``, and a whiteout made through it."""
    _mkdirs(base, "lower", "upper", "work", "merged")
    with open(f"{base}/lower/f", "w"):
        pass
    opts = f"lowerdir={base}/lower,upperdir={base}/upper,workdir={base}/work"
    opts += ",userxattr" if userxattr else ",redirect_dir=off,metacopy=off"

    def mount_and_delete() -> None:
        ns.mount("overlay", f"{base}/merged", "overlay", 0, opts)
        os.unlink(f"{base}/merged/f")
        ns.umount(f"{base}/merged")

    _try(steps, name, mount_and_delete)


def _namespaces(scratch: str, userns: bool, uid: int, gid: int, steps: Steps) -> None:
    """The namespace rungs' pieces, in the order a sandbox sets them up."""
    if userns:
        if not _try(steps, "userns", lambda: ns.unshare(ns.CLONE_NEWUSER)):
            return
        _try(steps, "idmap_self", lambda: map_self(uid, gid))
    if not _try(steps, "mountns", lambda: ns.unshare(ns.CLONE_NEWNS)):
        return
    _try(steps, "private", lambda: ns.mount(None, "/", None, ns.MS_REC | ns.MS_PRIVATE))
    if _try(steps, "utsns", lambda: ns.unshare(ns.CLONE_NEWUTS)):
        _try(steps, "sethostname", lambda: ns.sethostname("nbprobe"))
    _try(steps, "ipcns", lambda: ns.unshare(ns.CLONE_NEWIPC))
    _try(steps, "netns", lambda: ns.unshare(ns.CLONE_NEWNET))
    _overlay(steps, "overlay_store", f"{scratch}/o", userns)
    _mkdirs(scratch, "t")
    if _try(steps, "tmpfs", lambda: ns.mount("tmpfs", f"{scratch}/t", "tmpfs", 0, "size=1m")):
        _overlay(steps, "overlay_tmpfs", f"{scratch}/t", userns)
    if _try(steps, "pidns", lambda: ns.unshare(ns.CLONE_NEWPID)):
        steps.update(_in_child(lambda s: _pid1(scratch, s)))


def _pid1(scratch: str, steps: Steps) -> None:
    """As pid 1 of a new pid namespace: a fresh procfs, a bind of the old one, pivot_root."""
    _mkdirs(scratch, "proc", "bind", "p")
    if _try(steps, "proc_fresh", lambda: ns.mount("proc", f"{scratch}/proc", "proc",
                                                  ns.MS_NOSUID | ns.MS_NODEV | ns.MS_NOEXEC)):
        ns.umount(f"{scratch}/proc")
    _try(steps, "proc_bind", lambda: ns.mount("/proc", f"{scratch}/bind", None,
                                              ns.MS_BIND | ns.MS_REC))
    if _try(steps, "root_tmpfs", lambda: ns.mount("tmpfs", f"{scratch}/p", "tmpfs", 0,
                                                  "size=1m")):
        _mkdirs(f"{scratch}/p", "old")

        def pivot() -> None:
            os.chdir(f"{scratch}/p")
            ns.pivot_root(".", "old")

        _try(steps, "pivot_root", pivot)


def _newidmap(uid: int, gid: int, subuid: list[int], subgid: list[int], steps: Steps) -> None:
    """newuidmap/newgidmap on a child that unshared a user namespace (the full map)."""
    import subprocess

    go_r, go_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(go_w)
        os.close(done_r)
        code = 1
        try:
            ns.unshare(ns.CLONE_NEWUSER)
            code = 0
        finally:
            os.write(done_w, b"%d" % code)
            os.read(go_r, 1)
            os._exit(code)
    os.close(go_r)
    os.close(done_w)
    unshared = os.read(done_r, 4) == b"0"
    errors = []
    if unshared:
        for tool, own, sub in (("newuidmap", uid, subuid), ("newgidmap", gid, subgid)):
            proc = subprocess.run([tool, str(pid), "0", str(own), "1", "1", str(sub[0]),
                                   str(sub[1])], stdin=subprocess.DEVNULL,
                                  capture_output=True, check=False)
            if proc.returncode:
                errors.append(f"{tool}: " + (proc.stderr or proc.stdout).decode(
                    errors="replace").strip())
    os.write(go_w, b"x")
    os.close(go_w)
    os.close(done_r)
    os.waitpid(pid, 0)
    if not unshared:
        steps["newidmap"] = [False, None, "cannot create a user namespace"]
    elif errors:
        steps["newidmap"] = [False, 1, "; ".join(errors)]
    else:
        steps["newidmap"] = [True, None, ""]


def host_probe(args: HostProbeArgs) -> Steps:
    scratch, userns = args["scratch"], args["userns"]
    steps = _in_child(lambda s: _namespaces(scratch, userns, args["uid"], args["gid"], s))
    if args["subuid"] and args["subgid"]:
        _newidmap(args["uid"], args["gid"], args["subuid"], args["subgid"], steps)
    return steps

"""Per-RUN tree copies (buildah's ``vfs`` driver): where overlayfs cannot be used.

Before a RUN the whole tree below it is copied; the command changes the copy in place; the
change is found by comparing each entry's inode and ctime with a snapshot taken after the
copy (any write, chmod, chown or rename moves ctime; a recreated file has a new inode), and
written as a diff dir already in layer format: changed entries hard-linked from the copy
(cheap: same filesystem), deleted ones as ``.wh.<name>`` files. The copy then *is* the tree
of the next chain, so it is kept as that chain's snapshot.

The ownership the disk cannot hold (layers/owners.py) follows the entries: a file changed in
place keeps its recorded owner, a new one belongs to root, a deleted one loses its record.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from nbcontainer.layers.owners import Owners, move_owners, read_owners, write_owners

from .spec import LowerFile

Snap = dict[bytes, tuple[int, int, int]]  # rel path -> (inode, ctime_ns, mode)


def copy_tree(src: Path, dst: Path) -> None:
    """``cp -a`` (reflinks where the filesystem has them): owners kept as far as we may."""
    proc = subprocess.run(["cp", "-a", "--reflink=auto", "--", f"{src}/.", str(dst)],
                          stdin=subprocess.DEVNULL, capture_output=True, check=False)
    if proc.returncode:
        raise OSError(f"copying the tree {src} failed: "
                      f"{proc.stderr.decode(errors='replace').strip()[-500:]}")


def snapshot(root: Path) -> Snap:
    out: Snap = {}
    base = os.fsencode(root)
    stack = [b""]
    while stack:
        rel = stack.pop()
        with os.scandir(base + b"/" + rel if rel else base) as it:
            for e in it:
                name = rel + b"/" + e.name if rel else e.name
                st = e.stat(follow_symlinks=False)
                out[name] = (st.st_ino, st.st_ctime_ns, st.st_mode)
                if stat.S_ISDIR(st.st_mode):
                    stack.append(name)
    return out


@dataclass
class Change:
    changed: list[bytes]  # new or modified entries, parents first
    deleted: list[bytes]  # topmost deleted entries
    new: set[bytes]  # entries that did not exist before (or were replaced)


def compare(before: Snap, after: Snap) -> Change:
    changed: list[bytes] = []
    new: set[bytes] = set()
    for path in sorted(after):
        ino, ctime, mode = after[path]
        old = before.get(path)
        if old is None or old[0] != ino or stat.S_IFMT(old[2]) != stat.S_IFMT(mode):
            changed.append(path)
            new.add(path)
        elif old[1] != ctime:
            changed.append(path)
    gone = sorted(p for p in before if p not in after)
    deleted: list[bytes] = []
    for path in gone:
        if deleted and path.startswith(deleted[-1] + b"/"):
            continue  # inside a deleted directory: its whiteout covers it
        if _under_non_dir(path, after):
            continue  # its directory became a file or symlink, which hides it anyway
        deleted.append(path)
    return Change(changed, deleted, new)


def _under_non_dir(path: bytes, after: Snap) -> bool:
    parent = path.rpartition(b"/")[0]
    while parent:
        found = after.get(parent)
        if found is not None:
            return not stat.S_ISDIR(found[2])
        parent = parent.rpartition(b"/")[0]
    return False


def _parent_dirs(tree: bytes, out: bytes, rel: bytes, made: set[bytes], own: bool) -> None:
    parts = rel.split(b"/")[:-1]
    for depth in range(1, len(parts) + 1):
        sub = b"/".join(parts[:depth])
        if sub in made:
            continue
        made.add(sub)
        st = os.lstat(tree + b"/" + sub)
        os.mkdir(out + b"/" + sub, 0o700)
        _meta(out + b"/" + sub, st, own)


def _meta(path: bytes, st: os.stat_result, own: bool) -> None:
    if own:
        os.lchown(path, st.st_uid, st.st_gid)
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(path, stat.S_IMODE(st.st_mode))


def write_diff(tree: Path, change: Change, out: Path, *, own: bool) -> None:
    """The diff dir of ``change`` in layer format; ``own``: set owners (as root)."""
    t, o = os.fsencode(tree), os.fsencode(out)
    made: set[bytes] = set()
    times: list[tuple[bytes, int]] = []
    for rel in change.changed:
        if rel in made:
            continue
        _parent_dirs(t, o, rel, made, own)
        src, dst = t + b"/" + rel, o + b"/" + rel
        st = os.lstat(src)
        if stat.S_ISDIR(st.st_mode):
            made.add(rel)
            os.mkdir(dst, 0o700)
            _meta(dst, st, own)
            times.append((dst, st.st_mtime_ns))
        elif stat.S_ISREG(st.st_mode):
            try:
                os.link(src, dst)
            except OSError:
                shutil.copy2(src, dst)
                _meta(dst, st, own)
        elif stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(src), dst)
            if own:
                os.lchown(dst, st.st_uid, st.st_gid)
            os.utime(dst, ns=(st.st_mtime_ns, st.st_mtime_ns), follow_symlinks=False)
        elif stat.S_ISFIFO(st.st_mode):
            os.mkfifo(dst, stat.S_IMODE(st.st_mode))
            _meta(dst, st, own)
        elif (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)) and own:
            os.mknod(dst, st.st_mode, st.st_rdev)
            _meta(dst, st, own)
    for rel in change.deleted:
        _parent_dirs(t, o, rel, made, own)
        parent, _, name = rel.rpartition(b"/")
        marker = (o + b"/" + parent if parent else o) + b"/.wh." + name
        os.close(os.open(marker, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o600))
    for sub in made:
        if sub not in {rel for rel, _ in times}:
            times.append((o + b"/" + sub, os.lstat(t + b"/" + sub).st_mtime_ns))
    for path, mtime in sorted(times, key=lambda item: -item[0].count(b"/")):
        os.utime(path, ns=(mtime, mtime), follow_symlinks=False)


def carry_owners(parent: Mapping[bytes, tuple[int, int]], change: Change, after: Snap,
                 out_entries: Iterable[bytes]) -> tuple[Owners, Owners]:
    """(record of the diff dir, record of the changed tree) from the parent tree's record:
    entries still there and not replaced keep their owner."""
    tree_owners = {k: v for k, v in parent.items() if k in after and k not in change.new}
    diff_owners = {k: tree_owners[k] for k in out_entries if k in tree_owners}
    return diff_owners, tree_owners


def upper_owners(upper: Path, lowers: Sequence[Path]) -> Owners:
    """The record of an overlay upper dir over ``lowers`` (top first) that keep records: a
    copied-up entry keeps the owner its lower recorded; a new one belongs to root."""
    records = [(os.fsencode(lower), read_owners(lower)) for lower in lowers]
    if not any(record for _, record in records):
        return {}
    out: Owners = {}
    for rel in snapshot(upper):
        for base, record in records:
            try:
                st = os.lstat(base + b"/" + rel)
            except OSError:
                continue
            if not (stat.S_ISCHR(st.st_mode) and st.st_rdev == 0) and rel in record:
                out[rel] = record[rel]
            break  # the topmost lower that has it (or hides it) decides
    return out


def diff_entries(out: Path) -> list[bytes]:
    return list(snapshot(out))


def commit_tree(tree: Path, before: Snap, upper: Path, *, records: bool, own: bool) -> None:
    """After a RUN over ``tree``: its diff into ``upper`` and both owners records."""
    after = snapshot(tree)
    change = compare(before, after)
    write_diff(tree, change, upper, own=own)
    if records:
        diff_owners, tree_owners = carry_owners(read_owners(tree), change, after,
                                                diff_entries(upper))
        write_owners(upper, diff_owners)
        write_owners(tree, tree_owners)


def _remove_tree(path: Path) -> None:
    force_remove(path)
    try:
        os.unlink(str(path) + ".owners")
    except FileNotFoundError:
        pass


def force_remove(path: Path) -> None:
    """Delete a tree of ours, even its read-only directories (an image's 0555 dirs)."""
    def retry(func: object, failed: str, _exc: object) -> None:
        parent = os.path.dirname(failed)
        os.chmod(parent, 0o700)
        if os.path.isdir(failed) and not os.path.islink(failed):
            os.chmod(failed, 0o700)
            shutil.rmtree(failed, onerror=retry)
        else:
            os.unlink(failed)

    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, onerror=retry)
    elif os.path.lexists(path):
        os.unlink(path)


def remove_scratch(path: str | os.PathLike[str]) -> None:
    """Best effort :func:`force_remove` of a probe's scratch directory: an overlay mount
    leaves its ``work/work`` directory mode 000, which a plain rmtree cannot enter unless
    run as root."""
    try:
        force_remove(Path(path))
    except OSError:
        pass


MOUNT_DIRS = ("dev", "proc", "sys")
MOUNT_FILES = ("etc/hosts", "etc/resolv.conf", "etc/hostname")


def make_targets(tree: Path, dirs: Iterable[str], files: Iterable[str]) -> list[tuple[str, int]]:
    """Create the mount targets the tree lacks (removed again by ``remove_targets``); returns
    (path, parent mtime) of each made, deepest last."""
    made: list[tuple[str, int]] = []
    for rel, is_dir in [(d, True) for d in dirs] + [(f, False) for f in files]:
        rel = rel.strip("/")
        path = tree / rel
        if os.path.lexists(path):
            continue
        missing = []
        p = path
        while not os.path.lexists(p):
            missing.append(p)
            p = p.parent
        if not p.is_dir() or p.is_symlink():
            continue
        for q in reversed(missing):
            parent_mtime = os.lstat(q.parent).st_mtime_ns
            if q == path and not is_dir:
                os.close(os.open(q, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
            else:
                os.mkdir(q, 0o755)
            made.append((str(q.relative_to(tree)), parent_mtime))
    return made


def remove_targets(tree: Path, made: list[tuple[str, int]]) -> None:
    for rel, parent_mtime in reversed(made):
        path = tree / rel
        try:
            if path.is_dir() and not path.is_symlink():
                os.rmdir(path)
            else:
                os.unlink(path)
            os.utime(path.parent, ns=(parent_mtime, parent_mtime))
        except OSError:
            pass  # the RUN replaced it: then it is part of the change


@dataclass
class Placed:
    """A lower file (``spec.LowerFile``) written into a tree copy for one RUN."""

    rel: str
    inode: int
    ctime: int
    aside: Path | None  # the tree's own file there, moved aside meanwhile
    made: list[tuple[str, int]]  # what ``make_targets`` made for it (file and parents)


def _under_real_dirs(tree: Path, rel: str) -> bool:
    """No symlink and no non-directory among the existing parents of ``rel``."""
    path = tree
    for name in rel.split("/")[:-1]:
        path = path / name
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return True
        if not stat.S_ISDIR(st.st_mode):
            return False
    return True


def place_files(tree: Path, files: Sequence[LowerFile], aside: Path) -> list[Placed]:
    """Write ``files`` into a tree copy as the stub lower layer shows them over overlayfs:
    the tree's own file moved aside, missing parents made; directory times kept."""
    placed: list[Placed] = []
    for index, item in enumerate(files):
        rel = item.target.strip("/")
        path = tree / rel
        if not rel or not _under_real_dirs(tree, rel) or \
                (os.path.lexists(path) and not path.is_file()) or path.is_symlink():
            continue
        saved: Path | None = None
        made: list[tuple[str, int]] = []
        if os.path.lexists(path):
            parent = os.lstat(path.parent)
            aside.mkdir(exist_ok=True)
            saved = aside / str(index)
            os.rename(path, saved)
        else:
            parent = None
            made = make_targets(tree, [], [rel])
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, item.mode)
        try:
            os.write(fd, item.data)
            os.fchmod(fd, item.mode)
        finally:
            os.close(fd)
        if parent is not None:
            os.utime(path.parent, ns=(parent.st_atime_ns, parent.st_mtime_ns))
        st = os.lstat(path)
        placed.append(Placed(rel, st.st_ino, st.st_ctime_ns, saved, made))
    return placed


def restore_files(tree: Path, placed: Sequence[Placed]) -> None:
    """After the commit: each lower file the RUN left untouched gives way to what the tree
    had there; one it changed, replaced or deleted stays as the RUN left it."""
    for item in reversed(placed):
        path = tree / item.rel
        try:
            st = os.lstat(path)
            ours = (st.st_ino, st.st_ctime_ns) == (item.inode, item.ctime)
        except FileNotFoundError:
            ours = False
        if not ours:
            if item.aside is not None:
                os.unlink(item.aside)
            continue
        if item.aside is None:
            remove_targets(tree, item.made)
            continue
        parent = os.lstat(path.parent)
        os.rename(item.aside, path)
        os.utime(path.parent, ns=(parent.st_atime_ns, parent.st_mtime_ns))


APT_SANDBOX = "etc/apt/apt.conf.d/00nbcontainer-sandbox"
APT_SANDBOX_CONF = b'APT::Sandbox::User "root";\n'


class TreeRun:
    """One RUN over a copy of ``spec.lowerdirs[0]``: the copy, its mount targets, the
    snapshot before, and the commit after."""

    def __init__(self, lower: Path, upper: Path, *, records: bool, own: bool,
                 mount_targets: Iterable[tuple[str, bool]] = (), apt_sandbox: bool = False,
                 consume: bool = False, lower_files: Sequence[LowerFile] = ()) -> None:
        self.tree = upper.parent / "tree"
        self.upper, self.records, self.own = upper, records, own
        if os.path.lexists(self.tree):  # a recycled scratch dir's copy from an earlier RUN
            _remove_tree(self.tree)
        if consume:  # a private tree of the caller's: taken over, no copy
            os.rename(lower, self.tree)
            move_owners(lower, self.tree)
        else:
            self.tree.mkdir()
            copy_tree(lower, self.tree)
            parent = read_owners(lower)
            if parent:
                write_owners(self.tree, parent)
        targets = list(mount_targets)
        self.apt = apt_sandbox and (self.tree / "etc/apt/apt.conf.d").is_dir()
        files = [*MOUNT_FILES, *(t for t, d in targets if not d)]
        if self.apt:
            files.append(APT_SANDBOX)
        self.made = make_targets(self.tree, [*MOUNT_DIRS, *(t for t, d in targets if d)], files)
        self.placed = place_files(self.tree, lower_files, upper.parent / "aside")
        self.before = snapshot(self.tree)

    def commit(self) -> Path:
        commit_tree(self.tree, self.before, self.upper, records=self.records, own=self.own)
        restore_files(self.tree, self.placed)
        remove_targets(self.tree, self.made)
        return self.tree

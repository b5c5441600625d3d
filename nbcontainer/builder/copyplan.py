"""COPY and ADD with Docker's semantics, planned as a list of file operations.

Sources (context, another stage, an image, heredocs, downloaded URLs) become ``Item`` lists;
the plan turns them into file operations (``sandbox.fileops``) on a fresh diff dir:

* a directory source copies its *contents*; a file goes to ``dest`` unless ``dest`` ends in
  ``/``, is an existing directory, or several sources are given (then ``dest/<name>``);
* wildcards follow Go's ``filepath.Match``; a wildcard may match nothing, a plain path may not;
* context files are owned by root, files from stages/images keep their owners, ``--chown``
  (names resolved in the *target* image's /etc/passwd and /etc/group) overrides both;
* ``--chmod`` (octal or symbolic) applies to the copied entries only; missing parents of the
  destination are created 0755 (owned by the --chown user); existing parents are recorded
  with their own metadata, as an overlay copy-up would;
* ADD unpacks local tar archives (plain, gzip, bzip2, xz, zstd), detected by content.
"""

from __future__ import annotations

import bz2
import difflib
import gzip
import lzma
import os
import posixpath
import re
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import zstandard

from ..dockerfile import IgnoreMatcher
from ..errors import BuildError
from ..humanize import plural
from ..layers.rootfs import resolve_in_root
from .fsview import Entry, StackView
from .sources.context import BuildContext, has_glob

IdFn = Callable[[int], int]

if TYPE_CHECKING:
    from ..sandbox.messages import CopyOp as Op


@dataclass(frozen=True)
class Item:
    """One filesystem object to copy, ``rel`` below its source root (``""`` = the root)."""

    rel: str
    kind: str  # dir | file | symlink | data
    host: str  # host path (file content), link target (symlink) or text (data)
    mode: int
    uid: int
    gid: int
    mtime_ns: int
    size: int = 0
    digest: str = ""  # content digest (context files only; stages are keyed by their key)
    inode: tuple[int, int] | None = None  # (dev, ino) of a file with several names


@dataclass
class Source:
    name: str  # the matched path, for naming the destination
    items: list[Item] = field(default_factory=list)
    archive: bool = False
    key: object = None  # what the cache key uses instead of the items (git: the commit)

    @property
    def is_dir(self) -> bool:
        return bool(self.items) and self.items[0].kind == "dir"


# ---------------------------------------------------------------------- --chmod

_SYMBOLIC = re.compile(r"^([ugoa]*)([-+=])([rwxXst]*|[ugo])$")


_SHIFT = {"u": 6, "g": 3, "o": 0}
_SPECIAL = {"u": 0o4000, "g": 0o2000, "o": 0o1000}  # setuid, setgid, sticky


def parse_chmod(text: str) -> Callable[[int, bool], int] | None:
    """``--chmod`` as a function of (source mode, is_dir) → mode; None when not given."""
    if not text:
        return None
    if re.fullmatch(r"[0-7]{1,4}", text):
        value = int(text, 8)
        return lambda _mode, _is_dir: value
    clauses = []
    for clause in text.split(","):
        m = re.fullmatch(r"([ugoa]*)((?:[-+=][rwxXst]*)+)", clause)
        if not m:
            raise BuildError(f"invalid chmod parameter: {text!r}",
                             hint="use octal (0755) or symbolic (u=rwX,go=rX) modes")
        who = m.group(1) or "a"
        clauses.append(("ugo" if "a" in who else who,
                        re.findall(r"([-+=])([rwxXst]*)", m.group(2))))

    def apply(mode: int, is_dir: bool) -> int:
        for who, actions in clauses:
            for op, perms in actions:
                bits = _perm_bits(perms, who, exec_ok=is_dir or bool(mode & 0o111))
                if op == "+":
                    mode |= bits
                elif op == "-":
                    mode &= ~bits
                else:
                    mode = (mode & ~_who_mask(who)) | bits
        return mode & 0o7777

    return apply


def _perm_bits(perms: str, who: str, *, exec_ok: bool) -> int:
    """The mode bits ``perms`` (``rwxXst``) name for the classes ``who`` (``ugo``)."""
    bits = 0
    for p in perms:
        for w in who:
            if p in "rwx" or (p == "X" and exec_ok):
                bits |= {"r": 4, "w": 2, "x": 1, "X": 1}[p] << _SHIFT[w]
            elif p == "s" and w in "ug":
                bits |= _SPECIAL[w]
            elif p == "t":
                bits |= 0o1000
    return bits


def _who_mask(who: str) -> int:
    """Every bit ``=`` resets for the classes ``who``."""
    mask = 0
    for w in who:
        mask |= 0o7 << _SHIFT[w] | _SPECIAL[w]
    return mask


# ---------------------------------------------------------------------- --chown


def _lookup(table: bytes | None, name: str, what: str) -> tuple[int, int]:
    for line in (table or b"").decode(errors="replace").splitlines():
        fields = line.split(":")
        if len(fields) >= 3 and fields[0] == name:
            try:
                return int(fields[2]), int(fields[3]) if what == "user" else -1
            except ValueError:
                break
    raise BuildError(f"unable to find {what} {name}: no matching entries in "
                     f"{'passwd' if what == 'user' else 'group'} file",
                     hint="--chown names are resolved in the image being built")


def resolve_chown(spec: str, view: StackView | None) -> tuple[int, int] | None:
    """``user[:group]`` (names or ids) → (uid, gid); a user alone gives gid = uid (Docker)."""
    if not spec:
        return None
    user, _, group = spec.partition(":")

    def read(path: str) -> bytes | None:
        return view.read(path) if view is not None else None

    uid = int(user) if user.isdigit() else _lookup(read("/etc/passwd"), user, "user")[0]
    if not group:
        return uid, uid
    gid = int(group) if group.isdigit() else _lookup(read("/etc/group"), group, "group")[0]
    return uid, gid


# ---------------------------------------------------------------------- sources


def _context_item(ctx: BuildContext, path: str, sub: str) -> Item | None:
    root = ctx.root
    st = os.lstat(root / path)
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISDIR(st.st_mode):
        return Item(sub, "dir", str(root / path), mode, 0, 0, st.st_mtime_ns)
    if stat.S_ISLNK(st.st_mode):
        return Item(sub, "symlink", os.readlink(root / path), mode, 0, 0, st.st_mtime_ns)
    if stat.S_ISREG(st.st_mode):
        return Item(sub, "file", str(root / path), mode, 0, 0, st.st_mtime_ns, st.st_size,
                    ctx.stat_cache.digest(root / path, st), _inode(st))
    return None  # sockets, devices: BuildKit skips them too


def context_items(ctx: BuildContext, rel: str, excludes: IgnoreMatcher | None) -> list[Item]:
    items: list[Item] = []

    def item(path: str, sub: str) -> Item | None:
        return _context_item(ctx, path, sub)

    top = item(rel, "")
    if top is None:
        return []
    items.append(top)
    if top.kind == "dir":
        prefix = f"{rel}/" if rel else ""
        for path in ctx.ignore.walk(ctx.root, rel):
            sub = path[len(prefix):]
            if excludes is not None and excludes.matches(sub):
                continue
            it = item(path, sub)
            if it is not None:
                items.append(it)
    return items


def split_pivot(pattern: str) -> tuple[str, str]:
    """``COPY --parents``: (the root the kept parents are relative to, the whole pattern).
    The root is the part before a ``/./`` pivot, else the context (or stage) root."""
    head, sep, _ = pattern.partition("/./")
    root = posixpath.normpath("/" + head).lstrip("/") if sep else ""
    return ("" if root == "." else root), posixpath.normpath("/" + pattern).lstrip("/")


def _with_parents(found: list[tuple[str, list[Item]]], root_item: Item,
                  parent_item: Callable[[str, str], Item | None]) -> list[Source]:
    """Matches ``(path below the pivot, items)`` as one directory source rooted at the
    pivot: the kept parents come first, with their own metadata (BuildKit 1.20)."""
    seen: dict[str, Item] = {}
    for kept, items in found:
        parts = kept.split("/")
        for i in range(1, len(parts)):
            sub = "/".join(parts[:i])
            if sub not in seen and (it := parent_item(sub, sub)) is not None:
                seen[sub] = it
        for it in items:
            rel = posixpath.join(kept, it.rel) if it.rel else kept
            seen[rel] = Item(rel, it.kind, it.host, it.mode, it.uid, it.gid, it.mtime_ns,
                             it.size, it.digest)
    if not seen:
        return []
    return [Source("", [root_item, *(seen[k] for k in sorted(seen))])]


def missing_source(ctx: BuildContext, clean: str) -> BuildError:
    """A COPY/ADD source that is not in the context: BuildKit's words, then which folder
    the build context is, whether .dockerignore hides the file, and close matches."""
    folder = str(ctx.root.resolve())
    message = (f'failed to compute cache key: "/{clean}": not found in the build context '
               f"({folder})")
    if resolve_in_root(ctx.root, clean) is not None:
        return BuildError(message, hint=f"{clean} is there but .dockerignore excludes it")
    parent, _, name = clean.rpartition("/")
    siblings = [p.rpartition("/")[2] for p in ctx.glob(f"{parent}/*" if parent else "*")]
    close = difflib.get_close_matches(name, siblings, n=3, cutoff=0.6)
    if close:
        names = ", ".join(f"{parent}/{c}" if parent else c for c in close)
        return BuildError(message, hint=f"did you mean {names}?")
    where = f"{parent}/" if parent and siblings else "the context"
    return BuildError(message, hint=f"COPY sources are relative to the build context; {where} "
                                    f"holds {plural(len(siblings), 'entry', 'entries')}")


def context_sources(ctx: BuildContext, patterns: Sequence[str],
                    excludes: Sequence[str] = (), parents: bool = False) -> list[Source]:
    exclude = IgnoreMatcher(excludes) if excludes else None
    out: list[Source] = []
    for pattern in patterns:
        clean = posixpath.normpath("/" + pattern).lstrip("/")
        if parents:
            out += _context_parents(ctx, pattern, exclude)
            continue
        names = ctx.glob(clean) if has_glob(clean) else [clean]
        for name in names:
            real = ctx.resolve(name)
            if real is None:
                if has_glob(clean):
                    continue
                raise missing_source(ctx, clean)
            items = context_items(ctx, real, exclude)
            if items:
                base = posixpath.basename(name) if name else ""
                out.append(Source(base, items))
    return out


def _context_parents(ctx: BuildContext, pattern: str,
                     exclude: IgnoreMatcher | None) -> list[Source]:
    root, clean = split_pivot(pattern)
    names = ctx.glob(clean) if has_glob(clean) else [clean]
    found: list[tuple[str, list[Item]]] = []
    for name in names:
        real = ctx.resolve(name)
        if real is None:
            if has_glob(clean):
                continue
            raise missing_source(ctx, clean)
        kept = posixpath.relpath(name, root or ".")
        if kept == "." or kept.startswith("../"):
            continue
        found.append((kept, context_items(ctx, real, exclude)))
    top = _context_item(ctx, root, "") if root else _context_item(ctx, ".", "")
    if top is None or top.kind != "dir":
        raise BuildError(f"COPY --parents: pivot {root!r} is not a directory")
    return _with_parents(found, top, lambda sub, rel: _context_item(
        ctx, posixpath.join(root, sub) if root else sub, rel))


def _view_item(entry: Entry, sub: str, to_uid: IdFn, to_gid: IdFn) -> Item | None:
    st = entry.st
    mode = stat.S_IMODE(st.st_mode)
    uid, gid = entry.ids(to_uid, to_gid)
    if stat.S_ISDIR(st.st_mode):
        return Item(sub, "dir", str(entry.host), mode, uid, gid, st.st_mtime_ns)
    if stat.S_ISLNK(st.st_mode):
        return Item(sub, "symlink", os.readlink(entry.host), mode, uid, gid, st.st_mtime_ns)
    if stat.S_ISREG(st.st_mode):
        return Item(sub, "file", str(entry.host), mode, uid, gid, st.st_mtime_ns, st.st_size,
                    inode=_inode(st))
    return None


def _inode(st: os.stat_result) -> tuple[int, int] | None:
    """A hard-linked file's identity: COPY keeps its names linked, as BuildKit does."""
    return (st.st_dev, st.st_ino) if st.st_nlink > 1 else None


def view_sources(view: StackView, patterns: Sequence[str], to_uid: IdFn, to_gid: IdFn,
                 excludes: Sequence[str] = (), parents: bool = False) -> list[Source]:
    """Sources from another stage or image (ownership kept, in container ids)."""
    exclude = IgnoreMatcher(excludes) if excludes else None

    def item(entry: Entry, sub: str) -> Item | None:
        return _view_item(entry, sub, to_uid, to_gid)

    out: list[Source] = []
    parent_found: list[tuple[str, str, list[Item]]] = []  # (pivot, kept path, items)
    for pattern in patterns:
        root = split_pivot(pattern)[0] if parents else ""
        clean = posixpath.normpath("/" + pattern)
        names = _view_glob(view, clean) if has_glob(clean) else [clean]
        for name in names:
            entry = view.lookup(name)
            if entry is None:
                if has_glob(clean):
                    continue
                raise BuildError(f'failed to compute cache key: "{clean}": not found')
            src = _view_source(view, entry, name, item, exclude)
            if src is None:
                continue
            if parents:
                kept = posixpath.relpath(name, "/" + root)
                if kept != "." and not kept.startswith("../"):
                    parent_found.append((root, kept, src.items))
                continue
            out.append(src)
    for pivot in sorted({r for r, _, _ in parent_found}):  # each pivot: one dir source
        top_entry = view.lookup("/" + pivot)
        top = item(top_entry, "") if top_entry is not None else None
        if top is None or top.kind != "dir":
            raise BuildError(f"COPY --parents: pivot '/{pivot}' is not a directory")
        found = [(kept, items) for r, kept, items in parent_found if r == pivot]

        def lookup(sub: str, rel: str, root: str = pivot) -> Item | None:
            e = view.lookup(posixpath.join("/", root, sub))
            return None if e is None else item(e, rel)

        out += _with_parents(found, top, lookup)
    return out


def _view_source(view: StackView, entry: Entry, name: str,
                 item: Callable[[Entry, str], Item | None],
                 exclude: IgnoreMatcher | None) -> Source | None:
    """One path of another stage: the entry, and everything below it when a directory."""
    top = item(entry, "")
    if top is None:
        return None
    src = Source(posixpath.basename(name), [top])
    if top.kind == "dir":
        for rel, child in view.walk(entry):
            if exclude is not None and exclude.matches(rel):
                continue
            it = item(child, rel)
            if it is not None:
                src.items.append(it)
    return src


def _view_glob(view: StackView, pattern: str) -> list[str]:
    from .sources.context import glob_match

    parts = [p for p in pattern.split("/") if p]
    found = ["/"]
    for i, part in enumerate(parts):
        nxt = []
        for base in found:
            if not has_glob(part):
                nxt.append(posixpath.join(base, part))
                continue
            entry = view.lookup(base)
            if entry is None or not entry.is_dir:
                continue
            for name in view.listdir(entry):
                if glob_match(part, name):
                    nxt.append(posixpath.join(base, name))
        found = nxt
        if i < len(parts) - 1:
            found = [f for f in found if (e := view.lookup(f)) is not None and e.is_dir]
    return sorted(found)


# ---------------------------------------------------------------------- archives

_TAR_MAGIC = (b"ustar\x0000", b"ustar  \x00")


def is_archive(path: str) -> bool:
    """A tar file, plain or compressed with gzip, bzip2, xz or zstd (judged by content)."""
    try:
        with open(path, "rb") as f:
            head = f.read(6)
            f.seek(0)
            if head.startswith(b"\x1f\x8b"):
                data = gzip.GzipFile(fileobj=f).read(512)
            elif head.startswith(b"BZh"):
                data = bz2.BZ2File(f).read(512)
            elif head.startswith(b"\xfd7zXZ\x00"):
                data = lzma.LZMAFile(f).read(512)
            elif head.startswith(b"\x28\xb5\x2f\xfd"):
                data = zstandard.ZstdDecompressor().stream_reader(f).read(512)
            else:
                data = f.read(512)
    except (OSError, EOFError, lzma.LZMAError, zstandard.ZstdError):
        return False
    return len(data) >= 265 and data[257:265] in _TAR_MAGIC


# ---------------------------------------------------------------------- planning


@dataclass
class CopyPlan:
    ops: list[Op]
    dest: str


def dest_path(dest: str, workdir: str) -> str:
    """BuildKit's ``pathRelativeToWorkingDir``: relative to WORKDIR, trailing ``/`` kept."""
    if dest in ("", "."):
        dest = "./"
    trailing = dest.endswith("/") or dest.endswith("/.")
    full = posixpath.normpath(posixpath.join(workdir or "/", dest))
    if trailing and full != "/":
        full += "/"
    return full


def plan_copy(sources: Sequence[Source], dest: str, view: StackView, *,
              chown: tuple[int, int] | None, chmod: Callable[[int, bool], int] | None,
              to_uid: IdFn, to_gid: IdFn, unpack: bool, created_mtime: int,
              multiple: bool) -> CopyPlan:
    """File operations that put ``sources`` at ``dest`` (absolute) over the image ``view``."""
    want_dir = dest.endswith("/") or multiple or len(sources) > 1 or any(
        s.is_dir or s.archive for s in sources)
    real = view.realpath(dest.rstrip("/") or "/")
    existing = view.lookup(real)
    if existing is not None and existing.is_dir:
        want_dir = True
    planner = _Planner(view, chown, chmod, to_uid, to_gid, created_mtime)
    if want_dir:
        planner.parents(real + "/x")
        if existing is None:
            # created by this COPY: a directory source lends it its metadata (fsutil's rule)
            first_dir = next((s for s in sources if s.is_dir and not s.archive), None)
            planner.ensure_dir(real, first_dir.items[0] if first_dir else None)
    for src in sources:
        if src.archive and unpack:
            planner.ops.append(("extract", real.lstrip("/"), src.items[0].host,
                                chown[0] if chown else -1, chown[1] if chown else -1))
        elif src.is_dir:
            for item in src.items[1:]:
                planner.put(posixpath.join(real, item.rel), item)
        else:
            target = posixpath.join(real, src.name) if want_dir else real
            if not want_dir:
                planner.parents(target)
            planner.put(target, src.items[0])
    return CopyPlan(planner.ops, real)


class _Planner:
    """Collects a COPY's operations; each directory is recorded once."""

    def __init__(self, view: StackView, chown: tuple[int, int] | None,
                 chmod: Callable[[int, bool], int] | None, to_uid: IdFn, to_gid: IdFn,
                 created_mtime: int) -> None:
        self.view, self.chown, self.chmod = view, chown, chmod
        self.to_uid, self.to_gid, self.created_mtime = to_uid, to_gid, created_mtime
        self.ops: list[Op] = []
        self.dirs_done: set[str] = set()
        self.links: dict[tuple[int, int], str] = {}  # inode → the first name it got

    def parents(self, path: str) -> None:
        """Record every parent of ``path`` (exclusive) in the diff."""
        cur = ""
        for p in [p for p in path.split("/") if p][:-1]:
            cur = f"{cur}/{p}"
            self.ensure_dir(cur, None)

    def ensure_dir(self, path: str, src: Item | None) -> None:
        """An existing directory with its own metadata (as an overlay copy-up records it),
        else a new one: the source directory's metadata, or 0755 owned by --chown."""
        if path in self.dirs_done or path == "/":
            return
        self.dirs_done.add(path)
        entry = self.view.lookup(path, follow=False)
        rel = path.lstrip("/")
        if entry is not None and entry.is_dir:
            st = entry.st
            uid, gid = entry.ids(self.to_uid, self.to_gid)
            self.ops.append(("mkdir", rel, stat.S_IMODE(st.st_mode), uid, gid,
                             st.st_mtime_ns))
        elif src is not None:
            mode = self.chmod(src.mode, True) if self.chmod else src.mode
            uid, gid = self.chown or (src.uid, src.gid)
            self.ops.append(("mkdir", rel, mode, uid, gid, src.mtime_ns))
        else:
            uid, gid = self.chown or (0, 0)
            self.ops.append(("mkdir", rel, 0o755, uid, gid, self.created_mtime))

    def put(self, target: str, item: Item) -> None:
        uid, gid = self.chown or (item.uid, item.gid)
        rel = target.lstrip("/")
        if item.kind == "dir":
            mode = self.chmod(item.mode, True) if self.chmod else item.mode
            self.dirs_done.add(target)
            self.ops.append(("mkdir", rel, mode, uid, gid, item.mtime_ns))
        elif item.kind == "symlink":
            self.ops.append(("symlink", rel, item.host, uid, gid, item.mtime_ns))
        elif item.inode is not None and item.inode in self.links:
            self.ops.append(("link", rel, self.links[item.inode]))
        else:
            if item.inode is not None:
                self.links[item.inode] = rel
            mode = self.chmod(item.mode, False) if self.chmod else item.mode
            if item.kind == "data":
                self.ops.append(("data", rel, item.host, mode, uid, gid, item.mtime_ns))
            else:
                self.ops.append(("file", rel, item.host, mode, uid, gid, item.mtime_ns))


def source_manifest(sources: Sequence[Source]) -> list:
    """What a COPY's cache key needs of its sources: names, types, modes, owners, sizes,
    contents and link targets; never mtimes or host paths."""
    out = []
    first: dict[tuple[int, int], str] = {}  # inode → "source/rel" of its first name
    for n, src in enumerate(sources):
        if src.key is not None:
            out.append([src.name, src.archive, src.key])
            continue
        items = []
        for i in src.items:
            row: list[object] = [i.rel, i.kind, i.mode, i.uid, i.gid, i.size,
                                 i.digest or (i.host if i.kind in ("symlink", "data") else "")]
            if i.inode is not None:  # (only hard links add a field: other keys stay as they were)
                row.append(first.setdefault(i.inode, f"{n}/{i.rel}"))
            items.append(row)
        out.append([src.name, src.archive, items])
    return out


def stat_mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def tree_source(root: Path, key: object, mtime_ns: int) -> Source:
    """A directory on the host (a git checkout) as one directory source owned by root, all
    times set to ``mtime_ns`` (the commit time: a checkout's own times are arbitrary)."""
    items = [Item("", "dir", str(root), 0o755, 0, 0, mtime_ns)]
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames) + sorted(filenames):
            host = os.path.join(dirpath, name)
            rel = os.path.relpath(host, root)
            st = os.lstat(host)
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                items.append(Item(rel, "symlink", os.readlink(host), mode, 0, 0, mtime_ns))
            elif stat.S_ISDIR(st.st_mode):
                items.append(Item(rel, "dir", host, mode, 0, 0, mtime_ns))
            elif stat.S_ISREG(st.st_mode):
                items.append(Item(rel, "file", host, mode, 0, 0, mtime_ns, st.st_size))
    return Source("", items, key=key)

"""The differential comparison, whichever the peer: an image flattened into a comparable tree
(type, mode, owner, size, content hash, xattrs, link target, hard-link group) and its config,
the differences between ours and a peer's, and the per-peer lists of accepted differences.

Each peer module (``docker``, ``buildah``) lists its accepted differences as ``Ignore``
entries, each with its reason and, where it is a bug of the peer, the upstream fix. A
difference no entry covers fails the test. ``TALLY`` records, per peer and case, which
entries were needed, so the suite's summary can say "N identical, M with ignored
differences" per peer.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbcontainer.layers import apply_layers
from nbcontainer.store import Store

# Not comparable by construction, for every peer: two builds at different moments (created,
# history timestamps), each builder's own history strings (BuildKit's formats are tested in
# tests/builder), and diff_ids, which follow from the layer bytes (file mtimes differ).
NOT_COMPARED = frozenset({"created", "history", "rootfs"})


@dataclass(frozen=True)
class Ignore:
    """One accepted difference of one peer. ``paths`` (an entry and everything under it),
    ``config_keys`` (keys of the image config's ``config``) and ``labels`` say what it
    covers; ``cases`` limits it to some cases; ``only`` limits a tree entry to a difference
    in that one field (``mode``, narrowed further to ``mode_bits``, or ``xattrs``)."""

    what: str
    reason: str
    upstream: str = ""
    paths: frozenset[str] = frozenset()
    config_keys: frozenset[str] = frozenset()
    labels: frozenset[str] = frozenset()
    cases: frozenset[str] = frozenset()
    only: str = ""
    mode_bits: int = 0

    def covers(self, case: str, diff: Difference) -> bool:
        if self.cases and case not in self.cases:
            return False
        if diff.where == "config":
            return diff.key in self.config_keys
        if diff.where == "label":
            return diff.key in self.labels
        if not any(diff.key == p or diff.key.startswith(p + "/") for p in self.paths):
            return False
        return not self.only or self._only_field(diff.ours, diff.theirs)

    def _only_field(self, ours: tuple | None, theirs: tuple | None) -> bool:
        if ours is None or theirs is None or ours[0] != theirs[0]:
            return False
        a, b = _named(ours), _named(theirs)
        if any(a[k] != b[k] for k in a if k != self.only):
            return False
        return self.only != "mode" or not self.mode_bits or \
            (int(a["mode"], 8) ^ int(b["mode"], 8)) & ~self.mode_bits == 0


_FIELDS = {"f": ("type", "mode", "uid", "gid", "size", "sha256", "xattrs", "hardlink"),
           "d": ("type", "mode", "uid", "gid", "xattrs"),
           "l": ("type", "mode", "uid", "gid", "target")}


def _named(entry: tuple) -> dict[str, Any]:
    return dict(zip(_FIELDS[entry[0]], entry, strict=True))


@dataclass(frozen=True)
class Difference:
    where: str  # tree | config | label | image
    key: str
    ours: Any
    theirs: Any

    def __str__(self) -> str:
        return f"{self.where} {self.key}: ours {self.ours!r}, theirs {self.theirs!r}"


# ---------------------------------------------------------------------------- trees
def _xattrs(p: Path) -> tuple[tuple[str, str], ...]:
    try:
        names = os.listxattr(p, follow_symlinks=False)
    except OSError:
        return ()
    return tuple(sorted((n, os.getxattr(p, n, follow_symlinks=False).hex()) for n in names))


def flat_tree(root: Path) -> dict[str, tuple]:
    """path → (type, mode, uid, gid, …) of a flattened image. Directory and file mtimes are
    never compared; hard links show as the first path of their group."""
    entries: list[tuple[str, Path, os.stat_result]] = []
    inodes: dict[int, list[str]] = defaultdict(list)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            p = Path(dirpath) / name
            st = os.lstat(p)
            rel = str(p.relative_to(root))
            entries.append((rel, p, st))
            if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
                inodes[st.st_ino].append(rel)
    out: dict[str, tuple] = {}
    for rel, p, st in entries:
        mode = oct(stat.S_IMODE(st.st_mode))
        if stat.S_ISLNK(st.st_mode):
            out[rel] = ("l", mode, st.st_uid, st.st_gid, os.readlink(p))
        elif stat.S_ISDIR(st.st_mode):
            out[rel] = ("d", mode, st.st_uid, st.st_gid, _xattrs(p))
        else:
            group = min(inodes[st.st_ino]) if st.st_ino in inodes else ""
            out[rel] = ("f", mode, st.st_uid, st.st_gid, st.st_size,
                        hashlib.sha256(p.read_bytes()).hexdigest()[:16], _xattrs(p), group)
    return out


def flatten(layers: list[Path], dest: Path) -> dict[str, tuple]:
    shutil.rmtree(dest, ignore_errors=True)
    apply_layers(dest, layers)
    return flat_tree(dest)


def our_result(store: Store, work: Path, ctx: Path, name: str,
               **kw: Any) -> tuple[dict[str, tuple], dict]:
    """nbcontainer's build of ``ctx`` (``nbcontainer.api.build``): (tree, config)."""
    from nbcontainer.api import build

    img = build(ctx / "Dockerfile", ctx, store=store, **kw)
    layers = [store.blobs.path(layer.digest) for layer in img.manifest.layers]
    tree = flatten(layers, work / f"flat-ours-{name}")
    return tree, json.loads(store.blobs.read(img.manifest.config.digest))


# ---------------------------------------------------------------------------- comparing
def differences(ours: tuple[dict, dict], theirs: tuple[dict, dict]) -> list[Difference]:
    (ot, oc), (tt, tc) = ours, theirs
    out = [Difference("tree", k, ot.get(k), tt.get(k)) for k in sorted(ot.keys() | tt.keys())
           if ot.get(k) != tt.get(k)]
    for k in sorted((oc.keys() | tc.keys()) - NOT_COMPARED - {"config"}):
        if oc.get(k) != tc.get(k):
            out.append(Difference("image", k, oc.get(k), tc.get(k)))
    occ, tcc = oc.get("config") or {}, tc.get("config") or {}
    for k in sorted((occ.keys() | tcc.keys()) - {"Labels"}):
        if occ.get(k) != tcc.get(k):
            out.append(Difference("config", k, occ.get(k), tcc.get(k)))
    ol, tl = occ.get("Labels") or {}, tcc.get("Labels") or {}
    out += [Difference("label", k, ol.get(k), tl.get(k)) for k in sorted(ol.keys() | tl.keys())
            if ol.get(k) != tl.get(k)]
    return out


# peer → case → the `what` of each Ignore that was needed (empty: identical; None: failed)
TALLY: dict[str, dict[str, list[str] | None]] = defaultdict(dict)


def check(peer: str, case: str, ignores: tuple[Ignore, ...], ours: tuple[dict, dict],
          theirs: tuple[dict, dict]) -> list[str]:
    """Assert every difference is covered by one of ``ignores``; record and return the
    entries that were needed."""
    used: list[str] = []
    unexplained = []
    for diff in differences(ours, theirs):
        entry = next((i for i in ignores if i.covers(case, diff)), None)
        if entry is None:
            unexplained.append(str(diff))
        elif entry.what not in used:
            used.append(entry.what)
    TALLY[peer][case] = None if unexplained else used
    assert not unexplained, f"{case}: nbcontainer and {peer} differ:\n  " + \
        "\n  ".join(unexplained)
    return used


def summary(peers: dict[str, tuple[Ignore, ...]], gaps: dict[str, str]) -> list[str]:
    """Per peer: how many builds were identical, how many needed which ignored differences,
    and which differed (``gaps``: nbcontainer's own, known)."""
    lines = []
    for peer, ignores in peers.items():
        cases = TALLY.get(peer, {})
        if not cases:
            continue
        same = sum(1 for used in cases.values() if used == [])
        failed = sorted(c for c, used in cases.items() if used is None)
        known = [c for c in failed if c in gaps]
        other = [c for c in failed if c not in gaps]
        lines.append(f"{peer}: {same} identical, {len(cases) - same - len(failed)} with "
                     f"ignored differences, {len(known)} known nbcontainer gaps, "
                     f"{len(other)} different ({len(cases)} builds compared)")
        for entry in ignores:
            hit = sorted(c for c, used in cases.items() if used and entry.what in used)
            if hit:
                lines.append(f"  - {entry.what} ({len(hit)}: {', '.join(hit[:6])}"
                             f"{', …' if len(hit) > 6 else ''}): {entry.reason}"
                             + (f" [upstream: {entry.upstream}]" if entry.upstream else ""))
        lines += [f"  - nbcontainer gap ({c}): {gaps[c]}" for c in known]
        lines += [f"  - DIFFERENT: {c}" for c in other]
    return lines

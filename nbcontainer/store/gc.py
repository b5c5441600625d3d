"""Store maintenance: ``prune`` drops unreferenced blobs, ``fsck`` re-hashes everything."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ImageFormatError
from ..oci.digest import Digest
from ..oci.manifest import Manifest
from . import locks
from .build_gc import prune_build
from .store import Store


@dataclass
class PruneReport:
    blobs_removed: int = 0
    bytes_freed: int = 0
    temp_files_removed: int = 0
    # the builder's area (<store>/build/), see nbcontainer/builder/prune.py
    snapshots_removed: int = 0
    cache_entries_removed: int = 0


@dataclass
class FsckReport:
    blobs_checked: int = 0
    corrupt: list[tuple[Digest, Digest]] = field(default_factory=list)  # (name, actual)
    quarantined: list[str] = field(default_factory=list)
    missing: list[tuple[Digest, Digest]] = field(default_factory=list)  # (image, blob)
    dangling_tags: list[str] = field(default_factory=list)
    stray_files: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.corrupt or self.missing or self.dangling_tags)


def prune(store: Store, *, remove: Callable[[Path], None] | None = None) -> PruneReport:
    """Drop unreferenced blobs, then the build area's unused snapshots and cache entries.
    ``remove`` deletes a tree the caller may not own (rootless snapshots, see build_gc)."""
    report = PruneReport()
    # Exclusive: no import/build/pull is between writing a blob and recording its image.
    with locks.exclusive(store.gc_lock):
        keep = store.referenced_blobs()
        for dig in list(store.blobs):
            if dig in keep:
                continue
            report.bytes_freed += store.blobs.size(dig)
            store.blobs.delete(dig)
            report.blobs_removed += 1
        # Forget artifacts whose subject just went (their blobs went with it).
        if any(Digest.parse(s) not in keep for s in store.referrers_db.read()):
            with store.referrers_db.update() as referrers:
                for subject in [s for s in referrers if Digest.parse(s) not in keep]:
                    del referrers[subject]
        # Temp files can only belong to killed writers now.
        for p in store.blobs.tmp_dir.iterdir():
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            report.temp_files_removed += 1
        # Still under the lock: snapshots and cache entries that the blobs just removed
        # leave without use, and killed builds' scratch dirs.
        build = prune_build(store, remove)
        report.snapshots_removed = build.snapshots_removed
        report.cache_entries_removed = build.cache_entries_removed
        report.temp_files_removed += build.temp_removed
    return report


def fsck(store: Store, *, quarantine: bool = True) -> FsckReport:
    report = FsckReport()
    with store.operation():
        for alg_dir in sorted(p for p in store.blobs.root.iterdir()):
            for p in sorted(alg_dir.iterdir()) if alg_dir.is_dir() else ():
                try:
                    Digest.parse(f"{alg_dir.name}:{p.name}")
                except Exception:
                    report.stray_files.append(str(p.relative_to(store.home)))
        for dig in list(store.blobs):
            report.blobs_checked += 1
            actual = store.blobs.hash_file(dig)
            if actual != dig:
                report.corrupt.append((dig, actual))
                if quarantine:
                    dest = store.blobs.quarantine(dig, store.quarantine_dir)
                    report.quarantined.append(str(dest))
        data = store.refs.read()
        for tag, target in data.tags.items():
            if target not in data.images:
                report.dangling_tags.append(tag)
        for dig_s in data.images:
            dig = Digest.parse(dig_s)
            if not store.blobs.has(dig):
                report.missing.append((dig, dig))
                continue
            try:
                parsed = store.read_manifest(dig)
            except ImageFormatError:
                report.missing.append((dig, dig))
                continue
            if isinstance(parsed, Manifest):
                needed = [parsed.config, *parsed.layers]
            else:
                needed = list(parsed.manifests)
            for desc in needed:
                if desc.data is None and not store.blobs.has(desc.digest):
                    report.missing.append((dig, desc.digest))
        for subject, entries in store.referrers_db.read().items():  # attached artifacts
            for entry in entries:
                art = Digest.parse(entry["digest"])
                if not store.blobs.has(art):
                    report.missing.append((Digest.parse(subject), art))
    return report

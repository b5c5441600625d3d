"""``prune`` also cleans the builder's area: unused snapshots, dead cache entries, the temp dirs
of killed builds, snapshots from an earlier boot; what images still use survives."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from nbcontainer.store import Store
from nbcontainer.store.gc import prune
from nbcontainer.store.snapshots import Snapshots, chain_ids, trusted
from tests.support.marks import needs_root

pytestmark = needs_root


def _snapshot_dir(store: Store, img) -> Path:
    chain = chain_ids(list(img.config.diff_ids))[-1]
    [found] = list((store.home / "build").glob(f"snapshots-*/diff/{chain.hex[:24]}"))
    return found


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_prune_cleans_build_area(do_build, bstore: Store, monkeypatch) -> None:
    # clamped mtimes: a RUN that runs again makes the same layer (else it differs by a second)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    a = do_build("FROM busybox\nRUN echo a > /a\n", tags=["a:1"])
    b = do_build("FROM busybox\nRUN echo b > /b\n", tags=["b:1"])
    snap_a, snap_b = _snapshot_dir(bstore, a), _snapshot_dir(bstore, b)
    assert trusted(snap_a) and trusted(snap_b)
    cache = bstore.home / "build" / "cache"
    entries_before = set(cache.glob("*/*.json"))
    tmp = snap_a.parent.parent / "tmp"
    dead = tmp / f"{_dead_pid()}-abcdef"
    (dead / "upper").mkdir(parents=True)
    live = tmp / f"pub-{os.getpid()}-123456"
    live.mkdir()
    stray = next(iter(entries_before)).with_name(".deadbeef.json.1234")
    stray.write_text("{")

    bstore.remove("b:1")
    report = prune(bstore)

    assert not snap_b.exists() and snap_a.exists()
    assert not dead.exists() and live.exists() and not stray.exists()
    assert report.snapshots_removed >= 1 and report.cache_entries_removed >= 1
    entries_after = set(cache.glob("*/*.json"))
    assert entries_after < entries_before  # b's RUN entry named a blob prune deleted
    # What survives still works: a's rebuild is fully cached, b's rebuild runs again.
    assert do_build("FROM busybox\nRUN echo a > /a\n").digest == a.digest
    again = do_build("FROM busybox\nRUN echo b > /b\n", tags=["b:1"])
    assert again.config.diff_ids == b.config.diff_ids
    assert _snapshot_dir(bstore, again).exists()


def test_snapshot_from_another_boot_is_not_trusted(do_build, bstore: Store) -> None:
    a = do_build("FROM busybox\nRUN echo a > /a\n", tags=["a:1"])
    snap = _snapshot_dir(bstore, a)
    meta = json.loads((snap / "meta.json").read_text())
    (snap / "meta.json").write_text(json.dumps({**meta, "boot": "an-earlier-boot"}))
    assert not trusted(snap)
    tag = snap.parent.parent.name.removeprefix("snapshots-")
    snaps = Snapshots(bstore, None, tag)  # type: ignore[arg-type]
    chain = chain_ids(list(a.config.diff_ids))[-1]
    assert snaps.diff(chain) is None
    # A build on top re-creates the chain from the blobs instead of stacking the old tree.
    img = do_build("FROM a:1\nRUN cat /a > /copy\n", tags=["c:1"])
    assert len(img.manifest.layers) == len(a.manifest.layers) + 1
    prune(bstore)
    assert not snap.exists()

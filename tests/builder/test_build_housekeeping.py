"""Per-RUN bookkeeping is deferred and batched (janitor thread, recycled scratch dirs), but a
build that returns, succeeded or failed, has written every cache entry and left no scratch."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbcontainer.errors import BuildError
from nbcontainer.progress import Collector
from nbcontainer.store import Store
from tests.support.builds import statuses
from tests.support.marks import needs_root

pytestmark = needs_root

DOCKERFILE = "FROM busybox\nRUN true\nRUN echo x > /x\nRUN true second\nRUN rm /x\n"


def scratch_left(store: Store) -> list[Path]:
    return sorted((store.home / "build").glob("snapshots-*/tmp/*"))


def test_build_leaves_no_scratch_and_all_entries_on_disk(do_build, bstore: Store) -> None:
    img = do_build(DOCKERFILE)
    assert scratch_left(bstore) == []
    # Empty RUNs add history only; the two that change files add one layer each.
    assert len(img.manifest.layers) == 3
    assert [h.empty_layer for h in img.config.history[-4:]] == [True, False, True, False]
    entries = list((bstore.home / "build" / "cache").glob("*/*.json"))
    assert len(entries) >= 4
    ev = Collector()  # a new builder reads the entries from disk: everything hits
    assert do_build(DOCKERFILE, progress=ev).digest == img.digest
    assert statuses(ev) == ["cached"] * 4


def test_failed_build_keeps_earlier_steps_and_no_scratch(do_build, bstore: Store) -> None:
    with pytest.raises(BuildError):
        do_build("FROM busybox\nRUN echo a > /a\nRUN true\nRUN exit 3\n")
    assert scratch_left(bstore) == []
    ev = Collector()
    with pytest.raises(BuildError):
        do_build("FROM busybox\nRUN echo a > /a\nRUN true\nRUN exit 3\n", progress=ev)
    assert statuses(ev)[:2] == ["cached", "cached"]

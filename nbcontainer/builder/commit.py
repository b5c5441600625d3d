"""Turning a step's changes into the next layer: written once into the store, kept as a
snapshot (the upper or diff dir is itself a valid overlay lower), recorded in the history.
An empty change adds only a history entry, as BuildKit drops empty layers."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..store.snapshots import chain_ids
from .stage import StageRun
from .state import ImageState, LayerRef

BUILDKIT = " # buildkit"  # BuildKit's mark on the history of COPY/ADD/RUN

if TYPE_CHECKING:
    from ..sandbox.messages import CopyOp as Op


def commit_dir(run: StageRun, state: ImageState, tree: Path, created_by: str, *,
               full_tree: Path | None = None) -> ImageState:
    """Write ``tree`` (an upper or diff dir) as the next layer of ``state``; ``full_tree``
    (rungs that copy trees) is the whole tree after the step, kept as the next snapshot."""
    if not os.listdir(tree):
        return run.history(state, created_by, True)
    session = run.session
    blobs = session.store.blobs
    tmp = blobs.tmp_dir / f"layer-{os.getpid()}-{threading.get_ident()}-{time.monotonic_ns()}"
    try:
        info = session.fileops.write_layer(tree, tmp, run.target.epoch)
        blobs.publish(tmp, info.digest)
    finally:
        tmp.unlink(missing_ok=True)
    layer = LayerRef(info.digest, info.diff_id, info.size, info.media_type)
    new = replace(state, layers=(*state.layers, layer))
    chain = chain_ids([lr.diff_id for lr in new.layers])[-1]
    if full_tree is not None:
        session.snapshots.publish_flat(chain, full_tree)
    else:
        session.snapshots.publish_diff(chain, tree)
    return run.history(new, created_by, False)


def commit_ops(run: StageRun, state: ImageState, ops: Sequence[Op], created_by: str, *,
               buildkit: bool) -> ImageState:
    """Carry out a COPY plan on a fresh diff dir and commit it."""
    session = run.session
    work = session.snapshots.scratch()
    try:
        diff = work / "fs"
        diff.mkdir()
        os.chmod(diff, root_mode(run, state))
        session.fileops.apply(diff, ops)
        return commit_dir(run, state, diff, created_by + (BUILDKIT if buildkit else ""))
    finally:
        session.scratch.discard(work)


def root_mode(run: StageRun, state: ImageState, lowers: list[Path] | None = None) -> int:
    """The mode of the image's ``/`` (a diff dir's root must not change it). ``lowers``:
    the state's lower dirs when the caller has them already (top first)."""
    if not state.layer_pairs:
        return 0o755
    if lowers is None:
        lowers = run.session.snapshots.lowers(state.layer_pairs)
    if lowers:
        return os.stat(lowers[-1]).st_mode & 0o7777
    return 0o755

"""``COPY`` and ``ADD``: sources (the context, another stage or image, URLs, git, heredocs)
planned onto the stage's tree (``copyplan``) and committed as one layer.

``--link`` plans the layer over an empty tree (BuildKit copies onto scratch and rebases it
with a MergeOp), so it depends only on the instruction and its sources: its own cache entry
(a one-layer state) leaves the parent chain out, and a changed base reuses it.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ...dockerfile import Add, Copy
from ...dockerfile.instructions import add_source_kind
from ...errors import BuildError
from ...store.buildcache import step_key
from .. import copyplan
from .. import history as hist
from ..commit import BUILDKIT, commit_ops
from ..fsview import StackView
from ..reporter import Step
from ..stage import StageRun
from ..state import ImageState

Result = tuple[ImageState, str]


@dataclass
class _Sources:
    """What a COPY/ADD reads, and the part of its cache key that names it."""

    items: list[copyplan.Source]
    key: Any
    missed: str = ""  # a step key already looked up (and missed): not looked up twice


def copy_step(run: StageRun, state: ImageState, key: str, instr: Copy | Add,
              fields: dict[str, Any]) -> Result:
    created_by = hist.copy_created_by(instr)
    with run.step(created_by.removesuffix(BUILDKIT)) as step:
        dest = copyplan.dest_path(instr.dest, state.config.working_dir or "/")
        work: Path | None = None
        try:
            from_ = instr.from_ if isinstance(instr, Copy) else ""
            if from_:
                found = _stage_sources(run, key, instr, fields, dest, from_, step)
                if isinstance(found, tuple):
                    return found  # a cache hit before the source stage was read
                sources = found
            else:
                if any(add_source_kind(src) != "local" for src in instr.sources):
                    work = run.session.snapshots.scratch()  # downloads and git checkouts
                sources = _context_sources(run, instr, dest, work)
            multiple = len(instr.sources) + len(instr.contents) > 1
            if multiple and not dest.endswith("/"):
                raise BuildError("When using COPY with more than one source file, the "
                                 "destination must be a directory and end with a /")
            if instr.link:
                return _copy_link(run, state, key, instr, fields, dest, sources, multiple,
                                  created_by, step)
            new_key = step_key(key, instr.keyword, [fields, dest, sources.key])
            cached = run.cached(new_key) if new_key != sources.missed else None
            if cached is not None:
                step.cached()
                return cached, new_key
            new = _commit(run, state, instr, sources.items, dest, StackView(run.lowers(state)),
                          multiple, created_by)
        finally:
            if work is not None:
                run.session.fileops.remove(work)
        run.record(new_key, new)
        return new, new_key


def _stage_sources(run: StageRun, key: str, instr: Copy | Add, fields: dict[str, Any],
                   dest: str, from_: str, step: Step) -> _Sources | Result:
    """``COPY --from``: entries of another stage or image (with their owners)."""
    src_state, src_stage_key = run.resolve_from(from_)
    src_key = ["from", src_stage_key, list(instr.sources)]
    missed = ""
    if not instr.link:  # a hit needs no view of the source stage, whose blobs may still be
        # in the registry (--cache-from fetches them lazily)
        new_key = step_key(key, instr.keyword, [fields, dest, src_key])
        cached = run.cached(new_key)
        if cached is not None:
            step.cached()
            return cached, new_key
        missed = new_key
    view = StackView(run.lowers(src_state))
    parents = isinstance(instr, Copy) and instr.parents
    session = run.session
    items = copyplan.view_sources(view, instr.sources, session.to_uid, session.to_gid,
                                  instr.excludes, parents)
    return _Sources(items, src_key, missed)


def _context_sources(run: StageRun, instr: Copy | Add, dest: str,
                     work: Path | None) -> _Sources:
    """Context paths, URLs and git repositories (ADD, fetched into ``work``), heredocs."""
    kinds = {s: add_source_kind(s) for s in instr.sources}
    local = [s for s in instr.sources if kinds[s] == "local"]
    remote = [s for s in instr.sources if kinds[s] != "local"]
    if remote and not isinstance(instr, Add):
        raise BuildError("source can't be a URL for COPY",
                         hint="use ADD for URLs and git repositories")
    if isinstance(instr, Add) and instr.checksum:
        check_checksum(instr.checksum, local, len(instr.sources))
    parents = isinstance(instr, Copy) and instr.parents
    items = copyplan.context_sources(run.ctx, local, instr.excludes, parents)
    if isinstance(instr, Add):
        if instr.unpack is not False:
            for s in items:
                if len(s.items) == 1 and s.items[0].kind == "file" and \
                        copyplan.is_archive(s.items[0].host):
                    s.archive = True
        from ..sources.git import git_source  # (urllib, email, subprocess: only for ADD URLs)
        from ..sources.http import download

        for src in remote:
            assert work is not None
            if kinds[src] == "url":
                items.append(download(src, dest, work, checksum=instr.checksum,
                                      unpack=instr.unpack))
            else:
                items.append(git_source(src, work, checksum=instr.checksum,
                                        keep_git_dir=instr.keep_git_dir))
    for c in instr.contents:
        data = c.data.encode()
        items.append(copyplan.Source(posixpath.basename(c.path), [copyplan.Item(
            "", "data", c.data, 0o644, 0, 0, 0, len(data), hashlib.sha256(data).hexdigest())]))
    return _Sources(items, ["context", copyplan.source_manifest(items)])


def _commit(run: StageRun, state: ImageState, instr: Copy | Add,
            sources: Sequence[copyplan.Source], dest: str, view: StackView, multiple: bool,
            created_by: str, chown: tuple[int, int] | None = None) -> ImageState:
    """Plan the copy over ``view`` and commit it on top of ``state``."""
    if chown is None and instr.chown:
        chown = copyplan.resolve_chown(instr.chown, view)
    session = run.session
    plan = copyplan.plan_copy(sources, dest, view, chown=chown,
                              chmod=copyplan.parse_chmod(instr.chmod), to_uid=session.to_uid,
                              to_gid=session.to_gid, unpack=isinstance(instr, Add),
                              created_mtime=run.now_ns(), multiple=multiple)
    return commit_ops(run, state, plan.ops, created_by.removesuffix(BUILDKIT), buildkit=True)


def _copy_link(run: StageRun, state: ImageState, key: str, instr: Copy | Add,
               fields: dict[str, Any], dest: str, sources: _Sources, multiple: bool,
               created_by: str, step: Step) -> Result:
    chown = None
    if instr.chown:  # names are still resolved in the target image (BuildKit does too)
        chown = copyplan.resolve_chown(instr.chown, StackView(run.lowers(state)))
    link_key = step_key("", f"{instr.keyword} --link", [fields, dest, sources.key, chown])
    new_key = step_key(key, "link", link_key)
    cached = run.cached(new_key)
    if cached is not None:
        step.cached()
        return cached, new_key
    linked = run.cached(link_key)
    if linked is not None:
        step.cached()
        new = replace(state, layers=(*state.layers, *linked.layers))
        new = run.history(new, created_by, not linked.layers)
    else:
        empty = StackView([run.session.snapshots.empty_dir()])
        new = _commit(run, state, instr, sources.items, dest, empty, multiple, created_by,
                      chown)
        added = new.layers[len(state.layers):]
        run.record(link_key, replace(state, layers=added, history=()))
    run.record(new_key, new)
    return new, new_key


def check_checksum(checksum: str, local: Sequence[str], count: int) -> None:
    """``ADD --checksum``: one http(s) or git source; ``sha256:<hex>`` for URLs."""
    if count != 1:
        raise BuildError("checksum can't be specified for multiple sources")
    if local:
        raise BuildError(f"checksum can't be specified for non-HTTP(S)/git source "
                         f"{local[0]!r}")
    if not re.fullmatch(r"sha256:[0-9a-f]{64}|[0-9a-f]{7,64}", checksum):
        raise BuildError(f"invalid checksum {checksum!r}",
                         hint="use sha256:<64 hex digits> for URLs, a commit id for git")

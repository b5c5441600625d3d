"""``RUN --mount``: turn the Dockerfile's mounts into sandbox mounts, keys and cleanups.

- ``cache``: a directory in the store (``store/cache_mounts.py``), kept across builds, never
  part of a layer (mount targets live in the sandbox's stub layer, not the upper dir) nor of
  a step's cache key (only the mount's spec is).
- ``bind``: a context path (filtered by .dockerignore), a stage or an image; read-only unless
  ``rw``, and then on a throwaway copy so writes are discarded.
- ``tmpfs``, ``secret``: handed to the sandbox as they are (secrets live in memory only).
- ``ssh``: a per-build agent proxy socket (see ``ssh.py``).

Resolving happens before the step's cache lookup (the mounts' specs key the step); the
costly parts (locks, cache dir creation, rw copies) are deferred to a cache miss.
"""

from __future__ import annotations

import os
import posixpath
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..dockerfile import Run
from ..errors import BuildError
from ..layers.rootfs import resolve_in_root as chroot_resolve
from ..store.cache_mounts import CacheMountStore, cache_mounts_dir, copy_tree
from ..store.snapshots import chain_ids
from . import copyplan

if TYPE_CHECKING:
    from ..sandbox import Mount, RunResult, RunSpec
    from .stage import StageRun

SSH_TARGET = "/run/buildkit/ssh_agent.{}"
MOUNT_TYPES = ("bind", "cache", "tmpfs", "secret", "ssh")

Cleanups = list[Callable[[], None]]
Make = Callable[[Cleanups], "Mount"]


@dataclass
class Prepared:
    """A RUN's mounts, resolved before its cache lookup; ``deferred`` makers run at a miss."""

    mounts: list[Mount] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    deferred: list[Make] = field(default_factory=list)
    keys: list[Any] = field(default_factory=list)  # what the mounts add to the step's key


def prepare(run: StageRun, instr: Run, mounts: list[Mount]) -> Prepared:
    """Resolve ``instr``'s mounts; ``mounts`` (the heredoc mounts the caller already has)
    is kept first."""
    prep = Prepared(mounts=mounts)
    ssh_n = 0
    for m in instr.mounts:
        where = f"RUN --mount={m.raw}" if m.raw else f"RUN --mount=type={m.type}"
        if m.type not in MOUNT_TYPES:
            raise BuildError(f"{where}: unsupported mount type {m.type!r}")
        if m.type not in ("secret", "ssh") and not m.target:
            raise BuildError(f"{where}: a target is required")
        target = _abs_target(m.target) if m.target else ""
        if m.type == "secret":
            _secret(run, m, target, where, prep)
        elif m.type == "ssh":
            ssh_n += _ssh(run, m, target or SSH_TARGET.format(ssh_n), prep)
        elif m.type == "tmpfs":
            from ..sandbox import TmpfsMount

            prep.mounts.append(TmpfsMount(target, m.size))
            prep.keys.append(["tmpfs", target, m.size])
        elif m.type == "bind":
            _bind(run, m.from_, m.source, target, not m.readonly, where, prep)
        else:
            _cache(run, m, target, where, prep)
    return prep


def run_with_mounts(run: StageRun, spec: RunSpec, prep: Prepared) -> RunResult:
    """Acquire the deferred mounts, run ``spec`` in the sandbox, release everything."""
    cleanups: Cleanups = []
    try:
        spec.mounts = [*spec.mounts, *(make(cleanups) for make in prep.deferred)]
        return run.session.executor.run(spec)
    finally:
        for fn in reversed(cleanups):
            fn()


# ---------------------------------------------------------------------- secret, ssh


def _secret(run: StageRun, m: Any, target: str, where: str, prep: Prepared) -> None:
    sid = m.id or posixpath.basename(m.target)
    if not sid:
        raise BuildError(f"{where}: a secret needs an id or a target")
    data = run.session.options.secrets.get(sid)
    if data is None:
        if m.required:
            raise BuildError(f"secret {sid} not found",
                             hint="pass it with --secret id=ID,src=FILE")
        return
    from ..sandbox import SecretMount

    if m.env:
        prep.env[m.env] = data.decode("utf-8", "replace")
    if m.target or not m.env:
        prep.mounts.append(SecretMount(target or f"/run/secrets/{sid}", data,
                                       m.mode if m.mode is not None else 0o400,
                                       m.uid or 0, m.gid or 0))
    prep.keys.append(["secret", sid, target, m.env])  # the value never keys a step


def _ssh(run: StageRun, m: Any, target: str, prep: Prepared) -> int:
    """Returns 1 when an agent socket was mounted (they are numbered)."""
    sid = m.id or "default"
    sources = run.session.options.ssh.get(sid)
    if sources is None:
        if m.required:
            raise BuildError(f"ssh agent {sid!r} not found",
                             hint=f"pass it with --ssh {sid}[=SOCKET|KEY,…]")
        return 0
    proxy = run.session.agents.proxy(sid, tuple(sources),
                                     m.mode if m.mode is not None else 0o600,
                                     m.uid or 0, m.gid or 0)
    from ..sandbox import BindMount

    prep.mounts.append(BindMount(proxy.path, target, readonly=False))
    prep.env.setdefault("SSH_AUTH_SOCK", target)
    prep.keys.append(["ssh", sid, target])
    return 1


# ---------------------------------------------------------------------- bind


def _source_root(run: StageRun, from_: str) -> tuple[Path, str]:
    """The tree of a stage or image, extracted flat (a bind mount needs one directory)."""
    state, key = run.resolve_from(from_)
    snapshots = run.session.snapshots
    chain = chain_ids([lr.diff_id for lr in state.layers])
    root = snapshots.materialize(state.layer_pairs, chain[-1]) if chain \
        else snapshots.empty_dir()
    return root, key


def _bind(run: StageRun, from_: str, source: str, target: str, rw: bool, where: str,
          prep: Prepared) -> None:
    from ..sandbox import BindMount

    rel = posixpath.normpath("/" + (source or ".")).lstrip("/")
    if from_:
        root, src_key = _source_root(run, from_)
        host = resolve_in_root(root, rel)
        if host is None:
            raise BuildError(f'{where}: failed to compute cache key: "/{rel}" not found '
                             f"in {from_}")
        prep.keys.append(["bind", src_key, rel, target, rw])

        def make(cleanups: Cleanups) -> Mount:
            if not rw:
                return BindMount(host, target, readonly=True)
            return BindMount(_copy_of(run, host, cleanups), target, readonly=False)
        prep.deferred.append(make)
        return
    # The context as BuildKit would have sent it: .dockerignore applied, no symlink
    # leading out of it, so the sandbox sees a tree built from the context's items.
    sources = copyplan.context_sources(run.ctx, [rel or "."])
    items = [it for s in sources for it in s.items]
    prep.keys.append(["bind", "context", copyplan.source_manifest(sources), target, rw])

    def make_ctx(cleanups: Cleanups) -> Mount:
        work = run.session.snapshots.scratch()
        cleanups.append(lambda: run.session.fileops.remove(work))
        top = _tree_from_items(items, work / "src", link=not rw)
        return BindMount(top, target, readonly=not rw)
    prep.deferred.append(make_ctx)


def _copy_of(run: StageRun, host: Path, cleanups: Cleanups) -> Path:
    """A throwaway copy of ``host`` for an ``rw`` bind, removed after the RUN."""
    work = run.session.snapshots.scratch()
    cleanups.append(lambda: run.session.fileops.remove(work))
    dest = work / "src"
    copy_tree(host, dest, preserve_owner=not run.session.rootless)
    return dest


# ---------------------------------------------------------------------- cache


def _cache(run: StageRun, m: Any, target: str, where: str, prep: Prepared) -> None:
    from ..sandbox import BindMount

    sharing = m.sharing or "shared"
    if sharing not in ("shared", "private", "locked"):
        raise BuildError(f"{where}: invalid sharing {sharing!r}",
                         hint="use shared, private or locked")
    cid = m.id or target
    seed: Path | None = None
    if m.from_:
        root, _ = _source_root(run, m.from_)
        rel = posixpath.normpath("/" + (m.source or ".")).lstrip("/")
        seed = resolve_in_root(root, rel)
        if seed is None:
            raise BuildError(f'{where}: "/{rel}" not found in {m.from_}')
    mode = m.mode if m.mode is not None else 0o755
    idmap = run.session.executor.idmap
    uid, gid = idmap.to_host_uid(m.uid or 0), idmap.to_host_gid(m.gid or 0)
    readonly = bool(m.readonly)  # the frontend defaults it to False for cache mounts
    # Only the mount's spec keys the step: the cache's contents never do.
    prep.keys.append(["cache", cid, target, readonly])
    store = CacheMountStore(cache_mounts_dir(run.session.store))
    preserve = not run.session.rootless

    def make(cleanups: Cleanups) -> Mount:
        path, release = store.acquire(cid, sharing, readonly=readonly, mode=mode, uid=uid,
                                      gid=gid, seed=seed, preserve_owner=preserve)
        cleanups.append(release)
        return BindMount(path, target, readonly=readonly)
    prep.deferred.append(make)


def _abs_target(target: str) -> str:
    # BuildKit resolves a relative target against "/", not the WORKDIR
    return posixpath.normpath("/" + target) if not target.startswith("/") else \
        posixpath.normpath(target)


def resolve_in_root(root: Path, rel: str) -> Path | None:
    """``rel`` looked up in ``root`` as a chroot would (symlinks can't leave ``root``);
    None when missing."""
    found = chroot_resolve(root, rel)
    return None if found is None else root / found


def _tree_from_items(items: Sequence[copyplan.Item], dest: Path, *, link: bool) -> Path:
    """Rebuild a context path from its items under ``dest``: hard links when read-only
    (cheap), copies otherwise (writes must not reach the context)."""
    top = items[0] if items else None
    if top is None or top.kind != "dir":
        if top is None:
            dest.mkdir()
            return dest
        _make_item(top, dest, link)
        return dest
    dest.mkdir(mode=0o700)
    for it in items[1:]:
        _make_item(it, dest / it.rel, link)
    for it in reversed(items):  # dirs last, deepest first: their modes may forbid writes
        if it.kind == "dir":
            os.chmod(dest / it.rel if it.rel else dest, it.mode)
    return dest


def _make_item(it: copyplan.Item, path: Path, link: bool) -> None:
    if it.kind == "dir":
        path.mkdir(mode=0o700, exist_ok=True)
    elif it.kind == "symlink":
        os.symlink(it.host, path)
    elif it.kind == "file":
        if link:
            try:
                os.link(it.host, path)
                return
            except OSError:
                pass  # another filesystem
        shutil.copy2(it.host, path)

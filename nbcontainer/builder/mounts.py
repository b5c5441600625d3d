"""``RUN --mount``: turn the Dockerfile's mounts into sandbox mounts, keys and cleanups.

- ``cache``: a directory in the store (``build/cache-mounts``), kept across builds, never
  part of a layer (mount targets live in the sandbox's stub layer, not the upper dir) nor of
  a step's cache key (only the mount's spec is). ``sharing`` maps onto ``flock``: shared =
  shared lock on instance 0; locked = exclusive lock on instance 0 (blocks other builds);
  private = the first instance nobody holds (BuildKit makes a new one per concurrent writer).
- ``bind``: a context path (filtered by .dockerignore), a stage or an image; read-only unless
  ``rw``, and then on a throwaway copy so writes are discarded.
- ``tmpfs``, ``secret``: handed to the sandbox as they are (secrets live in memory only).
- ``ssh``: a per-build unix socket proxied to ``$SSH_AUTH_SOCK`` or to an ``ssh-agent`` loaded
  with the given keys, so ``mode``/``uid``/``gid`` never touch the user's own agent socket.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import shutil
import socket
import stat
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..dockerfile import BuildPlan, Run
from ..errors import BuildError
from ..layers.rootfs import resolve_in_root as chroot_resolve
from ..store.cache_mounts import CacheMountStore, cache_mounts_dir, copy_tree
from . import copy as copymod
from .context import BuildContext

if TYPE_CHECKING:
    from .builder import Builder, StageResult

SSH_TARGET = "/run/buildkit/ssh_agent.{}"


@dataclass
class Prepared:
    """A RUN's mounts, resolved before its cache lookup; the costly parts (locks, cache dir
    creation, rw copies) are deferred to :meth:`MountManager.run`, i.e. to a cache miss."""

    mounts: list[Any] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    deferred: list[Callable[[list[Callable[[], None]]], Any]] = field(default_factory=list)


class MountManager:
    def __init__(self, builder: Builder) -> None:
        self.b = builder
        self._ssh: dict[tuple, _AgentProxy] = {}
        self._lock = threading.Lock()
        # ssh proxies and agents must not outlive the builder, whoever forgets close()
        self._finalizer = weakref.finalize(self, _close_all, self._ssh)

    def close(self) -> None:
        self._finalizer()

    # ------------------------------------------------------------------ resolve

    def prepare(self, plan: BuildPlan, ctx: BuildContext, results: Mapping[int, StageResult],
                instr: Run, mounts: list[Any]) -> tuple[list, Prepared]:
        """(key parts, Prepared) for ``instr``'s mounts; ``mounts`` (the heredoc mounts the
        caller already has) is extended in place."""
        from ..sandbox import BindMount, SecretMount, TmpfsMount

        prep = Prepared(mounts=mounts)
        keys: list = []
        ssh_n = 0
        for m in instr.mounts:
            where = f"RUN --mount={m.raw}" if m.raw else f"RUN --mount=type={m.type}"
            if m.type not in ("bind", "cache", "tmpfs", "secret", "ssh"):
                raise BuildError(f"{where}: unsupported mount type {m.type!r}")
            if m.type not in ("secret", "ssh") and not m.target:
                raise BuildError(f"{where}: a target is required")
            target = _abs_target(m.target) if m.target else ""
            if m.type == "secret":
                sid = m.id or posixpath.basename(m.target)
                if not sid:
                    raise BuildError(f"{where}: a secret needs an id or a target")
                data = self.b.secrets.get(sid)
                if data is None:
                    if m.required:
                        raise BuildError(f"secret {sid} not found",
                                         hint="pass it with --secret id=ID,src=FILE")
                    continue
                if m.env:
                    prep.env[m.env] = data.decode("utf-8", "replace")
                if m.target or not m.env:
                    prep.mounts.append(SecretMount(target or f"/run/secrets/{sid}", data,
                                                   m.mode if m.mode is not None else 0o400,
                                                   m.uid or 0, m.gid or 0))
                keys.append(["secret", sid, target, m.env])  # the value never keys a step
            elif m.type == "ssh":
                sid = m.id or "default"
                sources = self.b.ssh.get(sid)
                if sources is None:
                    if m.required:
                        raise BuildError(f"ssh agent {sid!r} not found",
                                         hint=f"pass it with --ssh {sid}[=SOCKET|KEY,…]")
                    continue
                target = target or SSH_TARGET.format(ssh_n)
                ssh_n += 1
                proxy = self._proxy(sid, tuple(sources), m.mode if m.mode is not None else 0o600,
                                    m.uid or 0, m.gid or 0)
                prep.mounts.append(BindMount(proxy.path, target, readonly=False))
                prep.env.setdefault("SSH_AUTH_SOCK", target)
                keys.append(["ssh", sid, target])
            elif m.type == "tmpfs":
                prep.mounts.append(TmpfsMount(target, m.size))
                keys.append(["tmpfs", target, m.size])
            elif m.type == "bind":
                key, make = self._bind(plan, ctx, results, m.from_, m.source, target,
                                       not m.readonly, where)
                keys.append(key)
                prep.deferred.append(make)
            else:  # cache
                key, make = self._cache(plan, results, m, target, where)
                keys.append(key)
                prep.deferred.append(make)
        return keys, prep

    def run(self, spec: Any, prep: Prepared) -> Any:
        """Acquire the deferred mounts, run ``spec`` in the sandbox, release everything."""
        cleanups: list[Callable[[], None]] = []
        try:
            for make in prep.deferred:
                spec.mounts.append(make(cleanups))
            return self.b.sandbox.run(spec)
        finally:
            for fn in reversed(cleanups):
                fn()

    # ------------------------------------------------------------------ bind

    def _source_root(self, plan: BuildPlan, results: Mapping[int, StageResult],
                     from_: str) -> tuple[Path, str]:
        from ..store.snapshots import chain_ids

        state, key = self.b._resolve_from(plan, from_, results)
        chain = chain_ids([lr.diff_id for lr in state.layers])
        root = self.b.snapshots.materialize(state.layer_pairs, chain[-1]) if chain \
            else self.b.snapshots.empty_dir()
        return root, key

    def _bind(self, plan: BuildPlan, ctx: BuildContext, results: Mapping[int, StageResult],
              from_: str, source: str, target: str, rw: bool,
              where: str) -> tuple[list, Callable[[list], Any]]:
        from ..sandbox import BindMount

        rel = posixpath.normpath("/" + (source or ".")).lstrip("/")
        if from_:
            root, src_key = self._source_root(plan, results, from_)
            host = resolve_in_root(root, rel)
            if host is None:
                raise BuildError(f'{where}: failed to compute cache key: "/{rel}" not found '
                                 f"in {from_}")
            key = ["bind", src_key, rel, target, rw]

            def make(cleanups: list[Callable[[], None]]) -> BindMount:
                if not rw:
                    return BindMount(host, target, readonly=True)
                return BindMount(self._copy_of(host, cleanups), target, readonly=False)
            return key, make
        # The context as BuildKit would have sent it: .dockerignore applied, no symlink
        # leading out of it, so the sandbox sees a tree built from the context's items.
        sources = copymod.context_sources(ctx, [rel or "."])
        items = [it for s in sources for it in s.items]
        key = ["bind", "context", copymod.source_manifest(sources), target, rw]

        def make_ctx(cleanups: list[Callable[[], None]]) -> BindMount:
            work = self.b.snapshots.scratch()
            cleanups.append(lambda: self.b.privileged.remove(work))
            top = _tree_from_items(items, work / "src", link=not rw)
            return BindMount(top, target, readonly=not rw)
        return key, make_ctx

    def _copy_of(self, host: Path, cleanups: list[Callable[[], None]]) -> Path:
        """A throwaway copy of ``host`` for an ``rw`` bind, removed after the RUN."""
        work = self.b.snapshots.scratch()
        cleanups.append(lambda: self.b.privileged.remove(work))
        dest = work / "src"
        copy_tree(host, dest, preserve_owner=not self.b.sandbox.rootless)
        return dest

    # ------------------------------------------------------------------ cache

    def _cache(self, plan: BuildPlan, results: Mapping[int, StageResult], m: Any, target: str,
               where: str) -> tuple[list, Callable[[list], Any]]:
        from ..sandbox import BindMount

        sharing = m.sharing or "shared"
        if sharing not in ("shared", "private", "locked"):
            raise BuildError(f"{where}: invalid sharing {sharing!r}",
                             hint="use shared, private or locked")
        cid = m.id or target
        seed: Path | None = None
        if m.from_:
            root, _ = self._source_root(plan, results, m.from_)
            rel = posixpath.normpath("/" + (m.source or ".")).lstrip("/")
            seed = resolve_in_root(root, rel)
            if seed is None:
                raise BuildError(f'{where}: "/{rel}" not found in {m.from_}')
        mode = m.mode if m.mode is not None else 0o755
        uid = self.b._idmap.to_host_uid(m.uid or 0)
        gid = self.b._idmap.to_host_gid(m.gid or 0)
        readonly = m.readonly  # the frontend defaults it to False for cache mounts
        # Only the mount's spec keys the step: the cache's contents never do.
        key = ["cache", cid, target, bool(readonly)]
        store = CacheMountStore(cache_mounts_dir(self.b.store))

        def make(cleanups: list[Callable[[], None]]) -> BindMount:
            path, release = store.acquire(cid, sharing, readonly=bool(readonly), mode=mode,
                                          uid=uid, gid=gid, seed=seed,
                                          preserve_owner=not self.b.sandbox.rootless)
            cleanups.append(release)
            return BindMount(path, target, readonly=bool(readonly))
        return key, make

    # ------------------------------------------------------------------ ssh

    def _proxy(self, sid: str, sources: tuple[str, ...], mode: int, uid: int,
               gid: int) -> _AgentProxy:
        k = (sid, sources, mode, uid, gid)
        with self._lock:
            proxy = self._ssh.get(k)
            if proxy is None:
                host_uid = self.b._idmap.to_host_uid(uid)
                host_gid = self.b._idmap.to_host_gid(gid)
                proxy = _AgentProxy(sid, sources, mode, host_uid, host_gid)
                self._ssh[k] = proxy
        return proxy


def _close_all(proxies: dict[tuple, _AgentProxy]) -> None:
    for p in list(proxies.values()):
        p.close()
    proxies.clear()


def _abs_target(target: str) -> str:
    # BuildKit resolves a relative target against "/", not the WORKDIR
    return posixpath.normpath("/" + target) if not target.startswith("/") else \
        posixpath.normpath(target)


def resolve_in_root(root: Path, rel: str) -> Path | None:
    """``rel`` looked up in ``root`` as a chroot would (symlinks can't leave ``root``);
    None when missing."""
    found = chroot_resolve(root, rel)
    return None if found is None else root / found


def _tree_from_items(items: Sequence[copymod.Item], dest: Path, *, link: bool) -> Path:
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


def _make_item(it: copymod.Item, path: Path, link: bool) -> None:
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


# ---------------------------------------------------------------------- ssh


def parse_ssh(spec: str) -> tuple[str, list[str]]:
    """``--ssh default|ID[=SOCKET|KEY[,KEY…]]`` → (id, paths); no path = ``$SSH_AUTH_SOCK``."""
    sid, sep, rest = spec.partition("=")
    sid = sid.strip()
    if not sid:
        raise BuildError(f"invalid --ssh {spec!r}", hint="use default or ID=SOCKET|KEY[,KEY]")
    paths = [p.strip() for p in rest.split(",") if p.strip()] if sep else []
    if not paths:
        sock = os.environ.get("SSH_AUTH_SOCK")
        if not sock:
            raise BuildError(f"--ssh {sid}: SSH_AUTH_SOCK is not set",
                             hint="start an ssh-agent, or give key files: --ssh ID=KEY")
        paths = [sock]
    for p in paths:
        if not os.path.exists(p):
            raise BuildError(f"--ssh {sid}: {p} does not exist")
    return sid, [os.path.abspath(os.path.expanduser(p)) for p in paths]


class _AgentProxy:
    """A unix socket with the requested mode/owner that forwards every connection to the
    real agent (the user's ``$SSH_AUTH_SOCK``, or an ``ssh-agent`` we start for key files)."""

    def __init__(self, sid: str, sources: tuple[str, ...], mode: int, uid: int,
                 gid: int) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="nbc-ssh-"))
        os.chmod(self.dir, 0o711)  # the sandbox's users must reach the socket inside
        self.path = self.dir / "agent.sock"
        self._agent: subprocess.Popen[bytes] | None = None
        self._closed = False
        try:
            if len(sources) == 1 and stat.S_ISSOCK(os.stat(sources[0]).st_mode):
                self.upstream = sources[0]
            else:
                self.upstream = self._start_agent(sid, sources)
            self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self._server.bind(str(self.path))
            os.chmod(self.path, mode)
            if (uid, gid) != (os.geteuid(), os.getegid()):
                with contextlib.suppress(PermissionError):
                    os.chown(self.path, uid, gid)
            self._server.listen(16)
        except BaseException:
            self.close()
            raise
        threading.Thread(target=self._accept, daemon=True, name=f"ssh-{sid}").start()

    def _start_agent(self, sid: str, keys: Sequence[str]) -> str:
        if not shutil.which("ssh-agent") or not shutil.which("ssh-add"):
            raise BuildError(f"--ssh {sid}: key files need ssh-agent and ssh-add",
                             hint="apt-get install openssh-client")
        sock = str(self.dir / "upstream.sock")
        self._agent = subprocess.Popen(["ssh-agent", "-D", "-a", sock],
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        while not os.path.exists(sock):
            if time.monotonic() > deadline or self._agent.poll() is not None:
                raise BuildError(f"--ssh {sid}: ssh-agent did not start")
            time.sleep(0.01)
        env = {**os.environ, "SSH_AUTH_SOCK": sock}
        env.pop("DISPLAY", None)  # never prompt for a passphrase
        proc = subprocess.run(["ssh-add", "-q", *keys], env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=30)
        if proc.returncode != 0:
            raise BuildError(f"--ssh {sid}: ssh-add failed: {proc.stderr.strip()}",
                             hint="keys with a passphrase need a running agent")
        return sock

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            try:
                up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                up.connect(self.upstream)
            except OSError:
                conn.close()
                continue
            for a, b in ((conn, up), (up, conn)):
                threading.Thread(target=_pump, args=(a, b), daemon=True).start()

    def close(self) -> None:
        self._closed = True
        server = getattr(self, "_server", None)
        if server is not None:
            with contextlib.suppress(OSError):
                server.shutdown(socket.SHUT_RDWR)
            server.close()
        if self._agent is not None:
            self._agent.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._agent.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

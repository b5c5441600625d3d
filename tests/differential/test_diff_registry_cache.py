"""Differential registry build cache: nbcontainer (``--cache-to/--cache-from
type=registry,ref=…``), docker 20.10 (BuildKit's inline cache: ``BUILDKIT_INLINE_CACHE=1``
and ``--cache-from IMAGE``, the only registry cache its ``docker build`` has without buildx)
and buildah 1.28 (``--layers --cache-to/--cache-from REPO``), each exporting its cache from
one store to a real ``docker-registry`` and building again on an empty store.

Each tool must reuse every step on the second store (its RUN with a random nonce gives the
first store's nonce back, and the image is the same), and the second-store images must be
the same file tree and config (the nonce's value aside: each tool drew its own).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbcontainer import api
from nbcontainer.api import build
from nbcontainer.progress import Collector
from nbcontainer.store import Store
from tests.support import buildah, docker
from tests.support.buildah import BASE, Env, buildah_result
from tests.support.differential import check, flatten
from tests.support.docker import Dockerd
from tests.support.scratch import fixture_dir

DOCKERFILE = f"""\
FROM {BASE}
RUN cat /proc/sys/kernel/random/uuid > /nonce
RUN mkdir -p /app/data && echo built > /app/data/out && chmod 0750 /app/data
COPY a.txt /app/
ENV APP=/app
WORKDIR /app
CMD ["cat", "/nonce"]
"""
Result = tuple[dict[str, tuple], dict]


@pytest.fixture(scope="module")
def registry(request: pytest.FixtureRequest) -> Iterator[object]:
    from tests.support.registry import Registry

    reg = Registry("plain", fixture_dir(request, "diff-cache-registry")).start()
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="module")
def ctx(request: pytest.FixtureRequest) -> Path:
    ctx = fixture_dir(request, "diff-cache-ctx")
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    (ctx / "a.txt").write_text("a\n")
    return ctx


@pytest.fixture(scope="module")
def ours(diff_env: Env, registry, ctx: Path, request: pytest.FixtureRequest) -> Result:
    """nbcontainer: store A exports, an empty store B (base loaded, nothing else) imports;
    B's image as (tree, config)."""
    work = fixture_dir(request, "diff-cache-ours")
    ref = f"{registry.host}/diff/nbcontainer-cache:build"
    a_digest, _ = _ours(diff_env.store, ctx, cache_to=[f"type=registry,ref={ref},mode=max"],
                        no_cache=True)
    store_b = Store(work / "store-b")
    api.load(diff_env.bb_archive, store=store_b)
    b_digest, events = _ours(store_b, ctx, cache_from=[f"type=registry,ref={ref}"])
    assert b_digest == a_digest
    runs = [e for e in events if e.kind == "start" and e.text.startswith("RUN ")]
    assert len(runs) == 2
    assert all(any(x.id == r.id and x.kind == "cached" for x in events) for r in runs)
    img = api.image(b_digest, store=store_b)
    tree = flatten([store_b.blobs.path(layer.digest) for layer in img.manifest.layers],
                   work / "flat-ours-b")
    return tree, img.config.to_dict()


def _ours(store: Store, ctx: Path, **kw) -> tuple[str, list]:
    events = Collector()
    img = build(ctx / "Dockerfile", ctx, store=store, progress=events, **kw)
    return str(img.digest), events.events


def _same_but_nonce(peer: str, ignores: tuple, ours: Result, theirs: Result) -> None:
    (ours_tree, ours_cfg), (theirs_tree, theirs_cfg) = ours, theirs
    ours_tree, theirs_tree = dict(ours_tree), dict(theirs_tree)
    # the nonce: present in both, each tool's own value
    assert ours_tree.pop("nonce")[:4] == theirs_tree.pop("nonce")[:4]  # kind, mode, uid, gid
    check(peer, "registry-cache", ignores, (ours_tree, ours_cfg), (theirs_tree, theirs_cfg))


@pytest.fixture
def second_buildah(diff_env: Env, tmp_path: Path) -> Iterator[Env]:
    """A buildah with its own, empty storage (the "second machine"), holding only the base."""
    runroot = Path(f"/tmp/nbd2-{tmp_path.name[-12:]}")
    env = Env(tmp_path, diff_env.bb_archive, tmp_path / "buildah-b", runroot, diff_env.store)
    proc = env.buildah("pull", "--quiet", f"oci-archive:{diff_env.bb_archive}")
    assert proc.returncode == 0, proc.stderr.decode()
    assert env.buildah("tag", proc.stdout.decode().split()[-1], BASE).returncode == 0
    try:
        yield env
    finally:
        env.buildah("rm", "--all")
        shutil.rmtree(runroot, ignore_errors=True)


def test_registry_cache_same_as_docker(docker_peer: Dockerd, registry, ctx: Path,
                                       ours: Result, tmp_path: Path) -> None:
    ref = f"{registry.host}/diff/docker-cache:build"
    docker_peer.build(ctx, ref, "--build-arg", "BUILDKIT_INLINE_CACHE=1")
    docker_peer.docker("push", ref)
    a_layers, _ = docker_peer.save_layers(ref, tmp_path / "save-a")
    a_tree = flatten(a_layers, tmp_path / "flat-a")
    # the "second machine": neither the image nor any build cache is left, only the base
    docker_peer.docker("rmi", ref)
    docker_peer.docker("builder", "prune", "--all", "--force")
    proc = docker_peer.build(ctx, "localhost/diff-cache-docker-b:latest", "--cache-from", ref)
    log = proc.stderr.decode() + proc.stdout.decode()
    runs = [line for line in log.splitlines() if "] RUN " in line]
    assert len({r.split()[0] for r in runs}) == 2, log
    assert all(f"{r.split()[0]} CACHED" in log for r in runs), log
    b_layers, b_cfg = docker_peer.save_layers("localhost/diff-cache-docker-b:latest",
                                              tmp_path / "save-b")
    b_tree = flatten(b_layers, tmp_path / "flat-b")
    assert b_tree["nonce"] == a_tree["nonce"]
    _same_but_nonce(docker.PEER, docker.IGNORES, ours, (b_tree, b_cfg))


def test_registry_cache_same_as_buildah(diff_env: Env, second_buildah: Env, registry,
                                        ctx: Path, ours: Result) -> None:
    reg_flags = ("--tls-verify=false",)
    # buildah: store A exports, store B imports
    repo = f"{registry.host}/diff/buildah-cache"
    a_tree, _ = buildah_result(diff_env, ctx, "cache-a", ("--cache-to", repo, *reg_flags))
    proc = second_buildah.buildah("bud", "--isolation", "chroot", "--layers", "--network",
                                  "host", "--pull=never", "--cache-from", repo, *reg_flags,
                                  "-t", "localhost/diff-cache-b:latest", str(ctx), timeout=300)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    assert proc.stdout.decode().count("Using cache") == 6  # every step after FROM
    b_tree, b_cfg = buildah_result(second_buildah, ctx, "cache-b")  # (cached again: no work)
    assert b_tree["nonce"] == a_tree["nonce"]
    _same_but_nonce(buildah.PEER, buildah.IGNORES, ours, (b_tree, b_cfg))

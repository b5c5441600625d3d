"""Differential registry build cache: buildah 1.28 (``--layers --cache-to/--cache-from REPO``)
and nbcontainer (``--cache-to/--cache-from type=registry,ref=…``), each exporting its cache from
one store to a real ``docker-registry`` and building again on a second, empty store.

Each tool must reuse every step on the second store (its RUN with a random nonce gives the
first store's nonce back, and the image is the same), and the two second-store images must be
the same file tree and config (the nonce's value aside: each tool drew its own).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbcontainer import api
from nbcontainer.api import build
from nbcontainer.layers import apply_layers
from nbcontainer.progress import Collector
from nbcontainer.store import Store

from .conftest import BASE, Env, buildah_result, comparable_config, flat_tree

DOCKERFILE = f"""\
FROM {BASE}
RUN cat /proc/sys/kernel/random/uuid > /nonce
RUN mkdir -p /app/data && echo built > /app/data/out && chmod 0750 /app/data
COPY a.txt /app/
ENV APP=/app
WORKDIR /app
CMD ["cat", "/nonce"]
"""


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from registry.servers import Registry

    reg = Registry("plain", tmp_path_factory.mktemp("diff-cache-registry")).start()
    try:
        yield reg
    finally:
        reg.stop()


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


def _ours(store: Store, ctx: Path, **kw) -> tuple[str, list]:
    events = Collector()
    img = build(ctx / "Dockerfile", ctx, store=store, progress=events, **kw)
    return str(img.digest), events.events


def test_registry_cache_same_as_buildah(diff_env: Env, second_buildah: Env, registry,
                                        tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    (ctx / "a.txt").write_text("a\n")
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

    # nbcontainer: store A exports, an empty store B (base loaded, nothing else) imports
    ref = f"{registry.host}/diff/nbcontainer-cache:build"
    a_digest, _ = _ours(diff_env.store, ctx, cache_to=[f"type=registry,ref={ref},mode=max"],
                        no_cache=True)
    store_b = Store(tmp_path / "store-b")
    api.load(diff_env.bb_archive, store=store_b)
    b_digest, events = _ours(store_b, ctx, cache_from=[f"type=registry,ref={ref}"])
    assert b_digest == a_digest
    runs = [e for e in events if e.kind == "start" and e.text.startswith("RUN ")]
    assert len(runs) == 2
    assert all(any(x.id == r.id and x.kind == "cached" for x in events) for r in runs)

    img = api.image(b_digest, store=store_b)
    flat = tmp_path / "flat-ours-b"
    apply_layers(flat, [store_b.blobs.path(layer.digest) for layer in img.manifest.layers])
    ours_tree = flat_tree(flat)
    ours_cfg = img.config.to_dict()

    # the nonce: present in both, each tool's own value
    assert ours_tree.pop("nonce")[:3] == b_tree.pop("nonce")[:3]  # kind, uid, gid
    assert ours_tree == b_tree
    assert comparable_config(ours_cfg) == comparable_config(b_cfg)

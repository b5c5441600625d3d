"""Fixtures for the layer-insight acceptance: the debootstrap Debian served by a local
registry, a package index on 127.0.0.1, and two images built from them once per module —
one that installs with apt and pip and cleans nothing up, one that cleans up."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from nbcontainer import api
from nbcontainer.store import Store
from tests.support.pyindex import make_pip_zipapp, serve_wheel
from tests.support.registry import Registry
from tests.support.rootfs import debian_rootfs
from tests.support.scratch import fixture_dir

# Written as a data scientist would: apt without cleanup, pip with its cache.
JUNK = """FROM {base}
RUN apt-get update && apt-get install -y --no-install-recommends python3
RUN --network=host --mount=type=bind,source=pip.pyz,target=/pip.pyz \\
    python3 /pip.pyz install --break-system-packages --trusted-host 127.0.0.1 \\
    --index-url {index} tinypkg
"""
# The same, cleaned up as the junk report's fixes say.
CLEAN = """FROM {base}
RUN apt-get update && apt-get install -y --no-install-recommends python3 \\
    && apt-get clean && rm -rf /var/lib/apt/lists/*
RUN --network=host --mount=type=bind,source=pip.pyz,target=/pip.pyz \\
    python3 /pip.pyz install --no-cache-dir --break-system-packages --trusted-host 127.0.0.1 \\
    --index-url {index} tinypkg
"""


@dataclass(frozen=True)
class Built:
    store: Store
    root: Path  # the store's directory (the CLI's --root)
    junk: str
    clean: str


@pytest.fixture(scope="module")
def debian_images(request: pytest.FixtureRequest) -> Iterator[Built]:
    if os.geteuid() != 0 or not shutil.which("debootstrap") or \
            not shutil.which("docker-registry"):
        pytest.skip("needs root, debootstrap and docker-registry")
    from nbcontainer import registry

    work = fixture_dir(request, "insight")
    reg = Registry("plain", work / "registry").start()
    index = serve_wheel(work / "index", payload=2_000_000)  # pip caches what it downloads
    try:
        base = f"{reg.host}/debian:bookworm"
        pushed = Store(work / "base-store")
        api.import_image(debian_rootfs(), base, store=pushed, changes=['CMD ["bash"]'])
        registry.push(pushed, base)
        st = Store(work / "store")
        ctx = work / "ctx"
        ctx.mkdir()
        make_pip_zipapp(ctx)
        for name, text in (("junk", JUNK), ("clean", CLEAN)):
            # (the index is on the host's loopback: RUN --network=host, which the build allows)
            api.build(text.format(base=base, index=index.url), ctx, tags=[f"insight/{name}"],
                      store=st, allow=["network.host"])
        yield Built(st, work / "store", "insight/junk", "insight/clean")
    finally:
        index.server.shutdown()
        reg.stop()

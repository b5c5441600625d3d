"""Acceptance: ``pip install`` with ``RUN --mount=type=cache,target=/root/.cache/pip`` from a
PEP 503 index served by the test on 127.0.0.1 reuses the cache on the second build (counted in
files and in index downloads, not in time) and leaves no cache file in the image.

Base: the debootstrap Debian image of test_build_debian plus apt's python3 (built once per
module). pip itself is bind-mounted from the test venv as a zipapp, so the base needs no
python3-pip (and its ~30 packages); the wheel is assembled with zipfile, because ``pip wheel``
of a local project needs setuptools' ``wheel`` package or PyPI (build isolation).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbcontainer.api import build
from nbcontainer.store import Store
from nbcontainer.store.cache_mounts import cache_mounts_dir
from tests.support.marks import needs_root
from tests.support.pyindex import Index, make_pip_zipapp, make_wheel
from tests.support.scratch import fixture_dir

pytestmark = [needs_root, pytest.mark.skipif(
    not os.path.exists("/usr/sbin/debootstrap") and not os.path.exists("/usr/bin/debootstrap"),
    reason="needs debootstrap")]


@pytest.fixture(scope="module")
def index(request: pytest.FixtureRequest) -> Iterator[Index]:
    root = fixture_dir(request, "index")
    pkg = root / "simple" / "tinypkg"
    pkg.mkdir(parents=True)
    wheel = make_wheel(pkg)
    (pkg / "index.html").write_text(f'<a href="{wheel.name}">{wheel.name}</a>\n')
    (root / "simple" / "index.html").write_text('<a href="tinypkg/">tinypkg</a>\n')
    idx = Index(root)
    yield idx
    idx.server.shutdown()


@pytest.fixture(scope="module")
def py_store(debian_ref: str, request: pytest.FixtureRequest  # noqa: F811
             ) -> tuple[Store, str]:
    st = Store(fixture_dir(request, "pip-store"))
    ctx = fixture_dir(request, "pyctx")
    build(f"FROM {debian_ref}\nRUN apt-get update && apt-get install -y "
          "--no-install-recommends python3 && rm -rf /var/lib/apt/lists/* "
          "/var/cache/apt/*.bin\n", ctx, tags=["py:base"], store=st)
    return st, "py:base"


def test_pip_cache_mount_is_reused(py_store: tuple[Store, str], index: Index,
                                   tmp_path: Path) -> None:
    st, base = py_store
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    make_pip_zipapp(ctx)
    df = (f"FROM {base}\n"
          # the index is on the host's loopback: host network, which the build must allow
          "RUN --network=host --mount=type=bind,source=pip.pyz,target=/pip.pyz "
          "--mount=type=cache,target=/root/.cache/pip "
          "python3 /pip.pyz install --disable-pip-version-check --break-system-packages "
          # pip caches plain-http responses only from a trusted host
          f"--trusted-host 127.0.0.1 --index-url {index.url} tinypkg && python3 -c 'import tinypkg; "
          "print(tinypkg.VALUE)' > /value\n")

    def cache_files() -> list[str]:
        return [f for d, _, fs in os.walk(cache_mounts_dir(st)) for f in fs
                if not f.endswith((".lock", ".json"))]

    img1 = build(df, ctx, store=st, allow=["network.host"])
    first = len(cache_files())
    assert first > 0 and index.downloads == 1
    img2 = build(df, ctx, store=st, no_cache=True, allow=["network.host"])  # the RUN again, over the same cache
    assert len(cache_files()) == first  # nothing new to cache: everything came from it
    assert index.downloads == 1  # the wheel was not fetched again

    from tests.support.builds import layer_members

    for img in (img1, img2):
        names = [m.name for m, _ in layer_members(img)]
        assert any(n.endswith("tinypkg/__init__.py") for n in names)
        assert not [n for n in names if ".cache/pip" in n or n.endswith("pip.pyz")]

"""Images with ipykernel for the kernel tests, the notebooks and the benchmark: the debootstrap
Debian, apt's python3 and python3-venv, and ipykernel installed into /opt/venv from a local
wheelhouse (downloaded once with the test venv's pip, which trusts this machine's CA; the
image's pip then needs no network), plus one extra package (``tinypkg``, a wheel made here).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from nbcontainer import api
from nbcontainer.image import Image
from nbcontainer.store import Store


def wheelhouse() -> Path:
    """ipykernel, tabulate and their dependencies as cp311 wheels (the notebooks' own)."""
    from scripts.notebook_env import wheelhouse as notebook_wheels

    return notebook_wheels()


def make_tinypkg(dest: Path) -> Path:
    from tests.support.pyindex import make_wheel

    return make_wheel(dest)


def kernel_context(ctx: Path, base: str, *, ipykernel: bool = True) -> str:
    """Fill build context ``ctx`` (wheels/) and return the Dockerfile of a kernel image."""
    wheels = ctx / "wheels"
    if wheels.exists():
        shutil.rmtree(wheels)
    shutil.copytree(wheelhouse(), wheels, ignore=shutil.ignore_patterns(".complete"))
    make_tinypkg(wheels)
    install = "ipykernel tinypkg" if ipykernel else "tinypkg"
    return (f"FROM {base}\n"
            "RUN apt-get update && apt-get install -y --no-install-recommends python3 "
            "python3-venv && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin\n"
            "RUN python3 -m venv /opt/venv\n"
            "ENV PATH=/opt/venv/bin:$PATH\n"
            "RUN --mount=type=bind,source=wheels,target=/wheels pip install --no-cache-dir "
            f"--disable-pip-version-check --no-index --find-links /wheels {install}\n"
            "RUN echo image > /marker\n")


class KernelImages:
    def __init__(self, store: Store, ctx: Path) -> None:
        self.store, self.ctx = store, ctx

    def build(self, tag: str, extra: str = "", *, ipykernel: bool = True) -> Image:
        dockerfile = kernel_context(self.ctx, "debian:bookworm", ipykernel=ipykernel) + extra
        path = self.ctx / "Dockerfile"
        path.write_text(dockerfile)
        img = api.build(path, self.ctx, tags=[tag], store=self.store)
        assert isinstance(img, Image)
        return img

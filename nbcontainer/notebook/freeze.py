"""``%freeze_image``: a Dockerfile that reproduces the running kernel's environment.

repo2docker rebuilds an environment from a repository through a Docker daemon; here the
source of truth is the live kernel: its Python version picks the base, ``importlib.metadata``
lists what is installed (pinned to the exact versions), and the notebook file is copied in.
Packages installed from local paths or in editable mode cannot be fetched from an index, so
they are listed as comments for the user to resolve rather than silently dropped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from importlib import metadata
from pathlib import Path
from typing import Any

from ..errors import NbcontainerError

_SKIP = {"pip", "setuptools", "wheel"}  # the base's own tooling


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass
class Requirements:
    pinned: list[str] = field(default_factory=list)
    unpinnable: list[str] = field(default_factory=list)  # editable or local installs


def _local_install(dist: metadata.Distribution) -> bool:
    """Installed from a local path or editable: either pip says so (``direct_url.json``), or
    the metadata is a source tree's ``*.egg-info`` found first on ``sys.path`` (the current
    directory of a checkout), not an installed copy in site-packages."""
    direct = dist.read_text("direct_url.json")
    if direct:
        try:
            info = json.loads(direct)
        except ValueError:
            info = {}
        if info.get("dir_info", {}).get("editable") or str(info.get("url", "")).startswith("file:"):
            return True
    location = str(dist.locate_file(""))
    return "site-packages" not in location and "dist-packages" not in location


def kernel_requirements(packages: Sequence[str] = ()) -> Requirements:
    """``name==version`` for the installed distributions (only ``packages`` if given)."""
    wanted = {_canonical(p) for p in packages}
    found: dict[str, str] = {}
    req = Requirements()
    for dist in metadata.distributions():
        name = dist.name  # (None for a broken installation)
        if not name:
            continue
        key = _canonical(name)
        if key in found or (wanted and key not in wanted) or (not wanted and key in _SKIP):
            continue
        found[key] = dist.version
        if _local_install(dist):
            req.unpinnable.append(f"{name}=={dist.version}")
        else:
            req.pinned.append(f"{name}=={dist.version}")
    missing = sorted(wanted - set(found))
    if missing:
        raise NbcontainerError(f"not installed in this kernel: {', '.join(missing)}",
                               hint="check the names with %pip list")
    req.pinned.sort(key=str.lower)
    req.unpinnable.sort(key=str.lower)
    return req


KERNEL_IMAGE = "NBCONTAINER_IMAGE"  # set in a kernel from an image: its name@digest


def default_base() -> str:
    """The image this kernel runs in (a kernel from ``nbcontainer kernel install``), else
    ``python:<this version>-slim``."""
    if os.environ.get(KERNEL_IMAGE):
        return os.environ[KERNEL_IMAGE]
    v = sys.version_info
    return f"python:{v.major}.{v.minor}-slim"


def current_notebook(user_ns: dict[str, Any] | None = None) -> Path | None:
    """The notebook this kernel runs, where the front end tells (JupyterLab sets
    ``__session__``/``JPY_SESSION_NAME``, VS Code ``__vsc_ipynb_file__``)."""
    candidates = [os.environ.get("JPY_SESSION_NAME")]
    if user_ns:
        candidates += [user_ns.get("__session__"), user_ns.get("__vsc_ipynb_file__")]
    for c in candidates:
        if c and str(c).endswith(".ipynb") and Path(c).is_file():
            return Path(c)
    return None


def download_wheels(requirements: Path, dest: Path) -> None:
    """The kernel's pip fetches the wheels (with its own indexes, proxies and certificates),
    so the build needs no index and the image gets exactly these files."""
    import subprocess

    dest.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "--only-binary=:all:",
                           "--no-deps", "-q", "-d", str(dest), "-r", str(requirements)],
                          capture_output=True, text=True)
    if proc.returncode:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["pip failed"]
        raise NbcontainerError(f"pip download failed: {tail[0]}",
                               hint="drop --wheels to let the build install from the index")


def dockerfile(base: str, req: Requirements, notebook: str | None,
               wheels: bool = False) -> str:
    v = sys.version_info
    # python:* images and the image this kernel runs in have their Python already
    python_base = base.split("/")[-1].startswith("python:") or \
        base == os.environ.get(KERNEL_IMAGE)
    lines = [
        f"# The environment of a Python {v.major}.{v.minor}.{v.micro} kernel, "
        f"{len(req.pinned)} pinned package(s), written by %freeze_image. Edit freely.",
        f"FROM {base}",
    ]
    if not python_base:  # a distribution base: its Python in a venv (PEP 668 forbids pip)
        lines += [
            "RUN apt-get update && apt-get install -y --no-install-recommends python3 "
            "python3-venv && rm -rf /var/lib/apt/lists/*",
            "RUN python3 -m venv /opt/venv",
            # spelled out: the builder cannot expand the base's $PATH here yet
            "ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ]
    for u in req.unpinnable:
        lines.append(f"# not reproducible from an index (local or editable install): {u}")
    lines.append("COPY requirements.txt /tmp/requirements.txt")
    if wheels:
        lines += ["COPY wheels/ /tmp/wheels/",
                  "RUN pip install --no-cache-dir --no-index --find-links /tmp/wheels "
                  "-r /tmp/requirements.txt && rm -rf /tmp/wheels"]
    else:
        lines.append("RUN pip install --no-cache-dir -r /tmp/requirements.txt")
    lines.append("WORKDIR /home/notebook")
    if notebook:
        lines.append(f"COPY {json.dumps(notebook)} ./")
    lines.append('CMD ["python3"]')
    return "\n".join(lines) + "\n"


@dataclass
class Frozen:
    """What ``%freeze_image`` returns: the Dockerfile shown, and the image when built."""

    dockerfile: str
    directory: Path
    image: Any = None

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        head = f"{self.directory}/Dockerfile"
        text = f"# {head}\n{self.dockerfile}"
        if self.image is not None:
            text += f"\n{self.image.summary()}"
        html = (f'<div class="nbc nbc-freeze"><div><code>{escape(head)}</code></div>'
                f"<pre>{escape(self.dockerfile)}</pre>")
        if self.image is not None:
            html += f"<div><code>{escape(self.image.summary())}</code></div>"
        return {"text/plain": text, "text/html": html + "</div>"}


def freeze(*, tags: Sequence[str] = (), base: str | None = None, packages: Sequence[str] = (),
           notebook: str | None = None, output: Path = Path("freeze"), build: bool = True,
           quiet: bool = False, wheels: bool = False,
           user_ns: dict[str, Any] | None = None) -> Frozen:
    req = kernel_requirements(packages)
    output.mkdir(parents=True, exist_ok=True)
    (output / "requirements.txt").write_text("".join(p + "\n" for p in req.pinned))
    nb = Path(notebook) if notebook else current_notebook(user_ns)
    if notebook and not nb.is_file():  # type: ignore[union-attr]
        raise NbcontainerError(f"notebook {notebook!r} does not exist")
    nb_name = None
    if nb is not None:
        nb_name = nb.name
        if nb.resolve() != (output / nb.name).resolve():
            shutil.copyfile(nb, output / nb.name)
    if wheels:
        shutil.rmtree(output / "wheels", ignore_errors=True)
        download_wheels(output / "requirements.txt", output / "wheels")
    text = dockerfile(base or default_base(), req, nb_name, wheels)
    (output / "Dockerfile").write_text(text)
    result = Frozen(text, output)
    if build:
        from .. import api
        from .progress import ProgressArea

        with ProgressArea("Building", enabled=not quiet) as progress:
            result.image = api.build(output / "Dockerfile", output, tags=tags,
                                     progress=progress)
    return result

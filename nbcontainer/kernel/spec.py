"""``nbcontainer kernel install|list|remove``: standard Jupyter kernelspecs whose kernel runs
inside an image, pinned to the image's digest.

The kernelspec's ``argv`` runs the launcher (``launcher.py``) with a Python the user who runs
Jupyter can execute; everything the launcher needs is in ``metadata.nbcontainer`` of the same
``kernel.json`` (the image's name and digest, the store, mounts, environment, what the kernel
may reach, the image's build provenance). Running ``kernel install`` again updates it.
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import KernelError
from ..image import Image
from ..sandbox.volumes import parse_volume, volume_text
from ..timestamps import rfc3339

META = "nbcontainer"
ALLOWED = ("network.host",)
CONTAINER_DIR = "/run/nbcontainer-kernel"  # where the kernel's sockets and connection file are
_NAME = re.compile(r"[^a-z0-9._-]+")


@dataclass(frozen=True)
class KernelRecord:
    """What the launcher needs (``metadata.nbcontainer`` of ``kernel.json``)."""

    image: str  # the name it was installed from (for people; the digest is what runs)
    digest: str  # the image manifest's digest: a rebuilt tag does not change the kernel
    store: str  # the store that holds it
    volumes: tuple[str, ...] = ()  # HOST:CONTAINER[:ro]
    env: Mapping[str, str] = field(default_factory=dict)
    workdir_mount: bool = True  # the notebook's directory at the same path, as cwd
    allow: tuple[str, ...] = ()  # "network.host": the host's network and loopback
    isolation: str | None = None
    python: str = "python3"  # the image's interpreter
    provenance: Mapping[str, Any] | None = None  # the build's definition, when attached
    installed: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["volumes"], d["allow"], d["env"] = list(self.volumes), list(self.allow), dict(self.env)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> KernelRecord:
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        known["volumes"] = tuple(known.get("volumes", ()))
        known["allow"] = tuple(known.get("allow", ()))
        return cls(**known)


@dataclass(frozen=True)
class InstalledKernel:
    name: str
    path: Path  # the kernelspec directory
    display_name: str
    record: KernelRecord

    @property
    def short_digest(self) -> str:
        return self.record.digest.removeprefix("sha256:")[:12]


# ---------------------------------------------------------------------------- locations
def kernels_dir(*, user: bool = False, sys_prefix: bool = False,
                prefix: str | Path | None = None) -> Path:
    """Where ``jupyter kernelspec install`` puts kernels: ``--user`` (the default here, as a
    store is per user), ``--sys-prefix`` or ``--prefix P``."""
    if prefix is not None:
        return Path(prefix) / "share" / "jupyter" / "kernels"
    if sys_prefix:
        return Path(sys.prefix) / "share" / "jupyter" / "kernels"
    from jupyter_core.paths import jupyter_data_dir

    return Path(jupyter_data_dir()) / "kernels"


def _search_path() -> list[Path]:
    from jupyter_core.paths import jupyter_path

    return [Path(p) for p in jupyter_path("kernels")]


def kernels() -> list[InstalledKernel]:
    """The kernels from images Jupyter finds (first of each name, Jupyter's order)."""
    seen: dict[str, InstalledKernel] = {}
    for base in _search_path():
        if not base.is_dir():
            continue
        for d in sorted(base.iterdir()):
            name = d.name.lower()
            if name in seen:
                continue
            found = read(d)
            if found is not None:
                seen[name] = found
    return sorted(seen.values(), key=lambda k: k.name)


def read(path: Path) -> InstalledKernel | None:
    """The kernel in kernelspec directory ``path``, or None when it is not one of ours."""
    try:
        doc = json.loads((path / "kernel.json").read_text())
        meta = doc["metadata"][META]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return InstalledKernel(path.name, path, str(doc.get("display_name", path.name)),
                           KernelRecord.from_dict(meta))


def find(name: str) -> InstalledKernel:
    for k in kernels():
        if k.name == name.lower():
            return k
    raise KernelError(f"no nbcontainer kernel named {name!r}",
                      hint="`nbcontainer kernel list` shows the installed ones")


def remove(name: str) -> InstalledKernel:
    import shutil

    found = find(name)
    shutil.rmtree(found.path)
    return found


# ---------------------------------------------------------------------------- install
def kernel_name(image: str) -> str:
    """A kernelspec name from an image name: ``localhost/team/analysis:v2`` → ``analysis-v2``
    (``latest`` dropped); Jupyter allows ``[a-z0-9._-]``."""
    base = image.rsplit("/", 1)[-1].split("@")[0]
    repo, _, tag = base.partition(":")
    text = repo if tag in ("", "latest") else f"{repo}-{tag}"
    return _NAME.sub("-", text.lower()).strip("-.") or "image"


def _world_executable(path: str) -> bool:
    """Can any user run ``path`` (every directory on the way searchable, the file ``o+x``)?"""
    p = Path(os.path.realpath(path))
    try:
        if not p.stat().st_mode & stat.S_IXOTH:
            return False
        return all(d.stat().st_mode & stat.S_IXOTH for d in p.parents)
    except OSError:
        return False


def launcher_python() -> tuple[str, dict[str, str]]:
    """The interpreter a kernelspec names, and the environment it needs to import us.

    This Python when every user can run it (a user's own venv, the system's); else (a venv
    whose interpreter lives under a private home, e.g. /root) the system Python of the same
    version with this installation's import path (which must itself be readable)."""
    env = {"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}
    if _world_executable(sys.executable):
        return sys.executable, env
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (f"/usr/bin/{version}", f"/usr/local/bin/{version}"):
        if os.path.exists(candidate) and _world_executable(candidate):
            ours = str(Path(__file__).resolve().parents[2])
            sites = [p for p in sys.path if p.endswith("site-packages") and os.path.isdir(p)]
            path = [ours, *sites, *filter(None, os.environ.get("PYTHONPATH", "").split(":"))]
            return candidate, {"PYTHONPATH": ":".join(dict.fromkeys(path))}
    return sys.executable, env


def _provenance(img: Image) -> dict[str, Any] | None:
    """The build definition (Dockerfile digest, context, args, bases) of the image's
    attached provenance, if it has one."""
    from ..store.referrers import statements

    for _, doc in statements(img.store, img.digest):
        predicate = doc.get("predicate") if isinstance(doc, dict) else None
        if isinstance(predicate, dict) and isinstance(predicate.get("buildDefinition"), dict):
            return {"predicateType": doc.get("predicateType"),
                    "buildDefinition": predicate["buildDefinition"]}
    return None


def install(img: Image, *, name: str | None = None, display_name: str | None = None,
            user: bool = False, sys_prefix: bool = False, prefix: str | Path | None = None,
            volumes: Sequence[str] = (), env: Mapping[str, str] | None = None,
            workdir_mount: bool = True, allow: Sequence[str] = (),
            isolation: str | None = None, image_name: str | None = None) -> InstalledKernel:
    """Write (or update) the kernelspec that runs ``img`` as a Jupyter kernel."""
    for item in allow:
        if item not in ALLOWED:
            raise KernelError(f"--allow {item}: unknown entitlement",
                              hint=f"one of: {', '.join(ALLOWED)}")
    mounts = [volume_text(parse_volume(v)) for v in volumes]  # checks the host paths now
    label = image_name or img.name
    kname = (name or kernel_name(label)).lower()
    if not kname or _NAME.search(kname):
        raise KernelError(f"kernel name {name!r}: only letters, digits, '.', '_' and '-'",
                          hint="e.g. --name analysis")
    record = KernelRecord(
        image=label, digest=str(img.digest), store=str(img.store.home),
        volumes=tuple(mounts), env=dict(env or {}), workdir_mount=workdir_mount,
        allow=tuple(dict.fromkeys(allow)), isolation=isolation, provenance=_provenance(img),
        installed=rfc3339(int(time.time())))
    python, launcher_env = launcher_python()
    target = kernels_dir(user=user, sys_prefix=sys_prefix, prefix=prefix) / kname
    doc = {
        "argv": [python, "-m", "nbcontainer.kernel.launcher", str(target),
                 "-f", "{connection_file}"],
        "display_name": display_name or f"{label.removesuffix(':latest')} (image)",
        "language": "python",
        "interrupt_mode": "signal",
        "env": launcher_env,
        "metadata": {META: record.to_dict(), "debugger": False},
    }
    target.mkdir(parents=True, exist_ok=True)
    tmp = target / ".kernel.json.tmp"
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, target / "kernel.json")
    found = read(target)
    assert found is not None
    return found

"""The world the example notebooks run in, made locally: a registry that serves the debootstrap
Debian as ``library/debian:bookworm`` (so ``FROM debian:bookworm`` resolves through the
``docker.io`` mirror setting, as cells read in real life), a second registry with TLS and a
password (03-registry-auth), and an isolated store and credential file.

Used by ``scripts/notebook_demo.py`` (the README's main job) and by the notebook tests. Built
on the product's ``nbcontainer.localregistry`` and ``nbcontainer.rootfs``; it imports nothing
from ``tests``.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from nbcontainer.localregistry import LocalRegistry
from nbcontainer.rootfs import cached_debian_rootfs

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
# The debootstrap Debian is made at most once a day; the test suite shares this cache.
DEBIAN_CACHE = Path("/var/cache/nbcontainer-test")
# 03-registry-auth logs in as this user (its default when DEMO_USER is unset).
USER, PASSWORD = "tester", "s3cret-Pa55word-xyz"
# 05-kernel-in-image installs ipykernel and tabulate into its image from these wheels
# (cp311: Debian bookworm's python3), downloaded once with this Python's pip, which trusts
# this machine's certificates: the image's pip then needs no index.
WHEELS = DEBIAN_CACHE / "wheels-kernel"
WHEEL_PACKAGES = ("ipykernel", "tabulate")
WHEEL_PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64",
                   "any")
KERNEL_NOTEBOOKS = ("06-analysis-in-the-image.ipynb",)  # run on the kernel 05 installs


def wheelhouse() -> Path:
    """The wheels of ``WHEEL_PACKAGES`` and their dependencies (downloaded when missing)."""
    import subprocess
    import sys

    if not (WHEELS / ".complete").exists():
        tmp = WHEELS.with_name(WHEELS.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        argv = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
                "--disable-pip-version-check", "--python-version", "3.11", "-d", str(tmp),
                *WHEEL_PACKAGES]
        for platform in WHEEL_PLATFORMS:
            argv += ["--platform", platform]
        subprocess.run(argv, check=True)
        (tmp / ".complete").touch()
        shutil.rmtree(WHEELS, ignore_errors=True)
        tmp.rename(WHEELS)
        subprocess.run(["chmod", "-R", "a+rX", str(WHEELS)], check=True)
    return WHEELS


@dataclass
class NotebookEnv:
    workdir: Path
    registry: LocalRegistry | None = None
    auth_registry: LocalRegistry | None = None
    env: dict[str, str] = field(default_factory=dict)

    def start(self, *, auth: bool = True) -> NotebookEnv:
        from nbcontainer import api, registry
        from nbcontainer.store import Store

        self.workdir.mkdir(parents=True, exist_ok=True)
        self.registry = LocalRegistry(self.workdir / "registry").start()
        try:
            # a stable name: the history says "nbcontainer import debian-bookworm"
            rootfs = self.workdir / "debian-bookworm"
            rootfs.unlink(missing_ok=True)
            rootfs.symlink_to(cached_debian_rootfs(DEBIAN_CACHE))
            base = Store(self.workdir / "base-store")
            ref = f"{self.registry.host}/library/debian:bookworm"
            api.import_image(rootfs, ref, store=base, changes=[  # as Docker Hub's debian
                'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
                'CMD ["bash"]'],
                             message="debootstrap --variant=minbase bookworm")
            registry.push(base, ref)
            shutil.rmtree(self.workdir / "base-store", ignore_errors=True)
            if auth:
                self.auth_registry = LocalRegistry(self.workdir / "auth-registry", tls=True,
                                                   user=USER, password=PASSWORD).start()
        except BaseException:
            self.stop()
            raise
        self.env = {
            "NBCONTAINER_HOME": str(self.workdir / "home"),
            "NBCONTAINER_REGISTRY_MIRRORS": f"http://{self.registry.host}",
            "NBCONTAINER_REGISTRIES_CONF": str(self.workdir / "registries.json"),
            "DOCKER_CONFIG": str(self.workdir / "docker-config"),
            "DEMO_REGISTRY": self.registry.host,
            # kernels 05 installs: private to this run, found by the run of 06
            "JUPYTER_DATA_DIR": str(self.workdir / "jupyter-data"),
        }
        if self.auth_registry is not None:
            self.env.update({
                "NBCONTAINER_CERTS_DIR": str(self.auth_registry.certs_root),
                "DEMO_AUTH_REGISTRY": self.auth_registry.host,
                "DEMO_USER": USER,
                "DEMO_PASSWORD": PASSWORD,
            })
        return self

    def apply(self) -> None:
        """Into this process's environment (kernels and servers started later inherit it)."""
        for k in ("REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR"):
            os.environ.pop(k, None)
        os.environ.update(self.env)

    def stop(self) -> None:
        for reg in (self.registry, self.auth_registry):
            if reg is not None:
                reg.stop()


def copy_notebooks(dest: Path, names: list[str] | None = None) -> list[Path]:
    """The notebooks (and their sanitize file) in a scratch directory: they write files
    (``%%writefile``) next to themselves, which must not land in the repository."""
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for nb in sorted(NOTEBOOKS.glob("*.ipynb")):
        if names is None or nb.name in names:
            shutil.copy(nb, dest / nb.name)
            out.append(dest / nb.name)
    shutil.copy(NOTEBOOKS / "sanitize.cfg", dest / "sanitize.cfg")
    if any(nb.name.startswith("05-") for nb in out):  # its Dockerfile copies these
        shutil.rmtree(dest / "wheels", ignore_errors=True)
        shutil.copytree(wheelhouse(), dest / "wheels",
                        ignore=shutil.ignore_patterns(".complete"))
    return out


def execute(path: Path, *, timeout: int = 900, cwd: Path | None = None) -> None:
    """Run a notebook top to bottom in a fresh kernel and save it with its outputs but
    without widget state (nbconvert and reopened notebooks then show the static HTML)."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    kernel = nb.metadata.get("kernelspec", {}).get("name", "python3")  # 06: 05's kernel
    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel,
                            resources={"metadata": {"path": str(cwd or path.parent)}},
                            store_widget_state=False)
    client.execute()
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, path)

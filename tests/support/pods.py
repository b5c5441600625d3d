"""Simulated pods: ``podman run --runtime runc`` of a test image holding python3, the
project's wheel and its dependencies (installed offline from a wheelhouse built from this
checkout), uidmap and proot; a registry on 127.0.0.1 serving busybox and debootstrap Debian
bases; and the environments of the isolation issue, each running ``tests/pods/pod_driver.py``
(builds A, B and C, info, leftovers) and answering with its JSON report.

Everything slow is cached under /var/cache/nbcontainer-test/pods: the dependencies' wheels
(per pyproject.toml), the image's layers (the builder's own cache: only the project wheel's
layer is rebuilt when the sources change) and the podman image (per source hash).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.rootfs import CACHE, debian_rootfs, make_busybox_rootfs
from tests.support.users import PYDEPS, REPO, user_repo

PODS = CACHE / "pods"
PODMAN = ["podman", "--root", str(PODS / "storage"), "--runroot", str(PODS / "run"),
          "--storage-driver", "overlay", "--cgroup-manager", "cgroupfs",
          "--events-backend", "file"]
POD_RUN = ["run", "--rm", "--runtime", "runc", "--ulimit", "nofile=1024:1024",
           "--ulimit", "nproc=4096:4096", "--network", "host"]
MOBY_SECCOMP = Path("/usr/share/gocode/src/github.com/docker/docker/profiles/seccomp/"
                    "default.json")
DRIVER = REPO / "tests/pods/pod_driver.py"
POD_USER = "student"  # uid 1000 in the image
POD_PACKAGES = "python3 python3-venv uidmap proot ca-certificates"


def _digest_of(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for base in paths:
        files = sorted(p for p in base.rglob("*") if p.is_file() and "__pycache__" not in
                       p.parts) if base.is_dir() else [base]
        for p in files:
            h.update(str(p.relative_to(REPO)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:16]


def wheelhouse(tmp: Path) -> Path:
    """``deps/``: the dependencies' wheels (cached per pyproject.toml, fetched with the
    venv's pip from the package index once); ``project/``: this checkout's wheel."""
    deps = PODS / f"wheels-{_digest_of([REPO / 'pyproject.toml'])}"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    if not deps.is_dir():
        work = Path(tempfile.mkdtemp(prefix="wheels-", dir=PODS))
        subprocess.run([*pip, "wheel", "--wheel-dir", str(work), str(REPO)], check=True,
                       cwd=work)
        for wheel in work.glob("nbcontainer-*.whl"):
            wheel.unlink()
        try:
            os.rename(work, deps)
        except OSError:
            shutil.rmtree(work, ignore_errors=True)
    house = tmp / "wheels"
    shutil.copytree(deps, house / "deps")
    subprocess.run([*pip, "wheel", "--no-deps", "--wheel-dir",
                    str(house / "project"), str(REPO)], check=True, cwd=tmp,
                   capture_output=True)
    return house


@dataclass
class PodImage:
    ref: str


def pod_image(tmp: Path) -> PodImage:
    """The test image in podman's storage (built by the builder itself, as root)."""
    from nbcontainer import api
    from nbcontainer.store import Store

    PODS.mkdir(parents=True, exist_ok=True)
    base_dir = debian_rootfs()
    tag = _digest_of([REPO / "pyproject.toml", REPO / "nbcontainer"])
    ref = f"localhost/nbpod:{base_dir.name}-{tag}"
    if subprocess.run([*PODMAN, "image", "exists", ref]).returncode == 0:
        return PodImage(ref)
    store = Store(PODS / "build-store")
    base = f"nbpod-base:{base_dir.name}"
    try:
        api.image(base, store=store)
    except Exception:  # noqa: BLE001 - not imported yet
        api.import_image(base_dir, base, store=store)
    ctx = tmp / "podctx"
    ctx.mkdir()
    shutil.move(str(wheelhouse(tmp)), ctx / "wheels")
    dockerfile = (
        f"FROM {base}\n"
        f"RUN apt-get update && apt-get install -y --no-install-recommends {POD_PACKAGES} && "
        "rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin\n"
        # no subordinate range: the environments that have one mount /etc/subuid
        f"RUN useradd -m -u 1000 -s /bin/bash -K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 "
        f"{POD_USER} && truncate -s0 /etc/subuid /etc/subgid\n"
        "COPY wheels/deps /tmp/deps\n"
        "RUN python3 -m venv /opt/nb && /opt/nb/bin/pip install -q --no-index --find-links "
        "/tmp/deps /tmp/deps/*.whl && rm -rf /tmp/deps\n"
        "COPY wheels/project /tmp/project\n"
        "RUN /opt/nb/bin/pip install -q --no-index --no-deps /tmp/project/*.whl && "
        "rm -rf /tmp/project\n"
        "ENV PATH=/opt/nb/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n")
    api.build(dockerfile, str(ctx), tags=["nbpod:test"], store=store, isolation="full")
    archive = tmp / "nbpod.tar"
    api.save(["nbpod:test"], archive, format="oci-archive", store=store)
    pulled = subprocess.run([*PODMAN, "pull", "-q", f"oci-archive:{archive}"], check=True,
                            capture_output=True, text=True)
    subprocess.run([*PODMAN, "tag", pulled.stdout.split()[-1], ref], check=True)
    _forget_older(ref)
    api.prune(store=store)  # the previous wheel's layers
    return PodImage(ref)


def _forget_older(ref: str) -> None:
    """Earlier test images (one per source tree) would pile up in the cache."""
    listed = subprocess.run([*PODMAN, "images", "--format", "{{.Repository}}:{{.Tag}}",
                             "localhost/nbpod"], capture_output=True, text=True).stdout.split()
    old = [r for r in listed if r != ref and r.startswith("localhost/nbpod:")]
    if old:
        subprocess.run([*PODMAN, "rmi", "-f", *old], capture_output=True)
    subprocess.run([*PODMAN, "image", "prune", "-f"], capture_output=True)


@dataclass
class Bases:
    registry: str  # host:port


def push_bases(tmp: Path, host: str) -> Bases:
    """busybox and debootstrap Debian in the registry at ``host``."""
    from nbcontainer import api
    from nbcontainer.store import Store

    store = Store(tmp / "bases-store")
    rootfs = make_busybox_rootfs(tmp / "busybox-rootfs")
    api.import_image(rootfs, f"{host}/busybox:latest", store=store)
    api.import_image(debian_rootfs(), f"{host}/debian:bookworm", store=store)
    for name in ("busybox:latest", "debian:bookworm"):
        api.push(f"{host}/{name}", store=store)
    return Bases(host)


@dataclass
class Env:
    """One simulated environment: a pod (podman options) or a host command prefix."""

    name: str
    podman: list[str] = field(default_factory=list)  # options of `podman run`
    host: list[str] | None = None  # argv prefix to run the driver on the host instead
    python: str = "python"
    user: str | None = None  # the host user that owns the store
    builds: str = "a,b,c,d"
    subids: bool = False  # the pod's user gets a subordinate range (/etc/subuid mounted)


HOST_USER_NO_SUBIDS = "nbnosub"
_UID1000 = ["--user", "1000:1000"]
_HOST_PY = "/usr/bin/python3"

# The environments of the isolation issue (its acceptance list), by name.
ENVIRONMENTS = {env.name: env for env in (
    Env("pod-nnp", [*_UID1000, "--security-opt", "no-new-privileges"]),
    Env("pod-unconfined", [*_UID1000, "--security-opt", "seccomp=unconfined"]),
    Env("pod-subuid", _UID1000, subids=True),
    Env("pod-root", []),
    Env("pod-moby", [*_UID1000, "--security-opt", f"seccomp={MOBY_SECCOMP}"]),
    # the same without a usable proot: builds without RUN only, and the true cause
    Env("pod-moby-noproot", [*_UID1000, "--security-opt", f"seccomp={MOBY_SECCOMP}",
                             "-v", "/dev/null:/usr/bin/proot:ro"], builds="a,b"),
    Env("host-nosubids", host=["runuser", "-u", HOST_USER_NO_SUBIDS, "--", "env",
                               f"PYTHONPATH={{repo}}:{PYDEPS}", "HOME=/tmp"],
        python=_HOST_PY, user=HOST_USER_NO_SUBIDS),
    # user namespaces disabled: max_user_namespaces 0 inside a child user namespace (root
    # here lacks CAP_SYS_RESOURCE for the real sysctl; a nested unshare fails the same way)
    Env("host-nouserns", host=["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
                               'echo 0 > /proc/sys/user/max_user_namespaces && exec "$@"',
                               "sh"], python=sys.executable),
)}


def ensure_user_without_subids(name: str = HOST_USER_NO_SUBIDS) -> None:
    """A host user with no subordinate range (useradd would give one by default)."""
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "-m", "-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0",
                        name], check=False, capture_output=True)
    for path in ("/etc/subuid", "/etc/subgid"):
        lines = Path(path).read_text().splitlines(keepends=True)
        kept = [ln for ln in lines if not ln.startswith(name + ":")]
        if kept != lines:
            Path(path).write_text("".join(kept))


def run_env(env: Env, image: PodImage, bases: Bases, tmp: Path) -> dict:
    """The driver's report for ``env`` (the test asserts on it)."""
    if env.host is None:
        extra: list[str] = []
        if env.subids:
            subid = tmp / f"subid-{env.name}"
            subid.write_text(f"{POD_USER}:100000:65536\n")
            subid.chmod(0o644)
            extra = ["-v", f"{subid}:/etc/subuid:ro", "-v", f"{subid}:/etc/subgid:ro"]
        argv = [*PODMAN, *POD_RUN, *env.podman, *extra, "-v", f"{DRIVER.parent}:/drv:ro",
                image.ref, "python", "/drv/pod_driver.py", bases.registry,
                "/home/student/.local/share/nbcontainer" if "--user" in env.podman
                else "/root/.local/share/nbcontainer", env.builds]
    else:
        base = Path(tempfile.mkdtemp(prefix=f"host-{env.name}-"))
        os.chmod(base, 0o755)
        if env.user:
            shutil.chown(base, env.user, env.user)
        repo = user_repo()  # the checkout, or a copy the host users can read
        argv = [*(a.format(repo=repo) for a in env.host), env.python,
                str(repo / DRIVER.relative_to(REPO)), bases.registry, str(base / "store"),
                env.builds]
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=900, cwd="/",
                              stdin=subprocess.DEVNULL)
    finally:
        if env.host is not None:
            shutil.rmtree(base, ignore_errors=True)
    if proc.returncode != 0:
        pytest.fail(f"{env.name}: the driver failed ({proc.returncode}):\n"
                    f"{proc.stderr.decode(errors='replace')[-4000:]}")
    lines = proc.stdout.decode(errors="replace").strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, ValueError):
        pytest.fail(f"{env.name}: no report:\n{proc.stdout.decode(errors='replace')[-3000:]}\n"
                    f"{proc.stderr.decode(errors='replace')[-3000:]}")

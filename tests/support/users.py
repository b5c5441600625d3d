"""The unprivileged test user ``nbtest``: created with a subordinate id range when missing,
and a Python it can run test modules with (``python -m tests.…``) while the project's venv
stays unreadable to it."""

from __future__ import annotations

import functools
import hashlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

USER = "nbtest"
REPO = Path(__file__).resolve().parents[2]
CACHE_ROOT = Path("/var/cache/nbcontainer-test")
PYDEPS = CACHE_ROOT / "pydeps"
SOURCES = CACHE_ROOT / "sources"  # readable copies of a checkout the test user cannot read
PACKAGES = ("nbcontainer", "tests")


def ensure_user(name: str = USER) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "-m", name], check=False, capture_output=True)
        return pwd.getpwnam(name)  # another session may have created it meanwhile


def ensure_subids(name: str, path: str) -> int:
    """The first id of ``name``'s range in ``path`` (/etc/subuid or /etc/subgid), added if
    missing."""
    from nbcontainer.layers.idmap import subid_range

    found = subid_range(path, name, pwd.getpwnam(name).pw_uid)
    if found:
        return found[0]
    subprocess.run(["usermod", "--add-subuids" if "uid" in path else "--add-subgids",
                    "300000-365535", name], check=True)
    found = subid_range(path, name, pwd.getpwnam(name).pw_uid)
    assert found
    return found[0]


def ensure_rootless_user(name: str = USER) -> pwd.struct_passwd:
    """The user with subordinate uid and gid ranges (what newuidmap needs)."""
    entry = ensure_user(name)
    ensure_subids(name, "/etc/subuid")
    ensure_subids(name, "/etc/subgid")
    return entry


def _readable(path: Path) -> bool:
    ensure_user()
    probe = ["runuser", "-u", USER, "--", "test", "-r", str(path)]
    return subprocess.run(probe, capture_output=True).returncode == 0


def _mirror(sources: dict[str, Path], key: str) -> Path:
    """A directory the test user can read holding ``sources`` (name → directory): hard
    links where the filesystem allows (no copy of the bytes), else copies. One per ``key``
    (the checkout and the state of its files); this checkout's older mirrors are removed."""
    h = hashlib.sha256()
    for name, src in sources.items():
        for path in sorted(src.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                st = path.stat()
                h.update(f"{name}/{path.relative_to(src)}\0{st.st_size}\0{st.st_mtime_ns}\n"
                         .encode())
    prefix = hashlib.sha256(f"{REPO}\0{key}".encode()).hexdigest()[:12]
    mirror = SOURCES / f"{prefix}-{h.hexdigest()[:16]}"
    if not mirror.is_dir():
        SOURCES.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="mirror-", dir=SOURCES))
        for name, src in sources.items():
            shutil.copytree(src, work / name, copy_function=_link_or_copy, symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__"))
        subprocess.run(["chmod", "-R", "a+rX", str(work)], check=True)
        try:
            os.rename(work, mirror)
        except OSError:  # another session made it meanwhile
            shutil.rmtree(work, ignore_errors=True)
        for old in SOURCES.glob(f"{prefix}-*"):
            if old != mirror and time.time() - old.stat().st_mtime > 6 * 3600:
                shutil.rmtree(old, ignore_errors=True)
    os.chmod(CACHE_ROOT, 0o755)
    os.chmod(SOURCES, 0o755)
    return mirror


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


@functools.cache
def user_repo() -> Path:
    """The checkout as the test user can import it (``nbcontainer``, ``tests``): itself
    when the user may read it, else a readable mirror (a clone under /root or in
    ``mktemp -d`` is mode 0700)."""
    if _readable(REPO / "tests" / "__init__.py"):
        return REPO
    return _mirror({pkg: REPO / pkg for pkg in PACKAGES}, "repo")


@functools.cache
def user_site() -> Path:
    """The venv's site-packages as the test user can import them (for the notebook side of
    the kernel tests): itself when readable, else a readable mirror of hard links."""
    import sysconfig

    site = Path(sysconfig.get_paths()["purelib"])
    if _readable(site / "nbclient" / "__init__.py"):
        return site
    return _mirror({"site": site}, "site") / "site"


def user_deps() -> Path:
    """The venv lives under /root (0700 here): give the test user a readable copy of the
    compiled dependencies (same CPython ABI as the system python3.11)."""
    import dockerfile
    import isal
    import urllib3
    import zstandard

    site = Path(zstandard.__file__).parents[1]
    for mod in (dockerfile, isal, urllib3, zstandard):
        src = Path(mod.__file__)
        names = [src.parent.name] if src.name == "__init__.py" else \
            [p.name for p in site.glob(src.name.split(".")[0] + "*")]
        for name in names:
            target = PYDEPS / name
            if not target.exists():
                PYDEPS.mkdir(parents=True, exist_ok=True)
                (shutil.copytree if (site / name).is_dir() else shutil.copy2)(site / name,
                                                                               target)
    subprocess.run(["chmod", "-R", "a+rX", str(PYDEPS.parent)], check=True)
    return PYDEPS


def user_python(deps: Path) -> str:
    """A system Python 3.11 that the test user can run with ``deps`` on its path."""
    python = next((p for p in ("/usr/bin/python3.11", "/usr/bin/python3") if subprocess.run(
        ["runuser", "-u", USER, "--", "env", f"PYTHONPATH={deps}", p, "-c",
         "import zstandard, isal, dockerfile"], capture_output=True).returncode == 0), None)
    if python is None:
        pytest.fail("no Python 3.11 the unprivileged user can run with the dependencies")
    return python


def module_argv(python: str, module: str, *, paths: tuple[Path, ...] = (),
                env: tuple[str, ...] = ()) -> list[str]:
    """The command that runs ``python -m module`` as the test user, with the repository
    (so ``nbcontainer`` and ``tests`` import; :func:`user_repo`) and ``paths`` as its
    explicit PYTHONPATH. Run it with ``cwd="/"``: the user cannot enter the caller's
    directory."""
    pythonpath = ":".join(str(p) for p in (user_repo(), *paths))
    return ["runuser", "-u", USER, "--", "env", f"PYTHONPATH={pythonpath}", *env, python,
            "-m", module]

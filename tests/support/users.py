"""The unprivileged test user ``nbtest``: created with a subordinate id range when missing,
and a Python it can run test modules with (``python -m tests.…``) while the project's venv
stays unreadable to it."""

from __future__ import annotations

import pwd
import shutil
import subprocess
from pathlib import Path

import pytest

USER = "nbtest"
REPO = Path(__file__).resolve().parents[2]
PYDEPS = Path("/var/cache/nbcontainer-test/pydeps")


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
    (so ``nbcontainer`` and ``tests`` import) and ``paths`` as its explicit PYTHONPATH.
    Run it with ``cwd="/"``: the user cannot enter the caller's directory."""
    pythonpath = ":".join(str(p) for p in (REPO, *paths))
    return ["runuser", "-u", USER, "--", "env", f"PYTHONPATH={pythonpath}", *env, python,
            "-m", module]

"""Disk hygiene for the suite: the builds here are whole Debian images, so a run writes
gigabytes. pytest removes a passing test's ``tmp_path`` at once (``tmp_path_retention_policy``
in pyproject.toml), but a module- or package-scoped fixture's ``mktemp`` directories stay
until the whole session ends; :func:`fixture_dir` removes them when the fixture ends, so the
peak is one suite's data, not the sum of all of them. :class:`TmpWatch` reports what a
session left in the system's temporary directory."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest


def fixture_dir(request: pytest.FixtureRequest, name: str) -> Path:
    """``tmp_path_factory.mktemp(name)``, removed when the fixture that asked ends."""
    factory: pytest.TempPathFactory = request.getfixturevalue("tmp_path_factory")
    path = factory.mktemp(name)
    request.addfinalizer(lambda: shutil.rmtree(path, ignore_errors=True))
    return path


def tree_size(path: Path) -> int:
    """Bytes below ``path`` (allocated blocks, not following links; unreadable parts 0)."""
    total = 0
    for root, dirs, files in os.walk(path, onerror=lambda _e: None):
        for name in (*dirs, *files):
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                pass
    return total


class TmpWatch:
    """The entries of the temporary directory made during a session and still there at
    its end, with their sizes (pytest's own base directory excepted: it has its policy)."""

    def __init__(self) -> None:
        self.root = Path(tempfile.gettempdir())
        self.before = set(os.listdir(self.root))

    def leftovers(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for name in set(os.listdir(self.root)) - self.before:
            if name.startswith("pytest-of-"):
                continue
            path = self.root / name
            try:
                st = path.lstat()
            except FileNotFoundError:  # gone since the listing
                continue
            found[name] = tree_size(path) if stat.S_ISDIR(st.st_mode) else st.st_size
        return found

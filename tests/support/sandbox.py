"""What the sandbox tests share: per-RUN scratch directories, and the unprivileged user's
environment that runs ``tests/sandbox/rootless_driver.py`` through ``runuser``."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support.users import module_argv


@dataclass
class Scratch:
    upper: Path
    work: Path
    base: Path


@dataclass
class RootlessEnv:
    user: str
    uid: int
    gid: int
    subuid: int
    base: Path
    rootfs: Path
    python: str
    paths: tuple[Path, ...] = ()  # the dependencies the user's python needs


    def run(self, request: dict) -> dict:
        """Run the driver as the unprivileged user; returns its JSON answer."""
        proc = subprocess.run(module_argv(self.python, "tests.sandbox.rootless_driver",
                                          paths=self.paths),
                              input=json.dumps(request).encode(), capture_output=True,
                              timeout=60, cwd="/")
        assert proc.returncode == 0, proc.stderr.decode()
        return json.loads(proc.stdout)

    def scratch(self, name: str) -> tuple[Path, Path]:
        base = self.base / name
        for d in (base, base / "upper", base / "work"):
            d.mkdir()
            os.chown(d, self.uid, self.gid)
        return base / "upper", base / "work"

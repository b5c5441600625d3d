"""Skip marks for missing privileges or tools. The root conftest turns every skip into a
failure (scripts/setup.sh installs everything), so these name what a run is missing."""

from __future__ import annotations

import os
import shutil

import pytest

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (sandbox, chown)")

needs_root_busybox = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("busybox"),
                                        reason="needs root (sandbox) and busybox-static")

needs_services = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("debootstrap") or not shutil.which("docker-registry"),
    reason="needs root, debootstrap and docker-registry")

"""Locate BuildKit's conformance data (never copied into the project).

The data lives in ``../shared/conformance/buildkit/`` next to the repository, or wherever
``NBCONTAINER_CONFORMANCE_DIR`` points. A missing folder is a hard error, never a skip, so
a CI run cannot go green without having compared anything.
"""

from __future__ import annotations

import os
from pathlib import Path


def conformance_dir() -> Path:
    """The ``buildkit`` conformance folder; raises if it is missing."""
    override = os.environ.get("NBCONTAINER_CONFORMANCE_DIR")
    base = (
        Path(override)
        if override
        else Path(__file__).resolve().parents[2].parent / "shared" / "conformance" / "buildkit"
    )
    marker = base / "frontend" / "dockerfile" / "parser" / "testfiles"
    if not marker.is_dir():
        raise RuntimeError(
            f"BuildKit conformance data not found at {base} "
            "(set NBCONTAINER_CONFORMANCE_DIR to the folder holding frontend/dockerfile/...)"
        )
    return base


BASE = conformance_dir()
PARSER = BASE / "frontend" / "dockerfile" / "parser"
SHELL = BASE / "frontend" / "dockerfile" / "shell"

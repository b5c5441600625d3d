"""BuildKit's conformance data, vendored byte for byte in ``tests/conformance/buildkit/``.

Origin, commit and license: ``buildkit/README.md`` and ``buildkit/LICENSE`` (Apache-2.0).
``NBCONTAINER_CONFORMANCE_DIR`` points the suite at another copy (a newer BuildKit).
A missing folder is a hard error, never a skip: a run cannot pass without comparing anything.
"""

from __future__ import annotations

import os
from pathlib import Path

VENDORED = Path(__file__).resolve().parent / "buildkit"


def conformance_dir() -> Path:
    """The ``buildkit`` conformance folder; raises if it is missing."""
    override = os.environ.get("NBCONTAINER_CONFORMANCE_DIR")
    base = Path(override) if override else VENDORED
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

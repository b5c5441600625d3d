"""The analysis package is UI-free and ``nbcontainer.image`` does not pull in a skin: checked
at run time (what an import loads) and in the source (function-local imports included)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import nbcontainer

PACKAGE = Path(nbcontainer.__file__).parent
# what docs/architecture.md lets analysis/ import: oci, layers, store and the level-0 modules
ANALYSIS_MAY_IMPORT = {"analysis", "oci", "layers", "store", "errors", "progress", "timestamps",
                       "humanize"}


def imported_modules(path: Path) -> set[str]:
    """Every nbcontainer module ``path`` imports, at any depth of the file."""
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("nbcontainer")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
                found |= {module} if node.module else {f"{base}.{a.name}" for a in node.names}
            elif node.module and node.module.startswith("nbcontainer"):
                found.add(node.module)
    return found


def test_analysis_imports_only_lower_packages() -> None:
    for path in sorted((PACKAGE / "analysis").glob("*.py")):
        for module in imported_modules(path):
            top = module.split(".")[1] if "." in module else ""
            assert top in ANALYSIS_MAY_IMPORT, f"{path.name} imports {module}"


def test_image_source_imports_no_skin_and_not_api() -> None:
    found = imported_modules(PACKAGE / "image.py")
    assert "nbcontainer.analysis" in found  # the checker does see imports
    bad = {m for m in found if m.split(".")[1] in ("notebook", "cli", "api", "options")}
    assert not bad


def test_importing_image_loads_no_notebook_module() -> None:
    code = ("import json, sys, nbcontainer.image, nbcontainer.analysis\n"
            "print(json.dumps(sorted(sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=120)
    loaded = json.loads(proc.stdout)
    assert "nbcontainer.image" in loaded
    assert not [m for m in loaded if m.startswith(("nbcontainer.notebook", "nbcontainer.cli",
                                                   "IPython", "ipywidgets"))]
    assert "nbcontainer.api" not in loaded

"""The import rules of docs/architecture.md hold for the product, and the checker that says
so catches a violation (shown on a small package made here, never in the product)."""

from __future__ import annotations

import sys
from pathlib import Path

import nbcontainer
from tests.support.layering import RULES, check

PACKAGE = Path(nbcontainer.__file__).parent


def test_the_product_keeps_its_layers_and_has_no_cycles() -> None:
    bad, loops = check(PACKAGE, "nbcontainer")
    assert not bad, "\n".join(bad)
    assert not loops, "\n".join(" → ".join(c) for c in loops)


def test_every_component_has_a_rule() -> None:
    names = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
             if (p.suffix == ".py" or (p / "__init__.py").exists()) and p.name != "__pycache__"}
    names = {"__init__" if n == "__init__" else n for n in names}
    assert names <= set(RULES), sorted(names - set(RULES))


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for rel, text in {"__init__.py": "", **files}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_checker_reports_a_lower_package_importing_an_upper_one(tmp_path: Path) -> None:
    root = _package(tmp_path, {
        "oci/__init__.py": "",
        "oci/model.py": "def f():\n    from ..api import thing  # function-local counts\n",
        "api.py": "from .oci import model\nthing = 1\n",
    })
    bad, loops = check(root, "pkg")
    assert bad == ["pkg.oci.model:2 imports pkg.api: 'oci' may not import 'api'"]
    assert loops == [["pkg.api", "pkg.oci.model"]]


def test_checker_reports_a_skin_reaching_around_the_api(tmp_path: Path) -> None:
    root = _package(tmp_path, {
        "cli/__init__.py": "",
        "cli/main.py": "import pkg.registry.client\nfrom .. import api\n",
        "registry/__init__.py": "",
        "registry/client.py": "",
        "api.py": "",
    })
    bad, _ = check(root, "pkg")
    assert bad == ["pkg.cli.main:1 imports pkg.registry.client: 'cli' may not import "
                   "'registry'"]


def test_checker_accepts_a_clean_package(tmp_path: Path) -> None:
    root = _package(tmp_path, {
        "oci/__init__.py": "from . import model\n",
        "oci/model.py": "from ..errors import E\n",
        "errors.py": "class E(Exception): ...\n",
        "store/__init__.py": "from ..oci.model import *\n",
    })
    assert check(root, "pkg") == ([], [])
    assert "tests.support.layering" in sys.modules


def test_typing_only_imports_count_for_layers_not_for_cycles(tmp_path: Path) -> None:
    root = _package(tmp_path, {
        "store/__init__.py": "",
        "store/a.py": "from typing import TYPE_CHECKING\nfrom . import b\n",
        "store/b.py": ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                       "    from . import a\n    from ..builder import x\n"),
        "builder/__init__.py": "",
        "builder/x.py": "",
    })
    bad, loops = check(root, "pkg")
    assert bad == ["pkg.store.b:4 imports pkg.builder.x: 'store' may not import 'builder'"]
    assert loops == []

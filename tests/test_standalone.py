"""The test tree stands alone and stays a package: the product, the scripts and the benchmarks
import nothing from ``tests``; shared test code is imported from ``tests.support``, never from
a conftest or another test module; nothing edits ``sys.path``."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
VENDORED = TESTS / "conformance" / "buildkit"  # data, not code


def _sources(*roots: str) -> Iterator[Path]:
    for root in roots:
        for path in sorted((REPO / root).rglob("*.py")):
            if VENDORED not in path.parents:
                yield path


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) of every import, function-local ones included; relative imports are
    resolved against the file's package."""
    package = path.relative_to(REPO).parent.parts
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            for alias in node.names:
                yield node.lineno, f"{module}.{alias.name}" if node.level else module


def test_product_scripts_and_benchmarks_import_nothing_from_tests() -> None:
    bad = [f"{p.relative_to(REPO)}:{line}: {mod}"
           for p in _sources("nbcontainer", "scripts", "benchmarks")
           for line, mod in _imports(p) if mod == "tests" or mod.startswith("tests.")]
    assert bad == []


def test_no_conftest_or_test_module_is_imported_as_a_library() -> None:
    bad = [f"{p.relative_to(REPO)}:{line}: {mod}"
           for p in _sources("tests", "scripts", "benchmarks")
           for line, mod in _imports(p)
           if any(part == "conftest" or part.startswith("test_") for part in mod.split("."))]
    assert bad == []


def test_nothing_edits_sys_path() -> None:
    bad = []
    for p in _sources("tests", "scripts"):
        for node in ast.walk(ast.parse(p.read_text(), str(p))):
            if isinstance(node, ast.Attribute) and node.attr == "path" and \
                    isinstance(node.value, ast.Name) and node.value.id == "sys":
                bad.append(f"{p.relative_to(REPO)}:{node.lineno}")
    assert bad == []


def test_every_test_directory_is_a_package() -> None:
    """Without ``__init__.py`` pytest would import a suite's modules by their base names
    (two ``test_cli.py`` would clash) and put the suite's folder on ``sys.path``."""
    dirs = {p.parent for p in _sources("tests")}
    assert sorted(str(d.relative_to(REPO)) for d in dirs if not (d / "__init__.py").exists()) == []

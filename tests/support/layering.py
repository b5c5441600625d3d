"""The package layering rules of docs/architecture.md, as a checker.

Reads every module of a package with ``ast`` (no import runs), collects its imports of the
package's own modules, module-level and function-local alike, and reports:

* each import of a component the importing component may not use (a lower package reaching
  up, or a skin reaching around the API), ``if TYPE_CHECKING:`` imports included: a lower
  package may not even name an upper one's types;
* each import cycle between modules (strongly connected components of the graph of the
  imports that run, so without the ``TYPE_CHECKING`` ones, which never execute).

A component is the first name below the package: ``builder`` for ``pkg.builder.solver``,
``api`` for ``pkg.api``; the package's own ``__init__`` is the component ``__init__``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

BASE = frozenset({"errors", "progress", "timestamps", "humanize", "version", "lazy"})
ENGINE = frozenset({"oci", "layers", "dockerfile", "store", "sandbox", "registry", "builder",
                    "analysis", "rootfs", "localregistry"})
SKIN = BASE | {"api", "image", "options", "wording", "oci", "analysis"}

# component → the components it may import (its own modules always).
RULES: dict[str, frozenset[str]] = {
    "errors": frozenset(),
    "lazy": frozenset(),
    "version": frozenset(),
    "humanize": frozenset(),
    "progress": frozenset(),
    "timestamps": frozenset({"errors"}),
    "oci": BASE,
    "layers": BASE | {"oci"},
    "dockerfile": BASE | {"oci"},
    "store": BASE | {"oci", "layers"},
    "sandbox": BASE | {"oci", "layers"},
    "registry": BASE | {"oci", "layers", "store"},
    "rootfs": BASE,
    "localregistry": BASE,
    "analysis": BASE | {"oci", "layers", "store"},
    "builder": BASE | {"oci", "layers", "dockerfile", "store", "sandbox", "registry"},
    "image": BASE | ENGINE,
    "kernel": BASE | ENGINE | {"image"},
    "api": BASE | ENGINE | {"image", "kernel"},
    "wording": BASE,
    "options": SKIN - {"options"},
    "notebook": SKIN,
    "cli": SKIN,
    "__init__": BASE | ENGINE | {"image", "kernel", "api", "options", "wording", "notebook", "cli"},
}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module (dotted)
    target: str  # the imported module (dotted)
    line: int
    typing_only: bool = False  # inside ``if TYPE_CHECKING:``

    def __str__(self) -> str:
        return f"{self.module}:{self.line} imports {self.target}"


def modules(root: Path, package: str) -> dict[str, Path]:
    """Dotted module name → file, for every ``.py`` below ``root`` (the package dir)."""
    out: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _typing_only_nodes(tree: ast.AST) -> set[int]:
    """ids of the nodes inside ``if TYPE_CHECKING:`` blocks."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for stmt in node.body:
                out.update(id(n) for n in ast.walk(stmt))
    return out


def imports(package: str, mods: Mapping[str, Path]) -> list[Import]:
    """Every import of one of ``mods`` by one of ``mods`` (to the deepest module named)."""
    found: list[Import] = []
    for name, path in mods.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(), str(path))
        typing_only = _typing_only_nodes(tree)
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(name, is_package, node)
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base
                           for a in node.names]
            for target in targets:
                while target and target not in mods:  # `import pkg.a.b` → the module
                    target = target.rpartition(".")[0]
                if target.split(".")[0] == package and target:
                    found.append(Import(name, target, node.lineno, id(node) in typing_only))
    return found


def component(package: str, module: str) -> str:
    rest = module.removeprefix(package).lstrip(".")
    return rest.split(".")[0] if rest else "__init__"


def violations(package: str, found: Iterable[Import],
               rules: Mapping[str, frozenset[str]] = RULES) -> list[str]:
    out = []
    for imp in found:
        src, dst = component(package, imp.module), component(package, imp.target)
        if src == dst:
            continue
        if src not in rules:
            out.append(f"{imp}: component {src!r} has no rule (add it to the table)")
        elif dst not in rules[src]:
            out.append(f"{imp}: {src!r} may not import {dst!r}")
    return out


def cycles(found: Iterable[Import]) -> list[list[str]]:
    """Import cycles: strongly connected components with more than one module (Tarjan)."""
    graph: dict[str, set[str]] = {}
    for imp in found:
        if imp.module != imp.target and not imp.typing_only:
            graph.setdefault(imp.module, set()).add(imp.target)
            graph.setdefault(imp.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                scc.append(w)
                if w == v:
                    break
            if len(scc) > 1:
                out.append(sorted(scc))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def check(root: Path, package: str,
          rules: Mapping[str, frozenset[str]] = RULES) -> tuple[list[str], list[list[str]]]:
    """(violations, cycles) of the package in ``root``."""
    found = imports(package, modules(root, package))
    return violations(package, found, rules), cycles(found)

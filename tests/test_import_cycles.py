"""No module of ours takes part in an import cycle.

The packages are read with :mod:`ast`, never imported: every ``import`` and ``from ... import`` of a
module counts, at the top level or inside a function (a deferred import still ties the two modules
together), except those under ``if TYPE_CHECKING:``, which never run. ``from pkg import name`` counts as
an import of ``pkg.name`` when that is a module of ours, else of ``pkg``. A package's ``__init__`` is the
module ``pkg``; importing ``pkg.mod`` runs it too, but an edge to it is not counted (re-exporting a
submodule from the package's ``__init__`` would otherwise always look like a cycle).
"""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "llmfn", "scaling", "preload", "functions", "layers", "infra")
"""Our packages: ``[tool.setuptools.packages.find] include`` of pyproject.toml."""


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _our_modules() -> dict[str, Path]:
    return {
        _module_name(path): path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))
    }


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """The import statements of ``tree`` that can run (skips the bodies of ``if TYPE_CHECKING:``)."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _imported(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of ours that ``module`` (at ``path``) imports."""
    is_package = path.name == "__init__.py"
    targets: set[str] = set()
    for node in _runtime_imports(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
            continue
        if node.level:
            base = module.split(".")
            base = base[: len(base) - node.level + (1 if is_package else 0)]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        for alias in node.names:
            submodule = f"{source}.{alias.name}"
            targets.add(submodule if submodule in modules else source)
    return {t for t in targets if t in modules and t != module and not module.startswith(t + ".")}


def import_graph() -> dict[str, set[str]]:
    """Each of our modules and the modules of ours it imports."""
    modules = _our_modules()
    return {module: _imported(module, path, modules) for module, path in modules.items()}


def test_the_walk_sees_our_packages_and_their_imports() -> None:
    graph = import_graph()
    assert {"preload.loader", "preload.staged", "functions.serve", "scaling"} <= graph.keys()
    assert "preload.staged" in graph["preload.loader"]  # the deferred import of the CUDA path
    assert "preload.shard_files" in graph["preload.staged"]
    assert "preload.loader" in graph["preload"]  # a package's __init__ counts as a module


def test_no_module_of_ours_takes_part_in_an_import_cycle() -> None:
    try:
        TopologicalSorter(import_graph()).prepare()
    except CycleError as exc:
        raise AssertionError(f"import cycle among our modules: {' -> '.join(exc.args[1])}") from None

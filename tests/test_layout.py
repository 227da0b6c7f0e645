"""The dependency direction of README's layout table, checked on every import of every module.

| folder       | may import (besides itself and third-party packages)                 |
|--------------|-----------------------------------------------------------------------|
| `core/`      | nothing of ours                                                       |
| `scaling/`   | `core`                                                                |
| `preload/`   | `core`                                                                |
| `functions/` | `core`, `scaling`, `preload` (never `llmfn`: what is deployed needs no CLI) |
| `layers/`    | `core`                                                                |
| `infra/`     | `core`, `scaling`, `layers`, and the exceptions below                 |
| `llmfn/`     | everything                                                            |

Imports are read with :mod:`ast`, so an import inside a function body counts as much as one at the top.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = frozenset({"core", "scaling", "preload", "functions", "layers", "infra", "llmfn", "tests", "bench"})

# package -> the packages (or dotted modules: a module and everything under it) it may import
ALLOWED: dict[str, tuple[str, ...]] = {
    "core": ("core",),
    "scaling": ("scaling", "core"),
    "preload": ("preload", "core"),
    "functions": ("functions", "core", "scaling", "preload"),
    "layers": ("layers", "core"),
    "infra": ("infra", "core", "scaling", "layers"),
}

# (importer, imported) pairs the table does not allow yet, one line each so a new one fails here; none
# left since DESCRIPTION_PREFIX moved into core.contract
KNOWN_EXCEPTIONS: frozenset[tuple[str, str]] = frozenset()


def _module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports_of(path: Path, root: Path = ROOT) -> Iterator[str]:
    """Absolute dotted names of every module ``path`` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _module_name(path, root).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            yield prefix
            # ``from core import contract`` imports the module core.contract
            yield from (f"{prefix}.{alias.name}" for alias in node.names if alias.name != "*")


def _is_within(name: str, allowed: str) -> bool:
    return name == allowed or name.startswith(allowed + ".")


def _violations(package: str, root: Path = ROOT) -> list[str]:
    found: list[str] = []
    for path in sorted((root / package).rglob("*.py")):
        importer = _module_name(path, root)
        names = set(_imports_of(path, root))
        for name in sorted(names):
            if name.split(".")[0] not in OURS:
                continue
            if any(_is_within(name, allowed) for allowed in ALLOWED[package]):
                continue
            # ``from core import contract`` also yields the bare "core": allowed when a
            # permitted submodule of it is what the statement names
            if any(_is_within(allowed, name) and allowed in names for allowed in ALLOWED[package]):
                continue
            if any(importer == src and _is_within(name, dst) for src, dst in KNOWN_EXCEPTIONS):
                continue
            found.append(f"{importer} imports {name}")
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_each_package_imports_only_what_the_layout_table_allows(package: str) -> None:
    assert _violations(package) == []


def test_every_known_exception_still_exists() -> None:
    """An exception that is gone (moved into core.contract) must leave the list too."""
    for importer, imported in sorted(KNOWN_EXCEPTIONS):
        path = ROOT / (importer.replace(".", "/") + ".py")
        assert any(_is_within(name, imported) for name in _imports_of(path)), (importer, imported)


def test_the_checker_sees_forbidden_imports_anywhere_in_a_module(tmp_path: Path) -> None:
    """Top-level, in a function body, relative: each forbidden import is reported, allowed ones are not."""
    package = tmp_path / "functions"
    package.mkdir()
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "mod.py").write_text(
        "import numpy\nfrom functions.app import create_app\nfrom . import contract\n"
        "def f():\n    from llmfn.local import worker\n    import infra.common\n",
        encoding="utf-8",
    )
    assert _violations("functions", tmp_path) == [
        "functions.mod imports infra.common",
        "functions.mod imports llmfn.local",
        "functions.mod imports llmfn.local.worker",
    ]
    layers = tmp_path / "layers"
    layers.mkdir()
    (layers / "build.py").write_text(
        "from core import contract\nfrom core.contract import ENTRY\n", encoding="utf-8"
    )
    assert _violations("layers", tmp_path) == []
    kernel = tmp_path / "core"
    kernel.mkdir()
    (kernel / "contract.py").write_text("from functions.errors import APIError\n", encoding="utf-8")
    assert _violations("core", tmp_path) == [
        "core.contract imports functions.errors",
        "core.contract imports functions.errors.APIError",
    ]
    (layers / "bad.py").write_text("from functions import app\n", encoding="utf-8")
    assert _violations("layers", tmp_path) == [
        "layers.bad imports functions",
        "layers.bad imports functions.app",
    ]


def test_what_is_not_deployed_is_gone_from_functions() -> None:
    """The local runtime, the tiny model and promotion live under llmfn/, not in the function zip."""
    for moved in ("dev", "promote", "tiny_model.py"):
        assert not (ROOT / "functions" / moved).exists(), moved

"""Which of our source files a function needs: the import closure of its entry points.

A function package carries only the modules its handlers import, directly or through others (imports
inside functions included, since a handler may run them), so the simulator, the load generator, the
local runtime and CI promotion never ship. The closure is computed with the standard library's
:mod:`modulefinder`, which reads each module's bytecode without running it; its search path is only
``source_root``, so third-party and standard-library imports stay outside (they come from the runtime
layer and the platform's Python).
"""

from __future__ import annotations

import modulefinder
from collections.abc import Sequence
from pathlib import Path

from core.clouds import CLOUD_PLUGINS
from core.errors import InputError

OUR_PACKAGES = ("core", "functions", "preload", "scaling")
"""The top-level packages of ours a deployed function may import (``llmfn``, ``infra``, ``layers``,
``bench`` and ``tests`` never run in a function)."""


CONNECTORS: tuple[str, ...] = tuple(row.connector for row in CLOUD_PLUGINS.values())
"""The function side's module of every registered cloud: in the closure whenever the registry is."""


class ClosureError(InputError):
    """An entry point module is not found under the source root (the message names it)."""


def import_closure(
    source_root: Path, entry_modules: Sequence[str], packages: Sequence[str] = OUR_PACKAGES
) -> list[str]:
    """The files (POSIX paths relative to ``source_root``, sorted) of every module of ``packages`` that
    ``entry_modules`` (dotted module names) import, transitively, including each package's ``__init__.py``.

    Raises ClosureError when an entry module is missing.
    """
    root = source_root.resolve()
    finder = modulefinder.ModuleFinder(path=[str(root)])
    for module in entry_modules:
        try:
            finder.import_hook(module)
        except ImportError as exc:
            raise ClosureError(f"entry point module {module!r} not found under {str(root)!r}") from exc
    # the cloud registry loads each cloud's connector by its import path, which modulefinder cannot see
    if "core.clouds" in finder.modules:
        for module in CONNECTORS:
            try:
                finder.import_hook(module)
            except ImportError as exc:
                raise ClosureError(
                    f"cloud connector module {module!r} not found under {str(root)!r}"
                ) from exc
    files = set()
    for name, found in finder.modules.items():
        if name.split(".")[0] not in packages or not found.__file__:
            continue
        path = Path(found.__file__).resolve()
        if path.is_relative_to(root):
            files.add(path.relative_to(root).as_posix())
    return sorted(files)

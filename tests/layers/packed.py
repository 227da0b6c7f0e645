"""Run code with only a built function package's files of ours importable, as Lambda would.

The checkout is installed editable, so a module missing from the zip would silently come from the
checkout; the prelude stops that: our top-level packages resolve only inside the unpacked zip, and the
packages of ours that never ship (llmfn, layers, infra, tests, bench) do not resolve at all.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from layers import BuildRequest, build_packages

REPO_ROOT = Path(__file__).resolve().parents[2]
NEVER_SHIPPED = ("llmfn", "layers", "infra", "tests", "bench")

_PRELUDE = """
import importlib.abc, importlib.machinery, sys
PACKED = {packed!r}
SHIPPED = {shipped!r}
NEVER_SHIPPED = {never!r}

class OnlyThePackage(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        if top in NEVER_SHIPPED:
            raise ModuleNotFoundError(f"{{name}} is not in the function package", name=name)
        if top in SHIPPED:  # a submodule too: the editable install's finder would map it to the checkout
            spec = importlib.machinery.PathFinder.find_spec(name, [PACKED] if path is None else path)
            if spec is None:
                raise ModuleNotFoundError(f"{{name}} is not in the function package", name=name)
            return spec
        return None

sys.meta_path.insert(0, OnlyThePackage())
sys.path.insert(0, PACKED)
"""


def build_and_unpack(tmp_path: Path) -> Path:
    """Build the AWS function package (no layer) under ``tmp_path`` and unpack it; the unpacked dir."""
    build_packages(BuildRequest(cloud="aws", out_dir=tmp_path / "out", source_root=REPO_ROOT))
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(tmp_path / "out" / "llmfn-function-aws.zip") as function:
        function.extractall(unpacked)
    return unpacked


def run_packed(
    unpacked: Path, code: str, env: dict[str, str] | None = None, timeout_s: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh Python whose packages of ours come only from ``unpacked``."""
    shipped = tuple(sorted(p.name for p in unpacked.iterdir() if (p / "__init__.py").is_file()))
    prelude = _PRELUDE.format(packed=str(unpacked), shipped=shipped, never=NEVER_SHIPPED)
    base = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("LLMFN_")}
    return subprocess.run(
        [sys.executable, "-c", prelude + code],
        capture_output=True,
        text=True,
        cwd=unpacked,
        env={**base, **(env or {})},
        timeout=timeout_s,
    )

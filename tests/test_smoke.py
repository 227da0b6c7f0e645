"""Every package imports, and the installed ``llmfn`` command answers --help and --version."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from llmfn import __version__

PACKAGES = ["core", "llmfn", "scaling", "preload", "functions", "layers", "infra"]


@pytest.mark.parametrize("name", PACKAGES)
def test_package_imports(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__doc__, f"package {name} needs a docstring saying what it holds"


def _llmfn() -> list[str]:
    exe = Path(sys.executable).with_name("llmfn")
    assert exe.exists(), f"console script not installed next to {sys.executable}"
    return [str(exe)]


def test_cli_help_lists_usage() -> None:
    out = subprocess.run([*_llmfn(), "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "Usage: llmfn" in out.stdout


def test_cli_version() -> None:
    out = subprocess.run([*_llmfn(), "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"llmfn {__version__}"


def test_cli_unknown_command_is_a_usage_error() -> None:
    out = subprocess.run([*_llmfn(), "no-such-command"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "No such command" in out.stderr
    assert "Traceback" not in out.stderr


def test_tiny_model_is_sharded_with_index(tiny_model_dir: Path) -> None:
    index = json.loads((tiny_model_dir / "model.safetensors.index.json").read_text())
    shards = set(index["weight_map"].values())
    assert len(shards) >= 2
    assert "model.embed_tokens.weight" in index["weight_map"]
    assert "lm_head.weight" not in index["weight_map"]  # tied, as Qwen3-4B
    config = json.loads((tiny_model_dir / "config.json").read_text())
    assert config["model_type"] == "qwen3"

"""Fixtures shared by every suite. Suite-specific fixtures live in each suite's own conftest."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DIR = REPO_ROOT.parent / "shared"
TRACES_DIR = SHARED_DIR / "data" / "traces"


@pytest.fixture(scope="session")
def traces_dir() -> Path:
    """The shipped public traces (``../shared/data/traces``)."""
    if not TRACES_DIR.is_dir():
        pytest.fail(f"shipped traces not found at {TRACES_DIR}: the checkout needs ../shared beside it")
    return TRACES_DIR


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight Qwen3 checkpoint (3 bf16 shards + index + tokenizer), built once per run."""
    from functions.tiny_model import ensure_tiny_model

    return ensure_tiny_model(tmp_path_factory.mktemp("tiny-model-cache"))

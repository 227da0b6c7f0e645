"""Fixtures shared by every suite. Suite-specific fixtures live in each suite's own conftest."""

from __future__ import annotations

from collections.abc import Iterator
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
    from llmfn.local.tiny_model import ensure_tiny_model

    return ensure_tiny_model(tmp_path_factory.mktemp("tiny-model-cache"))


@pytest.fixture(scope="session")
def moto_server_url() -> Iterator[str]:
    """moto's ThreadedMotoServer on 127.0.0.1 (a free port), shared by the suites that need AWS; tests that
    need a clean state reset it (``/moto-api/reset``)."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    configure_moto(url)
    yield url
    server.stop()


def configure_moto(url: str) -> None:
    """moto's Lambda runs functions without docker (none here); set again after each reset."""
    import requests

    requests.post(
        f"{url}/moto-api/config", json={"lambda": {"use_docker": False}}, timeout=10
    ).raise_for_status()

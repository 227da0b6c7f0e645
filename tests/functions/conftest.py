"""Fixtures of the inference function suite: a tiny-model server over real HTTP, shared per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from functions.api.router import create_app
from functions.settings import ServeSettings
from tests.functions.helpers import running, wait_ready

API_KEY = "sk-test-0123456789"


@pytest.fixture(scope="session")
def tiny_server(tiny_model_dir: Path) -> Iterator[str]:
    """The transformers engine on the tiny model, with an API key; yields the base URL once ready."""
    settings = ServeSettings.build(
        model=tiny_model_dir,
        model_name="tiny",
        api_key=API_KEY,
        preload_workers=2,
        max_concurrency=2,
        max_tokens_cap=64,
        max_body_bytes=64 * 1024,
        access_log=False,
    )
    with running(create_app(settings)) as url:
        wait_ready(url, api_key=API_KEY)
        yield url

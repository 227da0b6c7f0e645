"""A deployed function fetches its checkpoint from ``LLMFN_MODEL_SOURCE`` (S3 / COS / Hub) at start-up,
in the background like the preload, then serves it: here from moto's S3 over real HTTP."""

from __future__ import annotations

from pathlib import Path

import boto3
import httpx
import pytest

from functions.api.router import create_app
from functions.settings import ServeSettings, SettingsError
from tests.functions.helpers import running, wait_ready


def test_function_serves_a_checkpoint_fetched_from_s3(
    tiny_model_dir: Path, moto_server_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": moto_server_url,
    }.items():
        monkeypatch.setenv(name, value)
    s3 = boto3.client("s3", endpoint_url=moto_server_url)
    s3.create_bucket(Bucket="llmfn-models")
    for path in sorted(tiny_model_dir.iterdir()):
        s3.put_object(Bucket="llmfn-models", Key=f"tiny/v1/{path.name}", Body=path.read_bytes())

    settings = ServeSettings.from_env(
        {
            "LLMFN_MODEL_SOURCE": "s3://llmfn-models/tiny/v1",
            "LLMFN_MODEL_CACHE_DIR": str(tmp_path / "cache"),
            "LLMFN_MODEL_NAME": "tiny",
            "LLMFN_PRELOAD_WORKERS": "2",
        }
    )
    with running(create_app(settings)) as url:
        wait_ready(url)
        response = httpx.post(
            url + "/v1/chat/completions",
            json={"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3},
            timeout=60,
        )
    assert response.status_code == 200, response.text
    assert response.json()["usage"]["completion_tokens"] >= 1
    fetched = {p.name for p in (tmp_path / "cache").rglob("*.safetensors")}
    assert fetched == {p.name for p in tiny_model_dir.glob("*.safetensors")}


def test_model_dir_and_source_together_are_refused() -> None:
    with pytest.raises(SettingsError, match="not both"):
        ServeSettings.build(model=Path("/tmp"), model_source="s3://b/p")

"""The three cloud entry points answer a request: Lambda (HTTP API v2 events) and SCF events in-process,
the SCF web function over real HTTP (its own process on a free port of 127.0.0.1)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from functions.cloud.aws import entry as aws_lambda
from functions.cloud.tencent import entry_event as scf_event
from tests.functions.helpers import free_port, spawned, wait_ready

KEY = "sk-entry"
CHAT = {
    "model": "tiny",
    "messages": [{"role": "user", "content": "hello"}],
    "max_tokens": 3,
    "temperature": 0,
}


@pytest.fixture
def entry_env(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "LLMFN_MODEL": str(tiny_model_dir),
        "LLMFN_MODEL_NAME": "tiny",
        "LLMFN_API_KEY": KEY,
        "LLMFN_PRELOAD_WORKERS": "2",
        "LLMFN_ACCESS_LOG": "false",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(aws_lambda, "_handler", None)
    monkeypatch.setattr(scf_event, "_handler", None)


def http_api_v2_event(method: str, path: str, body: str | None, base64_body: bool = False) -> dict:
    """An API Gateway HTTP API (payload format 2.0) event as Lambda receives it."""
    event = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {
            "accept": "*/*",
            "authorization": f"Bearer {KEY}",
            "content-type": "application/json",
            "host": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com",
            "user-agent": "curl/8.5.0",
            "x-amzn-trace-id": "Root=1-67891233-abcdef012345678912345678",
            "x-forwarded-for": "203.0.113.7",
            "x-forwarded-port": "443",
            "x-forwarded-proto": "https",
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "a1b2c3d4e5",
            "domainName": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "a1b2c3d4e5",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "curl/8.5.0",
            },
            "requestId": "JKJaXmPLvHcESHA=",
            "routeKey": "$default",
            "stage": "$default",
            "time": "22/Nov/2026:00:30:00 +0000",
            "timeEpoch": 1795307400000,
        },
        "isBase64Encoded": base64_body,
    }
    if body is not None:
        event["body"] = base64.b64encode(body.encode()).decode() if base64_body else body
    return event


def scf_apigw_event(method: str, path: str, body: str | None) -> dict:
    """A Tencent SCF API gateway trigger event."""
    return {
        "requestContext": {
            "serviceId": "service-f94sy04v",
            "path": "/v1",
            "httpMethod": method,
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "identity": {"secretId": "abdcdxxxxxxxsdfs"},
            "sourceIp": "10.0.2.14",
            "stage": "release",
        },
        "headers": {
            "accept": "*/*",
            "authorization": f"Bearer {KEY}",
            "content-type": "application/json",
            "host": "service-f94sy04v-1250000000.gz.apigw.tencentcs.com",
            "user-agent": "curl/8.5.0",
        },
        "body": body or "",
        "pathParameters": {},
        "queryStringParameters": {},
        "headerParameters": {},
        "stageVariables": {"stage": "release"},
        "path": path,
        "queryString": {},
        "httpMethod": method,
        "isBase64Encoded": False,
    }


def test_lambda_answers_an_http_api_v2_chat_event(entry_env: None) -> None:
    response = aws_lambda.handler(http_api_v2_event("POST", "/v1/chat/completions", json.dumps(CHAT)), None)
    assert response["statusCode"] == 200, response
    body = json.loads(response["body"])
    assert body["object"] == "chat.completion"
    assert body["usage"]["completion_tokens"] >= 1
    assert response["headers"]["x-llmfn-tier"] in {"S", "M", "L"}

    encoded = http_api_v2_event("POST", "/v1/completions", json.dumps({**CHAT, "prompt": "hi"}), True)
    assert aws_lambda.handler(encoded, None)["statusCode"] == 200
    models = aws_lambda.handler(http_api_v2_event("GET", "/v1/models", None), None)
    assert json.loads(models["body"])["data"][0]["id"] == "tiny"


def test_lambda_errors_keep_openai_format(entry_env: None) -> None:
    event = http_api_v2_event("POST", "/v1/chat/completions", "{not json")
    response = aws_lambda.handler(event, None)
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["error"]["code"] == "invalid_json"
    event = http_api_v2_event("POST", "/v1/chat/completions", json.dumps(CHAT))
    event["headers"]["authorization"] = "Bearer wrong"
    assert aws_lambda.handler(event, None)["statusCode"] == 401


def test_scf_event_function_answers_an_api_gateway_event(entry_env: None) -> None:
    response = scf_event.main_handler(scf_apigw_event("POST", "/v1/chat/completions", json.dumps(CHAT)), None)
    assert set(response) == {"isBase64Encoded", "statusCode", "headers", "body"}
    assert response["statusCode"] == 200, response
    assert response["isBase64Encoded"] is False
    assert json.loads(response["body"])["choices"][0]["message"]["role"] == "assistant"
    ready = scf_event.main_handler(scf_apigw_event("GET", "/readyz", None), None)
    assert json.loads(ready["body"])["ready"] is True


def test_scf_event_streaming_request_is_answered_whole(entry_env: None) -> None:
    body = json.dumps({**CHAT, "stream": True})
    response = scf_event.main_handler(scf_apigw_event("POST", "/v1/chat/completions", body), None)
    assert response["statusCode"] == 200
    assert response["headers"]["content-type"].startswith("text/event-stream")
    assert response["body"].rstrip().endswith("data: [DONE]")


@pytest.fixture
def scf_web_server(tiny_model_dir: Path) -> Iterator[str]:
    port = free_port()
    env = {
        "LLMFN_MODEL": str(tiny_model_dir),
        "LLMFN_MODEL_NAME": "tiny",
        "LLMFN_API_KEY": KEY,
        "LLMFN_HOST": "127.0.0.1",
        "LLMFN_PORT": str(port),
        "LLMFN_PRELOAD_WORKERS": "2",
    }
    with spawned("functions.cloud.tencent.entry_web", [], env, port) as url:
        yield url


@pytest.mark.slow
def test_scf_web_function_serves_over_http(scf_web_server: str) -> None:
    wait_ready(scf_web_server, api_key=KEY)
    response = httpx.post(
        scf_web_server + "/v1/chat/completions",
        json=CHAT,
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.json()["usage"]["total_tokens"] > 0


def test_scf_web_defaults_to_port_9000_on_all_interfaces(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from functions.cloud.tencent.entry_web import web_settings

    monkeypatch.setenv("LLMFN_MODEL", str(tiny_model_dir))
    monkeypatch.setenv("LLMFN_API_KEY", KEY)
    monkeypatch.delenv("LLMFN_HOST", raising=False)
    monkeypatch.delenv("LLMFN_PORT", raising=False)
    settings = web_settings()
    assert (settings.host, settings.port) == ("0.0.0.0", 9000)


def test_entry_points_refuse_to_start_without_a_key_unless_public(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from functions.cloud.tencent.entry_web import web_settings
    from functions.events import settings_from_env
    from functions.settings import SettingsError

    monkeypatch.setenv("LLMFN_MODEL", str(tiny_model_dir))
    for name in ("LLMFN_API_KEY", "LLMFN_PUBLIC", "LLMFN_HOST", "LLMFN_PORT"):
        monkeypatch.delenv(name, raising=False)
    for build in (web_settings, settings_from_env):
        with pytest.raises(SettingsError, match=r"api_key: required .*LLMFN_API_KEY.*LLMFN_PUBLIC=1"):
            build()
    monkeypatch.setenv("LLMFN_PUBLIC", "1")
    assert web_settings().public and settings_from_env().api_key is None


def test_scf_web_without_a_key_exits_with_one_line(tiny_model_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("LLMFN_API_KEY", "LLMFN_PUBLIC", "LLMFN_HOST")}
    done = subprocess.run(
        [sys.executable, "-m", "functions.cloud.tencent.entry_web"],
        env={**env, "LLMFN_MODEL": str(tiny_model_dir), "LLMFN_PORT": str(free_port())},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: invalid settings: api_key: required because host '0.0.0.0'")
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_serve_module_is_the_worker_process_llmfn_dev_spawns(tiny_model_dir: Path) -> None:
    port = free_port()
    args = [
        "--model",
        str(tiny_model_dir),
        "--model-name",
        "tiny",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    with spawned("functions.serve", [*args, "--api-key", KEY, "--engine", "transformers"], {}, port) as url:
        headers = {"Authorization": f"Bearer {KEY}"}
        readiness = httpx.get(url + "/readyz", headers=headers)
        assert readiness.status_code in {200, 503}
        assert {"ready", "stage", "progress"} <= set(readiness.json())
        assert wait_ready(url, api_key=KEY)["stage"] == "ready"
        response = httpx.post(
            url + "/v1/completions", json={**CHAT, "prompt": "hi"}, headers=headers, timeout=30
        )
        assert response.status_code == 200, response.text
        metrics = httpx.get(url + "/metrics", headers=headers).text
        assert 'llmfn_requests_total{route="completions",status="200"} 1.0' in metrics
        assert 'llmfn_preload_stage_seconds{stage="blocks"}' in metrics

"""The gateway against hostile clients (issue 13), in-process over real HTTP in front of real null-engine
worker processes: the API key guards every route but /healthz, bodies are limited and parsed before a
worker is leased, every error is OpenAI-shaped with a string code, and a connection that breaks on a
healthy worker does not retire it."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmfn.local.config import DevConfig
from llmfn.local.gateway import Gateway, create_gateway, gateway_openapi, request_tier
from llmfn.local.runner import build_gateway
from tests.functions.helpers import assert_openai_error, running
from tests.fuzzing import chat_bodies, completion_bodies, json_values, run_bodies, run_openapi
from tests.local.helpers import DevServer, wait_until

KEY = "sk-gateway-test"
AUTH = {"Authorization": f"Bearer {KEY}"}
CHAT = "/v1/chat/completions"
BODY_LIMIT = 8192


class DropEveryOtherRequest(httpx.AsyncBaseTransport):
    """A transport whose every other request fails as a keep-alive connection the worker has closed
    fails ("Server disconnected without sending a response."); the others pass to ``inner``."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.armed = False
        self.sent = 0
        self.dropped = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.armed and request.url.path.startswith("/v1/"):
            self.sent += 1
            if self.sent % 2 == 1:
                self.dropped += 1
                raise httpx.RemoteProtocolError(
                    "Server disconnected without sending a response.", request=request
                )
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture(scope="module")
def gateway(tiny_model_dir: Path) -> Iterator[tuple[str, Gateway]]:
    config = DevConfig(
        model_dir=tiny_model_dir,
        model_name="tiny",
        engine="null",
        policy="fixed",
        reserved=1,
        max_instances=2,
        tick_s=0.2,
        queue_timeout_s=30,
        api_key=KEY,
        max_body_bytes=BODY_LIMIT,
    )
    gw = build_gateway(config)
    with running(create_gateway(gw)) as url:
        wait_until(lambda: gw.pool.state_counts().get("reserved/ready"), 60, "the reserved null worker")
        yield url, gw


def chat(url: str, **extra: Any) -> httpx.Response:
    body = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, **extra}
    return httpx.post(url + CHAT, json=body, headers=AUTH, timeout=30)


def test_only_healthz_is_open_with_a_key(gateway: tuple[str, Gateway]) -> None:
    url, gw = gateway
    arrivals = gw.pool.counters.arrivals
    assert httpx.get(url + "/healthz").status_code == 200
    for path in ("/_llmfn/status", "/metrics", "/v1/models"):
        assert assert_openai_error(httpx.get(url + path), 401)["code"] == "invalid_api_key"
        assert httpx.get(url + path, headers=AUTH).status_code == 200
    body = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}]}
    assert_openai_error(httpx.post(url + CHAT, json=body), 401)
    assert_openai_error(httpx.post(url + CHAT, json=body, headers={"Authorization": "Bearer nope"}), 401)
    assert gw.pool.counters.arrivals == arrivals  # refused before a worker was leased
    assert chat(url).status_code == 200  # the key reaches the worker, which checks it too


def test_routing_errors_are_openai_shaped_with_string_codes(gateway: tuple[str, Gateway]) -> None:
    url, _ = gateway
    assert assert_openai_error(httpx.get(url + "/nope", headers=AUTH), 404)["code"] == "not_found"
    assert (
        assert_openai_error(httpx.delete(url + "/v1/models", headers=AUTH), 405)["code"]
        == "method_not_allowed"
    )
    assert assert_openai_error(httpx.put(url + CHAT, headers=AUTH), 405)["code"] == "method_not_allowed"


def test_bodies_are_limited_and_parsed_before_a_worker_is_leased(gateway: tuple[str, Gateway]) -> None:
    url, gw = gateway
    arrivals = gw.pool.counters.arrivals
    big = {"model": "tiny", "messages": [{"role": "user", "content": "x" * (BODY_LIMIT + 1)}]}
    assert_openai_error(httpx.post(url + CHAT, json=big, headers=AUTH), 413)

    def chunks() -> Iterator[bytes]:  # no content-length: refused while reading, not after
        yield b'{"model": "tiny", "prompt": "'
        for _ in range(100):
            yield b"y" * 1024
        yield b'"}'

    assert_openai_error(httpx.post(url + "/v1/completions", content=chunks(), headers=AUTH), 413)
    hostile = [
        b"[" * 3000 + b"]" * 3000,
        b'{"model": "tiny", "messages": [{"role": "user", "content": "\\ud800"}]}',
        b'{"model": "tiny", "temperature": NaN}',
        b"[1]",
        b"{",
    ]
    for content in hostile:
        response = httpx.post(
            url + CHAT, content=content, headers={**AUTH, "content-type": "application/json"}
        )
        assert assert_openai_error(response, 400)["code"] == "invalid_json"
    assert gw.pool.counters.arrivals == arrivals


def test_worker_errors_pass_through_in_openai_format(gateway: tuple[str, Gateway]) -> None:
    url, _ = gateway
    error = assert_openai_error(chat(url, seed=2**64), 422, param="seed")
    assert error["code"] == "invalid_value"
    assert assert_openai_error(chat(url, model="gpt-9"), 404)["code"] == "model_not_found"


def test_a_connection_that_breaks_on_a_healthy_worker_does_not_retire_it(
    gateway: tuple[str, Gateway],
) -> None:
    """The repro: alternating a request that made the worker close its keep-alive connection with a
    normal one 15 times retired 7 healthy workers."""
    url, gw = gateway
    flaky = DropEveryOtherRequest(httpx.AsyncHTTPTransport())
    original, gw.client = gw.client, httpx.AsyncClient(transport=flaky, timeout=30)
    try:
        worker = gw.pool.workers[0].worker_id
        deaths = gw.pool.counters.worker_deaths
        flaky.armed = True
        for _ in range(15):
            response = chat(url)
            assert response.status_code == 200, response.text
            assert response.headers["x-llmfn-worker"] == str(worker)
        assert flaky.dropped == 15  # each request met a dead connection first, then was retried
        assert gw.pool.counters.worker_deaths == deaths
        assert [w.worker_id for w in gw.pool.workers] == [worker]
    finally:
        flaky.armed = False
        gw.client = original


@pytest.mark.slow
def test_sigterm_with_requests_open_ends_them_with_errors_quietly(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    """The repro: SIGTERM with streams open gave clients 500s and CancelledError tracebacks. Now open
    streams end with a ``shutting_down`` error event, a buffered request gets 503, and the log is quiet."""
    server = DevServer(
        tiny_model_dir,
        tmp_path / "dev.log",
        "--policy",
        "fixed",
        "--reserved",
        "1",
        "--slots",
        "3",
        "--tick",
        "0.2",
    )
    try:
        server.wait_ready(1)
        model = httpx.get(server.url + "/v1/models").json()["data"][0]["id"]
        body = {
            "model": model,
            "messages": [{"role": "user", "content": "Go on"}],
            "max_tokens": 1900,
            "temperature": 0,
        }
        streamed: list[list[str]] = [[], []]
        buffered: list[httpx.Response] = []

        def stream(lines: list[str]) -> None:
            with httpx.stream(
                "POST", server.url + CHAT, json={**body, "stream": True}, timeout=60
            ) as response:
                lines.append(str(response.status_code))
                lines.extend(line for line in response.iter_lines() if line)

        def whole() -> None:
            buffered.append(httpx.post(server.url + CHAT, json=body, timeout=60))

        threads = [threading.Thread(target=stream, args=(lines,)) for lines in streamed]
        threads.append(threading.Thread(target=whole))
        for thread in threads:
            thread.start()
        wait_until(lambda: server.status()["pool"]["busy_slots"] == 3, 30, "three requests on the worker")
        wait_until(lambda: all(len(lines) > 2 for lines in streamed), 30, "both streams to have started")
        assert server.stop(signal.SIGTERM) == -signal.SIGTERM
        for thread in threads:
            thread.join(30)
    finally:
        server.kill_everything()
    for lines in streamed:
        assert lines[0] == "200"
        error = json.loads(lines[-1].removeprefix("data: "))["error"]
        assert error["code"] == "shutting_down" and error["type"] == "service_unavailable"
    assert buffered and buffered[0].status_code == 503, buffered[0].text if buffered else None
    assert buffered[0].json()["error"]["code"] == "shutting_down"
    log = server.log_path.read_text()
    assert "Traceback" not in log and "CancelledError" not in log, log
    assert "every worker process has exited" in log


def test_fuzzing_the_gateway_finds_no_5xx_and_kills_no_worker(gateway: tuple[str, Gateway]) -> None:
    """schemathesis from the gateway's OpenAPI document and hypothesis bodies, through to null workers."""
    url, gw = gateway
    deaths = gw.pool.counters.worker_deaths
    for tally in (
        run_openapi(url, gateway_openapi(), KEY, cases=60, seeded=True),
        run_bodies(url, "tiny", KEY, cases=250, seeded=True),
    ):
        assert tally.problems == [], "\n".join(tally.problems)
        assert tally.transport_errors == 0
        assert tally.statuses["2xx"] > 0 and tally.statuses["4xx"] > 0, tally.statuses
    assert httpx.get(url + "/healthz").status_code == 200
    assert gw.pool.counters.worker_deaths == deaths
    assert gw.pool.state_counts().get("reserved/ready") == 1


@settings(max_examples=300, derandomize=True, deadline=None, database=None)
@given(payload=st.one_of(json_values, chat_bodies("tiny"), completion_bodies("tiny")))
def test_request_tier_takes_any_json_body(payload: Any) -> None:
    """Found by the fuzz test: ``"messages": 5`` raised in the gateway (a plain-text 500)."""
    tier, score = request_tier(payload)
    assert tier in ("S", "M", "L") and score >= 0


def test_alternating_surrogate_and_normal_requests_kill_no_worker(gateway: tuple[str, Gateway]) -> None:
    """The repro as the issue gives it, end to end: 15 x ("\\ud800", a normal request)."""
    url, gw = gateway
    deaths = gw.pool.counters.worker_deaths
    bad = b'{"model": "tiny", "messages": [{"role": "user", "content": "\\ud800"}]}'
    with httpx.Client(base_url=url, headers=AUTH, timeout=30) as client:
        for _ in range(15):
            response = client.post(CHAT, content=bad, headers={"content-type": "application/json"})
            assert assert_openai_error(response, 400)["code"] == "invalid_json"
            assert chat(url).status_code == 200
    assert gw.pool.counters.worker_deaths == deaths

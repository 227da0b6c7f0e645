"""The gateway against hostile clients (issue 13), in-process over real HTTP in front of real null-engine
worker processes: the API key guards every route but /healthz, bodies are limited and parsed before a
worker is leased, every error is OpenAI-shaped with a string code, and a connection that breaks on a
healthy worker does not retire it."""

from __future__ import annotations

import http.client
import json
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.requests import Request

from functions.api.router import create_app
from functions.guards.headers import server_options
from functions.settings import ServeSettings
from llmfn.local.config import DevConfig
from llmfn.local.gateway import Gateway, create_gateway, forwarded_headers, gateway_openapi, request_tier
from llmfn.local.runner import build_gateway
from tests.functions.helpers import assert_openai_error, running, wait_ready
from tests.fuzzing import chat_bodies, completion_bodies, json_values, run_bodies, run_openapi, run_wire
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
    with running(create_gateway(gw), **server_options()) as url:
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
        run_wire(url, KEY, cases=150, seeded=True),
    ):
        assert tally.problems == [], "\n".join(tally.problems)
        assert tally.transport_errors == 0
        assert tally.statuses["2xx"] > 0 and tally.statuses["4xx"] > 0, tally.statuses
    assert httpx.get(url + "/healthz").status_code == 200
    assert gw.pool.counters.worker_deaths == deaths
    assert gw.pool.state_counts().get("reserved/ready") == 1
    assert gw.pool.busy_slots() == 0  # every lease was returned


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


# ---- issue 22: paths, leases, header fields, agreement with llmfn serve --------------------------------
def raw(url: str, method: str, path: str, headers: dict[str, str | bytes] | None = None, body: bytes = b""):  # type: ignore[no-untyped-def]
    """``method path`` as given (``http.client`` removes no dot segment and decodes no escape):
    (status, header fields, body)."""
    parsed = urlparse(url)
    connection = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port, timeout=60)
    try:
        connection.putrequest(method, path, skip_host="Host" in (headers or {}))
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        if body or method in ("POST", "PUT", "PATCH"):
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, response.getheaders(), response.read()
    finally:
        connection.close()


CHAT_BODY = json.dumps(
    {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
).encode()
JSON_AUTH: dict[str, str | bytes] = {**AUTH, "Content-Type": "application/json"}


def test_dot_segments_never_reach_a_workers_internal_endpoints(gateway: tuple[str, Gateway]) -> None:
    """The repro: ``/v1/%2e%2e/metrics`` and ``/v1/%2e%2e/readyz`` were forwarded (a slot leased) and the
    worker's own endpoints answered through the gateway."""
    url, gw = gateway
    arrivals = gw.pool.counters.arrivals
    for path in (
        "/v1/%2e%2e/metrics",
        "/v1/%2e%2e/readyz",
        "/v1/%2E%2E/metrics",
        "/v1/.%2e/readyz",
        "/v1/chat/%2e%2e/%2e%2e/metrics",
        "/v1/x/../../readyz",
        "/v1/..%2Fmetrics",
        "/v1/%2e%2e/v1/models",
    ):
        for method in ("GET", "POST"):
            status, _, content = raw(url, method, path, JSON_AUTH, CHAT_BODY if method == "POST" else b"")
            assert status == 404, (method, path, status, content[:200])
            assert json.loads(content)["error"]["code"] == "not_found"
    assert gw.pool.counters.arrivals == arrivals  # refused before a worker slot was leased


def test_control_characters_in_the_path_are_404_and_leak_no_slot(gateway: tuple[str, Gateway]) -> None:
    """The repro: ``/v1/chat/completions%00`` was a 500 and its slot was never returned; with two
    slots, two such requests left every later request waiting for a 503."""
    url, gw = gateway
    for code in (0x00, 0x01, 0x0A, 0x0D, 0x1F, 0x7F):
        for path in (f"{CHAT}%{code:02X}", f"/v1/chat/%{code:02X}completions"):
            status, _, content = raw(url, "POST", path, JSON_AUTH, CHAT_BODY)
            assert status == 404, (path, status, content[:200])
    assert gw.pool.busy_slots() == 0
    assert chat(url).status_code == 200


def test_a_request_that_fails_after_its_lease_returns_the_slot(
    gateway: tuple[str, Gateway], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any failure between leasing a slot and answering (here the upstream request cannot be built)
    returns the slot: more such requests than there are slots, then a normal one is served at once."""
    url, gw = gateway

    def cannot_build(*_args: object, **_kwargs: object) -> httpx.Request:
        raise RuntimeError("injected")

    monkeypatch.setattr(gw.client, "build_request", cannot_build)
    for _ in range(5):  # the pool has at most 2 workers of 1 slot each
        assert assert_openai_error(chat(url), 500)["code"] == "internal_error"
    monkeypatch.undo()
    assert gw.pool.busy_slots() == 0
    assert chat(url).status_code == 200


def test_header_bytes_that_are_not_ascii_are_forwarded_as_received(gateway: tuple[str, Gateway]) -> None:
    """A header value with obs-text bytes (RFC 9110 section 5.5 allows them) made httpx raise while
    building the upstream request: a 500 and a leaked slot. Such a header is not forwarded at all now;
    a forwarded one travels as the bytes received."""
    url, gw = gateway
    for odd in (b"\xe9t\xe9", b"\xff\xfe", b"a\x80"):
        status, _, content = raw(
            url, "POST", CHAT, {**JSON_AUTH, "x-odd": odd, "x-request-id": odd}, CHAT_BODY
        )
        assert status == 200, content[:300]
    assert gw.pool.busy_slots() == 0


def test_only_the_headers_a_worker_reads_are_forwarded() -> None:
    sent = [
        (b"authorization", b"Bearer k"),
        (b"cookie", b"a=1"),
        (b"x-forwarded-for", b"10.0.0.1"),
        (b"content-type", b"application/json"),
        (b"x-llmfn-session", b"s1"),
        (b"host", b"evil.example"),
        (b"x-request-id", b"r\xe9"),  # ASGI servers lower-case the names
        (b"x-llmfn-tier", b"L"),
    ]
    request = Request({"type": "http", "method": "POST", "path": CHAT, "headers": sent})
    assert forwarded_headers(request) == [
        (b"authorization", b"Bearer k"),
        (b"content-type", b"application/json"),
        (b"x-llmfn-session", b"s1"),
        (b"x-request-id", b"r\xe9"),
    ]


def test_header_fields_are_bounded_before_a_worker_is_leased(gateway: tuple[str, Gateway]) -> None:
    """The repro: 10,000 header fields held the gateway's event loop for 2.7 s (40,000 for 40 s)."""
    url, gw = gateway
    arrivals = gw.pool.counters.arrivals
    body = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}]}
    many = [*AUTH.items(), *[("x-h", str(i)) for i in range(150)]]
    response = httpx.post(url + CHAT, json=body, headers=many, timeout=30)
    assert assert_openai_error(response, 431)["code"] == "request_header_fields_too_large"
    status, _, _ = raw(url, "POST", CHAT, {**JSON_AUTH, "x-big": "b" * 20_000}, CHAT_BODY)
    assert status in (400, 431)  # the parser's bound (plain 400, connection closed) or the app's
    assert gw.pool.counters.arrivals == arrivals
    assert httpx.get(url + "/healthz").status_code == 200


def test_the_gateway_sends_one_date_and_one_server_header(gateway: tuple[str, Gateway]) -> None:
    url, _ = gateway
    for response in (chat(url), chat(url, stream=True), chat(url, seed=2**64)):
        assert response.status_code in (200, 422)
        assert len(response.headers.get_list("date")) == 1, response.headers
        assert len(response.headers.get_list("server")) == 1, response.headers


def test_serve_and_the_gateway_agree_on_methods_and_paths(gateway: tuple[str, Gateway]) -> None:
    """The same requests to ``llmfn serve``'s app and to the gateway get the same status: HEAD on GET
    routes, 405 for other methods, 404 (never a 307 to the client's Host) for near misses, 401 without
    the key, and neither answers with a ``location`` or a repeated ``date`` / ``server``."""
    gateway_url, _ = gateway
    settings = ServeSettings.build(engine="null", model_name="tiny", api_key=KEY, access_log=False)
    paths = [
        "/healthz",
        "/v1/models",
        "/metrics",
        CHAT,
        "/v1/completions",
        CHAT + "/",
        "/v1/models/",
        "/healthz/",
        "/metrics/",
        "/v1/nope",
        "/v1/%2e%2e/metrics",
        CHAT + "%00",
        "/nope",
    ]
    bodies = {CHAT: CHAT_BODY, "/v1/completions": b'{"model": "tiny", "prompt": "hi", "max_tokens": 1}'}
    mismatches = []
    with running(create_app(settings), **server_options()) as serve_url:
        wait_ready(serve_url, api_key=KEY)
        for method in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"):
            for path in paths:
                for headers in (JSON_AUTH, {"Content-Type": "application/json", "Host": "evil.example"}):
                    body = bodies.get(path, b"{}") if method == "POST" else b""
                    answers = [raw(base, method, path, headers, body) for base in (serve_url, gateway_url)]
                    statuses = [status for status, _, _ in answers]
                    if statuses[0] != statuses[1]:
                        mismatches.append(
                            (method, path, "key" if headers is JSON_AUTH else "no key", statuses)
                        )
                    for _, fields, _ in answers:
                        names = [name.lower() for name, _ in fields]
                        assert "location" not in names, (method, path, fields)
                        assert names.count("date") == 1 and names.count("server") == 1, (method, path, fields)
    assert mismatches == [], mismatches

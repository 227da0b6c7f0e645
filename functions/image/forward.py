"""Lambda Managed Instances: one inference server per execution environment, and light workers in front.

On Managed Instances the Python runtime client forks one worker process per concurrent request: "The
Lambda runtime uses multiple Python processes to handle concurrent requests. Each concurrent request runs
in a separate process with its own memory space and initialization." (AWS Lambda docs, "Python runtime
for Lambda Managed Instances"; ``awslambdaric`` forks ``AWS_LAMBDA_MAX_CONCURRENCY`` workers). An engine
in each worker would load the model that many times onto one GPU. So the entry command starts one
inference server on ``127.0.0.1:LLMFN_LOCAL_PORT`` (its engine batches the concurrent requests, vLLM's
continuous batching on GPU) and each worker runs :func:`handler`: Mangum turns the API Gateway event into
an HTTP request, which goes to that server; its answer goes back as the event response. This module
imports no engine and no model code.

Each forwarded request is bounded by the invocation's own deadline, ``context.get_remaining_time_in_millis()``
less :data:`ANSWER_MARGIN_S`: Lambda Managed Instances do not stop a function at its timeout ("your code
continues to run", AWS docs, Lambda Managed Instances execution environment), and "if all runtime
workers are busy, new invocations are rejected" (ibid.), so one stuck request would otherwise hold a
worker for good. At the deadline the worker closes its connection to the server (the server's
streaming responses stop the engine's generation when their client goes: the engine's ``aclose``
aborts the request) and answers 504.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import Any

import httpx
from mangum import Mangum

from core.contract import ENV_API_KEY, ENV_LOCAL_PORT, PREWARM_EVENT
from functions.errors import APIError

LOCAL_HOST = "127.0.0.1"
DEFAULT_LOCAL_PORT = 8080
CONNECT_WAIT_S = 60.0  # the server listens within a second or two; the preload runs behind /readyz
REQUEST_TIMEOUT_S = 900.0  # Lambda's longest function timeout: the bound without an invocation context
ANSWER_MARGIN_S = 1.0  # kept from the invocation's remaining time to send the 504 back
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


def local_port(env: dict[str, str] | None = None) -> int:
    """The inference server's port inside the execution environment (``LLMFN_LOCAL_PORT``)."""
    env = dict(os.environ) if env is None else env
    return int(env.get(ENV_LOCAL_PORT) or DEFAULT_LOCAL_PORT)


def forwarding_app(base_url: str, connect_wait_s: float = CONNECT_WAIT_S) -> Any:
    """An ASGI app that sends each request to ``base_url`` and answers with its response (buffered:
    API Gateway's Lambda integration returns whole bodies). Connection refusals are retried for
    ``connect_wait_s`` seconds, while the server process is still binding its port."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        query = scope.get("query_string", b"").decode()
        url = base_url + scope["path"] + (f"?{query}" if query else "")
        headers = [
            (k.decode(), v.decode()) for k, v in scope["headers"] if k.decode().lower() not in _HOP_BY_HOP
        ]
        budget_s = request_budget_s(scope.get("aws.context"))
        try:
            response = await asyncio.wait_for(
                _send(url, scope["method"], headers, body, connect_wait_s, budget_s), budget_s
            )
        except TimeoutError:  # the connection is closed: the server sees its client go
            message = f"no answer within the invocation's remaining {budget_s:.1f} s"
            response = httpx.Response(504, json=APIError(504, message, code="deadline_exceeded").body())
        out_headers = [
            (k.encode(), v.encode()) for k, v in response.headers.items() if k.lower() not in _HOP_BY_HOP
        ]
        await send({"type": "http.response.start", "status": response.status_code, "headers": out_headers})
        await send({"type": "http.response.body", "body": response.content})

    return app


def request_budget_s(context: Any) -> float:
    """Seconds a forwarded request may take: the invocation's remaining time less the margin to answer
    (:data:`REQUEST_TIMEOUT_S` without a Lambda context)."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return REQUEST_TIMEOUT_S
    return max(0.1, remaining() / 1000.0 - ANSWER_MARGIN_S)


async def _send(
    url: str,
    method: str,
    headers: list[tuple[str, str]],
    body: bytes,
    connect_wait_s: float,
    timeout_s: float,
) -> httpx.Response:
    """One request to the local server; connection refusals retried for ``connect_wait_s`` seconds."""
    deadline = time.monotonic() + connect_wait_s
    async with httpx.AsyncClient(timeout=timeout_s) as client:
        while True:
            try:
                return await client.request(method, url, headers=headers, content=body)
            except httpx.ConnectError:
                if time.monotonic() > deadline:
                    return httpx.Response(502, json=APIError(502, "inference server not listening").body())
                await asyncio.sleep(0.1)


def prewarm(base_url: str, connect_wait_s: float = CONNECT_WAIT_S) -> dict[str, Any]:
    """The scaler's pre-warm: wait until the environment's server listens; report its readiness."""
    deadline = time.monotonic() + connect_wait_s
    # with a key, /readyz answers only with it (as every route but /healthz)
    key = os.environ.get(ENV_API_KEY)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    while True:
        try:
            ready = httpx.get(base_url + "/readyz", headers=headers, timeout=5.0)
            return {"llmfn": "prewarmed", "ready": ready.status_code == 200}
        except httpx.TransportError:
            if time.monotonic() > deadline:
                return {"llmfn": "prewarmed", "ready": False, "error": "inference server not listening"}
            time.sleep(0.1)


Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def make_handler(base_url: str) -> Handler:
    """The Lambda handler of a worker forwarding to the server at ``base_url``: the event, answered by
    that server (a pre-warm event only waits for it to listen)."""
    forward = Mangum(forwarding_app(base_url), lifespan="off")

    def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
        if event == PREWARM_EVENT:
            return prewarm(base_url)
        return forward(event, context)

    return handle


handler = make_handler(f"http://{LOCAL_HOST}:{local_port()}")
"""Lambda handler of a Managed Instances worker (the environment's server on ``LLMFN_LOCAL_PORT``)."""

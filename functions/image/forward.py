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
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import httpx
from mangum import Mangum

from functions.contract import ENV_API_KEY, ENV_LOCAL_PORT, PREWARM_EVENT
from functions.errors import APIError

LOCAL_HOST = "127.0.0.1"
DEFAULT_LOCAL_PORT = 8080
CONNECT_WAIT_S = 60.0  # the server listens within a second or two; the preload runs behind /readyz
REQUEST_TIMEOUT_S = 900.0  # Lambda's longest function timeout: the function's own timeout stops us first
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
        deadline = time.monotonic() + connect_wait_s
        async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S) as client:
            while True:
                try:
                    response = await client.request(scope["method"], url, headers=headers, content=body)
                    break
                except httpx.ConnectError:
                    if time.monotonic() > deadline:
                        response = httpx.Response(
                            502, json=APIError(502, "inference server not listening").body()
                        )
                        break
                    await asyncio.sleep(0.1)
        out_headers = [
            (k.encode(), v.encode()) for k, v in response.headers.items() if k.lower() not in _HOP_BY_HOP
        ]
        await send({"type": "http.response.start", "status": response.status_code, "headers": out_headers})
        await send({"type": "http.response.body", "body": response.content})

    return app


_handler = Mangum(forwarding_app(f"http://{LOCAL_HOST}:{local_port()}"), lifespan="off")


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


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda handler of a Managed Instances worker: the event, answered by the environment's server
    (a pre-warm event only waits for that server to listen)."""
    if event == PREWARM_EVENT:
        return prewarm(f"http://{LOCAL_HOST}:{local_port()}")
    return _handler(event, context)

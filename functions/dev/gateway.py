"""The local gateway: admission, complexity-tier routing and proxying to the worker pool.

``/v1/*`` requests are classified by ``functions.guards.complexity`` (tier in the
``x-llmfn-tier`` header), admitted (the policy's token bucket, the pool's bounded queue), given a
slot on a ready worker (a cold start when none is free) and proxied: non-streaming answers are
buffered, so a worker that dies mid-request is retried once on another worker; SSE streams pass
through chunk by chunk, and a worker dying mid-stream ends the stream with an OpenAI error event.
``/_llmfn/status`` is the pool as JSON, ``/metrics`` Prometheus text.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from functions.dev.autoscaler import Autoscaler
from functions.dev.config import DevConfig
from functions.dev.pool import Lease, NoCapacity, QueueFull, WorkerPool
from functions.guards.complexity import complexity_score, complexity_tier
from functions.guards.token_bucket import TokenBucket

log = logging.getLogger("llmfn.dev")

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "host"}
SUPERVISE_S = 1.0
_NEUTRAL_MAX_TOKENS = 256  # the fingerprint's max_tokens factor is 1 when a request does not say


def request_tier(payload: Any) -> tuple[str, float]:
    """Complexity tier and score of an OpenAI request body (anything unparsable is tier S, score 0)."""
    if not isinstance(payload, dict):
        return "S", 0.0
    parts: list[str] = []
    for message in payload.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts += [p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
    prompt = payload.get("prompt")
    if isinstance(prompt, str):
        parts.append(prompt)
    elif isinstance(prompt, list):
        parts += [p for p in prompt if isinstance(p, str)]
    max_tokens = payload.get("max_tokens") or payload.get("max_completion_tokens") or _NEUTRAL_MAX_TOKENS
    if not isinstance(max_tokens, int) or max_tokens < 0:
        max_tokens = _NEUTRAL_MAX_TOKENS
    score = complexity_score("\n".join(parts), max_tokens)
    return complexity_tier(score), score


def openai_error(status: int, message: str, kind: str, retry_after_s: float | None = None) -> JSONResponse:
    """An error in OpenAI's format, with ``Retry-After`` (whole seconds) when given."""
    headers = {"retry-after": str(max(1, math.ceil(retry_after_s)))} if retry_after_s is not None else None
    body = {"error": {"message": message, "type": kind, "param": None, "code": status}}
    return JSONResponse(body, status_code=status, headers=headers)


class _PoolCollector(Collector):
    """Pool state read at scrape time."""

    def __init__(self, pool: WorkerPool) -> None:
        self.pool = pool

    def collect(self):  # type: ignore[no-untyped-def]
        pool = self.pool
        workers = GaugeMetricFamily(
            "llmfn_dev_workers", "Live workers by kind and state.", labels=["kind", "state"]
        )
        for key, count in sorted(pool.state_counts().items()):
            kind, state = key.split("/")
            workers.add_metric([kind, state], count)
        yield workers
        yield GaugeMetricFamily(
            "llmfn_dev_waiting_requests", "Requests waiting for a slot.", value=pool.waiting
        )
        yield GaugeMetricFamily("llmfn_dev_busy_slots", "Worker slots in use.", value=pool.busy_slots())
        yield GaugeMetricFamily(
            "llmfn_dev_reserved_target", "Reserved workers the policy wants.", value=pool.reserved_target
        )
        yield CounterMetricFamily(
            "llmfn_dev_instance_seconds",
            "Worker-seconds since launch (spawn to stop).",
            value=pool.instance_seconds(),
        )
        for name, value in vars(pool.counters).items():
            yield CounterMetricFamily(f"llmfn_dev_{name}", f"Pool counter {name}.", value=value)
        stages = GaugeMetricFamily(
            "llmfn_dev_worker_cold_start_seconds",
            "Seconds from spawn to each cold-start stage, per live worker.",
            labels=["worker", "stage"],
        )
        for worker in pool.workers:
            marks = dict(worker.cold_start.stages)
            if worker.cold_start.listening_s is not None:
                marks["listening"] = worker.cold_start.listening_s
            if worker.cold_start.ready_s is not None:
                marks["ready"] = worker.cold_start.ready_s
            for stage, seconds in marks.items():
                stages.add_metric([str(worker.worker_id), stage], seconds)
        yield stages


class Gateway:
    """The gateway's state: pool, autoscaler, HTTP client to the workers, metrics."""

    def __init__(self, config: DevConfig, pool: WorkerPool, autoscaler: Autoscaler) -> None:
        self.config = config
        self.pool = pool
        self.autoscaler = autoscaler
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(config.request_timeout_s, connect=5.0))
        self.bucket: TokenBucket | None = None
        self.registry = CollectorRegistry()
        self.registry.register(_PoolCollector(pool))
        self.requests = Counter(
            "llmfn_dev_gateway_requests",
            "Requests by tier and status.",
            ["tier", "status"],
            registry=self.registry,
        )
        self.ttft = Histogram(
            "llmfn_dev_gateway_ttft_seconds",
            "Arrival to first byte from the worker.",
            ["tier"],
            registry=self.registry,
        )
        self.queue_wait = Histogram(
            "llmfn_dev_gateway_queue_wait_seconds", "Time waiting for a worker slot.", registry=self.registry
        )
        self.ticker: asyncio.Task[None] | None = None

    # ---- policy ticks ----------------------------------------------------------------------------
    @property
    def supervise_s(self) -> float:
        """Seconds between two supervision steps (heal, reap): at most 1 s, at most one tick."""
        return min(SUPERVISE_S, self.autoscaler.tick_s)

    async def run_ticks(self) -> None:
        """Supervise the pool every ``supervise_s``; every ``tick_s`` the policy decides and the pool
        actuates. Errors are logged, never fatal."""
        next_decision = time.monotonic() + self.autoscaler.tick_s
        while True:
            await asyncio.sleep(self.supervise_s)
            try:
                if time.monotonic() >= next_decision:
                    next_decision += self.autoscaler.tick_s
                    decision = await self.autoscaler.step()
                    self._set_admission(decision.admission_rps)
                await self.pool.supervise()
            except Exception:
                log.exception("supervision / policy tick failed")

    def _set_admission(self, rate_rps: float | None) -> None:
        if rate_rps is None:
            self.bucket = None
        elif self.bucket is None or self.bucket.rate_per_s != rate_rps:
            self.bucket = TokenBucket(rate_rps, capacity=max(1.0, rate_rps))

    # ---- proxying --------------------------------------------------------------------------------
    async def proxy(self, request: Request) -> Response:
        """Admit, route and forward one ``/v1/*`` request; retries once if its worker breaks."""
        arrived = time.monotonic()
        body = await request.body()
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            payload = None  # the worker answers malformed JSON with its own 400
        tier, score = request_tier(payload)
        if self.bucket is not None:
            admission = self.bucket.try_acquire()
            if not admission.admitted:
                self.requests.labels(tier, "429").inc()
                return openai_error(
                    429, "rate limited by the scaling policy", "rate_limit", admission.retry_after_s
                )
        streaming = isinstance(payload, dict) and payload.get("stream") is True
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        for _attempt in range(2):
            try:
                lease = await self.pool.acquire(tier)
            except QueueFull as exc:
                self.requests.labels(tier, "429").inc()
                return openai_error(
                    429, "too many requests waiting for a worker", "rate_limit", exc.retry_after_s
                )
            except NoCapacity as exc:
                self.requests.labels(tier, "503").inc()
                return openai_error(503, f"{exc}; retry later", "unavailable", self.supervise_s)
            self.queue_wait.observe(lease.waited_s)
            upstream_request = self.client.build_request(
                request.method, lease.worker.url + path, content=body, headers=headers
            )
            try:
                upstream = await self.client.send(upstream_request, stream=True)
                if not streaming:
                    content = await upstream.aread()
            except httpx.TransportError as exc:
                log.warning(
                    "worker %s failed a request (%s); retrying elsewhere", lease.worker.worker_id, exc
                )
                await self.pool.release(lease, ok=False, broken=True)
                continue
            self.ttft.labels(tier).observe(time.monotonic() - arrived)
            self.autoscaler.record_ttft(time.monotonic() - arrived)
            out_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP}
            out_headers.update(self._route_headers(lease, tier, score))
            if not streaming:
                await upstream.aclose()
                await self.pool.release(lease, ok=upstream.status_code < 500)
                self.requests.labels(tier, str(upstream.status_code)).inc()
                return Response(content, status_code=upstream.status_code, headers=out_headers)
            self.requests.labels(tier, str(upstream.status_code)).inc()
            return StreamingResponse(
                self._relay(upstream, lease), status_code=upstream.status_code, headers=out_headers
            )
        self.requests.labels(tier, "503").inc()
        return openai_error(503, "the worker failed twice during this request; retry", "unavailable", 1.0)

    @staticmethod
    def _route_headers(lease: Lease, tier: str, score: float) -> dict[str, str]:
        return {
            "x-llmfn-worker": str(lease.worker.worker_id),
            "x-llmfn-tier": tier,
            "x-llmfn-complexity": f"{score:g}",
            "x-llmfn-cold-start": "1" if lease.cold else "0",
            "x-llmfn-queue-seconds": f"{lease.waited_s:.4f}",
        }

    async def _relay(self, upstream: httpx.Response, lease: Lease) -> AsyncIterator[bytes]:
        """Pass an SSE stream through; a broken worker ends it with an OpenAI error event."""
        ok, broken = upstream.status_code < 500, False
        try:
            async for chunk in upstream.aiter_raw():
                yield chunk
        except httpx.TransportError as exc:
            ok, broken = False, True
            error = {
                "error": {"message": f"worker failed mid-stream: {exc!s}", "type": "unavailable", "code": 503}
            }
            yield f"data: {json.dumps(error)}\n\n".encode()
        finally:
            with anyio.CancelScope(shield=True):
                await upstream.aclose()
                await self.pool.release(lease, ok=ok, broken=broken)

    # ---- introspection ---------------------------------------------------------------------------
    def status(self) -> dict[str, object]:
        config = self.config
        return {
            "gateway": {
                "url": f"http://{config.host}:{config.port}",
                "model_dir": str(config.model_dir),
                "model_name": config.served_model_name,
                "engine": config.engine,
                "policy": config.policy,
                "tick_s": self.autoscaler.tick_s,
                "idle_timeout_s": config.idle_timeout_s,
                "queue_timeout_s": config.queue_timeout_s,
                "max_queue": config.max_queue,
                "admission_rps": None if self.bucket is None else self.bucket.rate_per_s,
            },
            "pool": self.pool.snapshot(),
            "policy": self.autoscaler.snapshot(),
        }


def create_gateway(
    gateway: Gateway,
    on_ready: Callable[[Gateway], None] | None = None,
    on_stopped: Callable[[Gateway], None] | None = None,
) -> Starlette:
    """The Starlette app serving ``gateway``; its lifespan starts the pool and stops every worker.

    ``on_ready`` is called once the reserved workers are ready (or at once when there are none),
    ``on_stopped`` once every worker process has exited at shutdown.
    """

    async def announce() -> None:
        if await gateway.pool.wait_ready(gateway.config.reserved, gateway.config.cold_start_timeout_s):
            if on_ready is not None:
                on_ready(gateway)
        else:
            log.error(
                "reserved workers not ready after %s s; see %s",
                gateway.config.cold_start_timeout_s,
                gateway.pool.log_dir,
            )

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await gateway.pool.start()
        loop = asyncio.get_running_loop()
        gateway.ticker = loop.create_task(gateway.run_ticks())
        announcer = loop.create_task(announce())
        try:
            yield
        finally:
            for task in (announcer, gateway.ticker):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await gateway.pool.close()
            await gateway.client.aclose()
            if on_stopped is not None:
                on_stopped(gateway)

    async def status(_request: Request) -> Response:
        return JSONResponse(gateway.status())

    async def metrics(_request: Request) -> Response:
        return Response(
            generate_latest(gateway.registry), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def models(_request: Request) -> Response:
        """Answered by the gateway itself: listing the model must not cold-start a worker."""
        model = {"id": gateway.config.served_model_name, "object": "model", "created": 0, "owned_by": "llmfn"}
        return JSONResponse({"object": "list", "data": [model]})

    routes = [
        Route("/v1/models", models),
        Route("/v1/{path:path}", gateway.proxy, methods=["GET", "POST"]),
        Route("/_llmfn/status", status),
        Route("/metrics", metrics),
        Route("/healthz", healthz),
    ]
    return Starlette(routes=routes, lifespan=lifespan)

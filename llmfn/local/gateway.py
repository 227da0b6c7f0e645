"""The local gateway: admission, complexity-tier routing and proxying to the worker pool.

``/v1/*`` requests are classified by ``functions.guards.complexity`` (tier in the
``x-llmfn-tier`` header), admitted (the policy's token bucket, the pool's bounded queue), given a
slot on a ready worker (a cold start when none is free) and proxied: non-streaming answers are
buffered, so a worker that dies mid-request is retried once on another worker; SSE streams pass
through chunk by chunk, and a worker dying mid-stream ends the stream with an OpenAI error event.
``/_llmfn/status`` is the pool as JSON, ``/metrics`` Prometheus text.

Only the worker routes in ``WORKER_ROUTES`` are forwarded, matched exactly on the percent-decoded path
(no dot segment, encoded slash, control character or trailing slash reaches a worker: 404, before the
key check and before a worker slot is leased, as ``llmfn serve`` answers them), with only the request
headers in ``FORWARDED_HEADERS``; header fields are bounded (``functions.guards.headers``). Every
leased slot is returned on every path (``_leased``), a stream's when the stream ends or the client goes.

With an API key (``--api-key`` / ``LLMFN_API_KEY``) every route but ``/healthz`` requires it. Bodies
over ``max_body_bytes`` get 413 before they are read in full; bodies that are not a JSON object 400,
both from the gateway itself (no worker is leased for them). Every error the gateway answers, routing
errors included, is in OpenAI's format with a string ``code``. On SIGTERM / Ctrl-C the gateway drains:
open streams end with an error event (``shutting_down``), waiting and buffered requests get 503, then
the workers stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import httpx
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from core.errors import LlmfnError
from functions.api.protocol import openapi_generation_bodies
from functions.errors import APIError, http_error
from functions.guards.auth import check_bearer
from functions.guards.body import parse_json_object, read_body
from functions.guards.complexity import complexity_score, complexity_tier
from functions.guards.headers import HeaderLimits
from functions.guards.token_bucket import TokenBucket
from llmfn.local.autoscaler import Autoscaler
from llmfn.local.config import DevConfig
from llmfn.local.pool import Lease, NoCapacity, QueueFull, WorkerPool
from llmfn.local.status import GatewayStatus, PolicyStatus, PoolStatus, RuntimeStatus

log = logging.getLogger("llmfn.dev")

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "host"}
_NOT_RELAYED = _HOP_BY_HOP | {"date", "server"}
"""Answer headers of a worker the gateway does not pass on (its own server sets ``date`` and ``server``)."""
WORKER_ROUTES: dict[str, tuple[str, ...]] = {
    "/v1/chat/completions": ("POST",),
    "/v1/completions": ("POST",),
}
"""The worker routes the gateway forwards (``/v1/models`` it answers itself): path -> methods."""
FORWARDED_HEADERS = frozenset(
    {b"authorization", b"content-type", b"accept", b"x-request-id", b"x-llmfn-session"}
)
"""The request headers a worker reads; no other header of the client is forwarded."""
_OWN_V1_ROUTES = {"/v1/models": ("GET", "HEAD")}
"""``/v1/*`` routes the gateway answers itself (another method reaches ``proxy``: 405)."""
_ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
SUPERVISE_S = 1.0
_NEUTRAL_MAX_TOKENS = 256  # the fingerprint's max_tokens factor is 1 when a request does not say
HEALTH_PROBE_TIMEOUT_S = 2.0
_T = TypeVar("_T")


class Draining(LlmfnError):
    """The gateway began shutting down while a request waited."""


@dataclass
class _Hold:
    """A leased worker slot and the worker's answer using it; :meth:`finish` returns both exactly once."""

    lease: Lease
    pool: WorkerPool
    upstream: httpx.Response | None = None
    streaming: bool = False
    """The slot now belongs to a stream (``_relay`` and ``_HeldStream`` finish it)."""
    done: bool = False

    async def finish(self, ok: bool, broken: bool = False) -> None:
        if self.done:
            return
        self.done = True
        with anyio.CancelScope(shield=True):
            try:
                if self.upstream is not None:
                    await self.upstream.aclose()
            finally:
                await self.pool.release(self.lease, ok=ok, broken=broken)


class _HeldStream(StreamingResponse):
    """A stream that returns its slot when it ends, also when the client left before it began (then
    the body iterator never runs, so its own ``finally`` cannot)."""

    def __init__(
        self, hold: _Hold, content: AsyncIterator[bytes], status_code: int, headers: dict[str, str]
    ) -> None:
        super().__init__(content, status_code=status_code, headers=headers)
        self.hold = hold

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.hold.finish(ok=False)


def worker_path(request: Request) -> str:
    """The worker route a ``/v1/*`` request names, or the 404 / 405 ``llmfn serve`` would answer.

    The match is exact on the percent-decoded path, so ``/v1/%2e%2e/metrics``, ``/v1/chat/completions%00``
    and ``/v1/chat/completions/`` are 404s; the query string is not forwarded (the routes take none)."""
    path = request.scope["path"]
    methods = WORKER_ROUTES.get(path) or _OWN_V1_ROUTES.get(path)
    if methods is None:
        raise http_error(404, "Not Found")
    if request.method not in methods or path not in WORKER_ROUTES:
        raise APIError(
            405, "Method Not Allowed", code="method_not_allowed", headers={"Allow": ", ".join(methods)}
        )
    return path


def forwarded_headers(request: Request) -> list[tuple[bytes, bytes]]:
    """The client's headers a worker reads (``FORWARDED_HEADERS``), as the raw bytes received."""
    return [(name, value) for name, value in request.headers.raw if name.lower() in FORWARDED_HEADERS]


def shutting_down() -> APIError:
    return APIError(
        503, "The gateway is shutting down; retry.", code="shutting_down", headers={"Retry-After": "1"}
    )


def sse_error(error: APIError) -> bytes:
    """An OpenAI error as one server-sent event (how a stream that has started reports a failure)."""
    return f"data: {json.dumps(error.body())}\n\n".encode()


def request_tier(payload: Any) -> tuple[str, float]:
    """Complexity tier and score of an OpenAI request body (anything unparsable is tier S, score 0)."""
    if not isinstance(payload, dict):
        return "S", 0.0
    parts: list[str] = []
    messages = payload.get("messages")
    for message in messages if isinstance(messages, list) else []:
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
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 0:
        max_tokens = _NEUTRAL_MAX_TOKENS
    score = complexity_score("\n".join(parts), max_tokens)
    return complexity_tier(score), score


async def _close_response(response: httpx.Response) -> None:
    await response.aclose()


def retry_after(seconds: float) -> dict[str, str]:
    """A ``Retry-After`` header of whole seconds (at least 1)."""
    return {"Retry-After": str(max(1, int(-(-seconds // 1))))}


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
        self._api_key = None if config.api_key is None else config.api_key.get_secret_value().encode()
        self._drain: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

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

    # ---- draining ------------------------------------------------------------------------------
    def begin_drain(self) -> None:
        """Shutdown began: end open streams with an error event, answer waiting requests 503 (idempotent;
        call it on the event loop's thread)."""
        if self._drain is None:
            self._drain = asyncio.get_running_loop().create_future()
        if not self._drain.done():
            self._drain.set_result(None)

    def begin_drain_threadsafe(self) -> None:
        """``begin_drain`` from a signal handler or another thread (no-op before the lifespan started)."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.begin_drain)

    @property
    def draining(self) -> bool:
        return self._drain is not None and self._drain.done()

    async def _unless_draining(
        self, awaitable: Awaitable[_T], cleanup: Callable[[_T], Awaitable[None]] | None = None
    ) -> _T:
        """The result of ``awaitable``, or ``Draining`` once shutdown begins first (``awaitable`` is
        then cancelled, and ``cleanup`` given a result that arrived anyway)."""
        task = asyncio.ensure_future(awaitable)
        if self._drain is None:
            self._drain = asyncio.get_running_loop().create_future()
        try:
            if not self._drain.done():
                await asyncio.wait({task, self._drain}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # this request was cancelled (client gone): so is what it waited for
            task.cancel()
            raise
        if task.done():
            return task.result()
        task.cancel()
        try:
            late = await task
        except (asyncio.CancelledError, Exception):
            raise Draining from None
        if cleanup is not None:
            await cleanup(late)
        raise Draining

    # ---- proxying --------------------------------------------------------------------------------
    def authorize(self, request: Request) -> None:
        """401 unless the request carries the API key (when one is configured)."""
        check_bearer(request.headers, self._api_key)

    async def proxy(self, request: Request) -> Response:
        """Admit, route and forward one ``/v1/*`` request; retries once if its worker breaks."""
        arrived = time.monotonic()
        try:
            path = worker_path(request)
            self.authorize(request)
            if self.draining:
                raise shutting_down()
            body = await read_body(request, self.config.max_body_bytes)
            payload = parse_json_object(body) if body else None
        except APIError as exc:
            self.requests.labels("S", str(exc.status)).inc()
            return exc.response()
        tier = "S"
        try:
            tier, score = request_tier(payload)
            return await self._forward(request, path, body, payload, tier, score, arrived)
        except APIError as exc:
            self.requests.labels(tier, str(exc.status)).inc()
            return exc.response()
        except Exception as exc:  # a bug of ours: a JSON 500 and one log line, the connection survives
            log.error("gateway failed a request: %s: %s", type(exc).__name__, exc)
            self.requests.labels(tier, "500").inc()
            return APIError(500, f"Gateway error: {type(exc).__name__}", code="internal_error").response()

    async def _forward(
        self,
        request: Request,
        path: str,
        body: bytes,
        payload: dict[str, Any] | None,
        tier: str,
        score: float,
        arrived: float,
    ) -> Response:
        if self.bucket is not None:
            admission = self.bucket.try_acquire()
            if not admission.admitted:
                raise APIError(
                    429,
                    "Rate limited by the scaling policy; retry after the Retry-After seconds.",
                    code="rate_limit_exceeded",
                    headers=retry_after(admission.retry_after_s),
                )
        streaming = isinstance(payload, dict) and payload.get("stream") is True
        headers = forwarded_headers(request)
        for _attempt in range(2):
            async with self._leased(tier) as hold:
                lease = hold.lease
                self.queue_wait.observe(lease.waited_s)
                upstream_request = self.client.build_request(
                    request.method, lease.worker.url + path, content=body, headers=headers
                )
                try:  # a worker sends a non-streamed answer's headers only once it is complete: race both
                    hold.upstream = await self._unless_draining(
                        self.client.send(upstream_request, stream=True), cleanup=_close_response
                    )
                    if not streaming:
                        content = await self._unless_draining(hold.upstream.aread())
                except Draining:
                    raise shutting_down() from None
                except httpx.TransportError as exc:
                    broken = await self._worker_broken(lease)
                    log.warning(
                        "request to worker %s failed (%s: %s); worker %s; retrying",
                        lease.worker.worker_id,
                        type(exc).__name__,
                        exc,
                        "broken" if broken else "healthy",
                    )
                    await hold.finish(ok=False, broken=broken)
                    continue
                upstream = hold.upstream
                self.ttft.labels(tier).observe(time.monotonic() - arrived)
                self.autoscaler.record_ttft(time.monotonic() - arrived)
                out_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in _NOT_RELAYED}
                out_headers.update(self._route_headers(lease, tier, score))
                self.requests.labels(tier, str(upstream.status_code)).inc()
                if not streaming:
                    await hold.finish(ok=upstream.status_code < 500)
                    return Response(content, status_code=upstream.status_code, headers=out_headers)
                hold.streaming = True
                return _HeldStream(hold, self._relay(hold), upstream.status_code, out_headers)
        raise APIError(
            503,
            "The worker failed twice during this request; retry.",
            code="worker_failed",
            headers=retry_after(1),
        )

    @asynccontextmanager
    async def _leased(self, tier: str) -> AsyncIterator[_Hold]:
        """A slot on a ready worker for the block: returned when the block ends, however it ends
        (an error, a cancellation, a bug), unless the block handed it to a stream."""
        hold = _Hold(await self._lease(tier), self.pool)
        try:
            yield hold
        finally:
            if not hold.streaming:
                await hold.finish(ok=False)

    async def _lease(self, tier: str) -> Lease:
        """A slot on a ready worker, or the APIError to answer (429 queue full, 503 none in time or
        shutting down)."""
        try:
            return await self._unless_draining(self.pool.acquire(tier), cleanup=self._give_back)
        except Draining:
            raise shutting_down() from None
        except QueueFull as exc:
            raise APIError(
                429,
                "Too many requests are waiting for a worker; retry after the Retry-After seconds.",
                code="queue_full",
                headers=retry_after(exc.retry_after_s),
            ) from None
        except NoCapacity as exc:
            raise APIError(
                503, f"{exc}; retry later.", code="no_capacity", headers=retry_after(self.supervise_s)
            ) from None

    async def _give_back(self, lease: Lease) -> None:
        await self.pool.release(lease, ok=False)

    async def _worker_broken(self, lease: Lease) -> bool:
        """After a transport error: is the worker gone (exited, or not answering ``/healthz``)? A worker
        that closed an idle keep-alive connection (it may, after an error) is healthy and kept."""
        worker = lease.worker
        if worker.exited():
            return True
        try:
            probe = await self.client.get(f"{worker.url}/healthz", timeout=HEALTH_PROBE_TIMEOUT_S)
        except httpx.TransportError:
            return True
        return probe.status_code != 200

    @staticmethod
    def _route_headers(lease: Lease, tier: str, score: float) -> dict[str, str]:
        return {
            "x-llmfn-worker": str(lease.worker.worker_id),
            "x-llmfn-tier": tier,
            "x-llmfn-complexity": f"{score:g}",
            "x-llmfn-cold-start": "1" if lease.cold else "0",
            "x-llmfn-queue-seconds": f"{lease.waited_s:.4f}",
        }

    async def _relay(self, hold: _Hold) -> AsyncIterator[bytes]:
        """Pass an SSE stream through; a broken worker or the gateway's shutdown ends it with an OpenAI
        error event."""
        assert hold.upstream is not None
        ok, broken = hold.upstream.status_code < 500, False
        chunks = hold.upstream.aiter_raw()
        try:
            while (chunk := await self._unless_draining(anext(chunks, None))) is not None:
                yield chunk
        except Draining:
            ok = False
            yield sse_error(shutting_down())
        except httpx.TransportError as exc:
            ok, broken = False, await self._worker_broken(hold.lease)
            yield sse_error(APIError(503, f"worker failed mid-stream: {exc!s}", code="worker_failed"))
        finally:
            await hold.finish(ok=ok, broken=broken)

    # ---- introspection ---------------------------------------------------------------------------
    def status(self) -> RuntimeStatus:
        """``/_llmfn/status``: what the pool, the workers and the policy report, checked against the model."""
        config = self.config
        return RuntimeStatus(
            gateway=GatewayStatus(
                url=f"http://{config.host}:{config.port}",
                model_dir=str(config.model_dir),
                model_name=config.served_model_name,
                engine=config.engine,
                policy=config.policy,
                tick_s=self.autoscaler.tick_s,
                idle_timeout_s=config.idle_timeout_s,
                queue_timeout_s=config.queue_timeout_s,
                max_queue=config.max_queue,
                admission_rps=None if self.bucket is None else self.bucket.rate_per_s,
            ),
            pool=PoolStatus.model_validate(self.pool.snapshot()),
            policy=PolicyStatus.model_validate(self.autoscaler.snapshot()),
        )


def gateway_openapi() -> dict[str, Any]:
    """The gateway's OpenAPI 3.1 document (not served: the fuzz tests and ``bench/fuzz.py`` read it)."""
    components, bodies = openapi_generation_bodies()
    answered = {"responses": {"200": {"description": "OK"}}}
    paths: dict[str, Any] = {
        path: {"post": {"requestBody": body, **answered}} for path, body in bodies.items()
    }
    for path in ("/v1/models", "/_llmfn/status", "/metrics", "/healthz"):
        paths[path] = {"get": answered}
    return {
        "openapi": "3.1.0",
        "info": {"title": "llmfn dev gateway", "version": "1"},
        "paths": paths,
        "components": {"schemas": components},
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
        loop = gateway._loop = asyncio.get_running_loop()
        gateway.ticker = loop.create_task(gateway.run_ticks())
        announcer = loop.create_task(announce())
        try:
            yield
        finally:
            gateway.begin_drain()
            for task in (announcer, gateway.ticker):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await gateway.pool.close()
            await gateway.client.aclose()
            if on_stopped is not None:
                on_stopped(gateway)

    def guarded(answer: Callable[[], Response]) -> Callable[[Request], Awaitable[Response]]:
        """An endpoint behind the API key (when one is configured)."""

        async def endpoint(request: Request) -> Response:
            try:
                gateway.authorize(request)
            except APIError as exc:
                return exc.response()
            return answer()

        return endpoint

    def status() -> Response:
        return JSONResponse(gateway.status().model_dump(mode="json"))

    def metrics() -> Response:
        return Response(
            generate_latest(gateway.registry), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    def models() -> Response:
        """Answered by the gateway itself: listing the model must not cold-start a worker."""
        model = {"id": gateway.config.served_model_name, "object": "model", "created": 0, "owned_by": "llmfn"}
        return JSONResponse({"object": "list", "data": [model]})

    async def healthz(_request: Request) -> Response:
        """Liveness: the only route open without the API key."""
        return JSONResponse({"status": "ok"})

    async def routing_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return http_error(exc.status_code, str(exc.detail)).response()

    routes = [  # GET routes answer HEAD too (Starlette adds it), as llmfn serve's do
        Route("/v1/models", guarded(models)),
        Route("/v1/{path:path}", gateway.proxy, methods=_ANY_METHOD),
        Route("/_llmfn/status", guarded(status)),
        Route("/metrics", guarded(metrics)),
        Route("/healthz", healthz),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: routing_error},
        middleware=[Middleware(HeaderLimits)],
    )
    app.router.redirect_slashes = False  # a 307 to the client's Host header, before the key check: 404
    return app

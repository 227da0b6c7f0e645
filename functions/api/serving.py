"""The serving logic of the OpenAI-compatible app: preload, admission in order, generation, answers.

:class:`ServingRuntime` owns the engine, readiness, metrics, the shaping policy and the admission chain
(:mod:`functions.api.admission`). A generation request passes, in order: Bearer key (401) -> body size
(413) -> JSON (400: also too deeply nested, NaN, lone surrogates) -> schema (422, strict types, bounded
integers) -> a field this server cannot honour (400 ``unsupported_parameter``, never ignored) -> model id (404) -> readiness (waits ``ready_wait_s`` seconds, then 503 + Retry-After) ->
token bucket (429 + Retry-After) -> prompt bytes (400 when they alone cannot fit the context) ->
rendering and tokenising in a thread (400 when it fails or the prompt is empty) -> shaping (400 when
max_tokens cannot fit the context) -> a concurrency slot from the bounded queue (429 when full or too
slow) -> the circuit breaker (503 + Retry-After while open) -> the engine. Only the engine's own
failures count against the breaker. Answers are the wire types of :mod:`functions.api.protocol`, as
JSON or as SSE (:mod:`functions.api.sse`); they carry ``x-request-id`` and ``x-llmfn-complexity`` /
``x-llmfn-tier``. Latencies are observed in seconds, the access log's ``ms`` in milliseconds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from functions.api import sse
from functions.api.admission import Admission
from functions.api.protocol import (
    AssistantMessage,
    ChatChoice,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChatStreamChoice,
    CompletionChoice,
    CompletionRequest,
    CompletionResponse,
    DeltaMessage,
    Usage,
)
from functions.engines import Engine, Prompt, SamplingParams, make_engine
from functions.errors import APIError
from functions.guards.auth import check_bearer
from functions.guards.body import parse_json_object, read_body
from functions.guards.breaker import BreakerPermit
from functions.guards.complexity import complexity_score, complexity_tier
from functions.guards.shaping import ShapedRequest, ShapingError, ShapingPolicy, shape_request
from functions.logs import LOGGER_NAME
from functions.metrics import ServeMetrics
from functions.readiness import Readiness
from functions.settings import ServeSettings
from functions.stop_sequences import StopScanner
from preload.events import StageEvent

log = logging.getLogger(LOGGER_NAME)

NOT_READY_RETRY_AFTER_S = 2
SESSION_HEADER = "x-llmfn-session"
CHAT, COMPLETIONS = "chat", "completions"
ROUTES = {CHAT: "/v1/chat/completions", COMPLETIONS: "/v1/completions"}


@dataclass
class _Admitted:
    """A request that holds a slot and a breaker permit: what it needs to run and report."""

    kind: str
    request_id: str
    model: str
    prompt: Prompt
    params: SamplingParams
    stops: list[str]
    stream: bool
    include_usage: bool
    session: str | None
    permit: BreakerPermit
    arrived: float
    headers: dict[str, str]
    echo: str = ""
    """Text answered before the completion (``echo``: the prompt), not counted as completion tokens."""

    @property
    def completion_id(self) -> str:
        """The response's ``id``: OpenAI's prefix for the kind, then the request id."""
        return ("chatcmpl-" if self.kind == CHAT else "cmpl-") + self.request_id


class ServingRuntime:
    """The engine, its guards, readiness and metrics of one app; ``start()`` begins the preload."""

    def __init__(self, settings: ServeSettings, engine: Engine | None = None) -> None:
        self.settings = settings
        self.engine = engine if engine is not None else make_engine(settings)
        self.metrics = ServeMetrics()
        self.readiness = Readiness()
        self.admission = Admission(settings, self.metrics)
        self.shaping: ShapingPolicy | None = None
        self._api_key = settings.api_key.get_secret_value().encode() if settings.api_key is not None else None
        self._start_lock = threading.Lock()
        self._loader: threading.Thread | None = None
        self._ok = {
            route: self.metrics.requests.labels(route, "200") for route in (CHAT, COMPLETIONS, "models")
        }
        self._latency = {route: self.metrics.latency.labels(route) for route in (CHAT, COMPLETIONS)}

    def count(self, route: str, status: str) -> None:
        """One answered request in ``llmfn_requests_total`` (200s through a cached child: hot path)."""
        (self._ok[route] if status == "200" else self.metrics.requests.labels(route, status)).inc()

    # -- start-up ---------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the preload in a background thread (idempotent); the app answers meanwhile."""
        with self._start_lock:
            if self._loader is None:
                self._loader = threading.Thread(target=self._load, name="llmfn-preload", daemon=True)
                self._loader.start()

    def _load(self) -> None:
        started = time.perf_counter()
        try:
            self.engine.load(self._on_stage)
        except Exception as exc:
            self.readiness.mark_failed(f"{type(exc).__name__}: {exc}")
            log.exception("preload failed", extra={"fields": {"event": "preload_failed"}})
            return
        s = self.settings
        self.shaping = ShapingPolicy(
            context_len=self.engine.context_len,
            max_tokens_cap=s.max_tokens_cap,
            long_prompt_chars=s.long_prompt_chars,
            default_short=s.default_max_tokens_short,
            default_long=s.default_max_tokens_long,
        )
        self.readiness.mark_ready()
        self.metrics.ready.set(1)
        log.info(
            "ready",
            extra={
                "fields": {
                    "event": "ready",
                    "seconds": round(time.perf_counter() - started, 3),
                    "stages_s": self.readiness.stages_done,
                    "timeline": self.readiness.timeline.as_dict(),
                }
            },
        )

    def _on_stage(self, event: StageEvent) -> None:
        self.readiness.on_event(event)
        self.metrics.on_stage(event)
        if event.kind != "progress":
            log.info(
                "preload stage",
                extra={
                    "fields": {
                        "event": f"stage_{event.kind}",
                        "stage": event.stage,
                        "bytes": event.bytes,
                        "seconds": round(event.seconds, 4),
                    }
                },
            )

    # -- request handling -------------------------------------------------------------------------
    async def handle_generation(self, request: Request, kind: str) -> Response:
        """Answer a ``kind`` (``chat`` or ``completions``) request: admitted, then JSON or SSE; else an error."""
        arrived = time.perf_counter()
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        try:
            admitted = await self._admit(request, kind, request_id, arrived)
        except APIError as exc:
            return self._refuse(exc, kind, request_id, arrived)
        except Exception as exc:  # a bug of ours before the engine: a JSON 500, never the breaker's business
            log.error(
                "request failed before the engine: %s: %s",
                type(exc).__name__,
                exc,
                extra={"fields": {"request_id": request_id}},
            )
            error = APIError(500, f"Internal error: {type(exc).__name__}", code="internal_error")
            return self._refuse(error, kind, request_id, arrived)
        if admitted.stream:
            return await self._open_stream(admitted)
        return await self._complete(admitted)

    def authorize(self, request: Request) -> None:
        """401 unless the request carries the API key (when one is set)."""
        check_bearer(request.headers, self._api_key)

    async def _admit(self, request: Request, kind: str, request_id: str, arrived: float) -> _Admitted:
        self.authorize(request)
        body = parse_json_object(await read_body(request, self.settings.max_body_bytes))
        schema = ChatCompletionRequest if kind == CHAT else CompletionRequest
        try:
            req = schema.model_validate(body)
        except ValidationError as exc:
            raise _schema_error(exc) from None
        unsupported = req.unsupported(body)
        if unsupported is not None:
            raise APIError(400, unsupported.message, code=unsupported.code, param=unsupported.param)
        if req.model != self.engine.model_name:
            raise APIError(
                404,
                f"The model '{req.model}' does not exist; this server serves '{self.engine.model_name}'.",
                code="model_not_found",
                param="model",
            )
        await self._wait_ready()
        self.admission.check_rate()
        assert self.shaping is not None
        prompt = await self._render(req)
        try:
            shaped: ShapedRequest = shape_request(
                self.shaping, prompt.text, prompt.tokens, req.requested_max_tokens, req.temperature
            )
        except ShapingError as exc:
            raise APIError(400, str(exc), code="context_length_exceeded", param=exc.param) from None
        score = complexity_score(prompt.text, shaped.max_tokens, prompt.tokens)
        tier = complexity_tier(score)
        self.metrics.complexity.observe(score)
        self.metrics.complexity_tier.labels(tier).inc()
        session = request.headers.get(SESSION_HEADER) or req.user or None
        permit = await self.admission.enter(session)
        return _Admitted(
            kind=kind,
            request_id=request_id,
            model=self.engine.model_name,
            prompt=prompt,
            params=SamplingParams(
                shaped.max_tokens,
                shaped.temperature,
                req.top_p,
                req.seed,
                presence_penalty=req.presence_penalty or 0.0,
                frequency_penalty=req.frequency_penalty or 0.0,
            ),
            echo=req.prompt_text if isinstance(req, CompletionRequest) and req.echo else "",
            stops=req.stop_sequences,
            stream=req.stream,
            include_usage=req.include_usage,
            session=session,
            permit=permit,
            arrived=arrived,
            headers={
                "x-request-id": request_id,
                "x-llmfn-complexity": f"{score:.4f}",
                "x-llmfn-tier": tier,
            },
        )

    async def _render(self, req: ChatCompletionRequest | CompletionRequest) -> Prompt:
        """Render and tokenise the prompt in a thread (the event loop keeps answering), after refusing
        one whose UTF-8 bytes alone show that it cannot fit the context (tokenising it would cost
        seconds of CPU for nothing)."""
        assert self.shaping is not None
        texts = (
            [m.text() for m in req.messages] if isinstance(req, ChatCompletionRequest) else [req.prompt_text]
        )
        limit = self.shaping.context_len * self.settings.prompt_bytes_per_token
        size = sum(len(text.encode("utf-8")) for text in texts)
        if size > limit:
            raise APIError(
                400,
                f"The prompt is {size} bytes; this model's context of {self.shaping.context_len} tokens "
                f"takes at most {limit} bytes of prompt ({self.settings.prompt_bytes_per_token} per token).",
                code="context_length_exceeded",
                param="messages" if isinstance(req, ChatCompletionRequest) else "prompt",
            )
        try:
            if isinstance(req, ChatCompletionRequest):
                messages = [m.template_fields() for m in req.messages]
                prompt = await asyncio.to_thread(self.engine.render_chat, messages)
            else:
                prompt = await asyncio.to_thread(self.engine.render_text, req.prompt_text)
        except Exception as exc:  # the input could not be rendered: the client's, never the engine's fault
            raise APIError(
                400, f"The prompt could not be tokenised: {type(exc).__name__}: {exc}", code="invalid_prompt"
            ) from None
        if prompt.tokens == 0:  # nothing for the model to continue: its forward pass would fail
            raise APIError(
                400,
                "The prompt is empty: give at least one token of text.",
                code="invalid_prompt",
                param="prompt",
            )
        return prompt

    async def _wait_ready(self) -> None:
        if self.readiness.is_ready:
            return
        if not self.readiness.failed and self.settings.ready_wait_s > 0:
            await asyncio.to_thread(self.readiness.wait, self.settings.ready_wait_s)
            if self.readiness.is_ready:
                return
        snap = self.readiness.snapshot()
        self.metrics.rejections.labels("not_ready").inc()
        if snap["error"]:
            raise APIError(
                503,
                f"The model failed to load: {snap['error']}",
                code="model_load_failed",
                headers={"Retry-After": str(NOT_READY_RETRY_AFTER_S)},
            )
        raise APIError(
            503,
            f"The model is still loading (stage {snap['stage']}, {snap['progress']:.0%}).",
            code="model_loading",
            headers={"Retry-After": str(NOT_READY_RETRY_AFTER_S)},
        )

    async def _generate(self, job: _Admitted) -> AsyncIterator[tuple[str, int, str | None]]:
        """Engine chunks with stop sequences applied: (text, completion tokens so far, finish reason)."""
        scanner = StopScanner(job.stops)
        stream = self.engine.generate(job.prompt, job.params)
        first = True
        try:
            async for chunk in stream:
                if first:
                    first = False
                    self.metrics.ttft.labels(job.kind).observe(time.perf_counter() - job.arrived)
                    self.readiness.timeline.first_token(
                        time.monotonic() - (time.perf_counter() - job.arrived)
                    )
                text, stopped = scanner.feed(chunk.text)
                if stopped:
                    yield text, chunk.completion_tokens, "stop"
                    return
                if chunk.finish_reason is not None:
                    yield text + scanner.flush(), chunk.completion_tokens, chunk.finish_reason
                    return
                if text:
                    yield text, chunk.completion_tokens, None
        finally:
            await stream.aclose()

    def _finish(self, job: _Admitted, status: str, completion_tokens: int) -> None:
        self.admission.leave(job.session)
        elapsed = time.perf_counter() - job.arrived
        self.count(job.kind, status)
        self._latency[job.kind].observe(elapsed)
        self.metrics.prompt_tokens.inc(job.prompt.tokens)
        self.metrics.completion_tokens.inc(completion_tokens)
        if completion_tokens and elapsed > 0:
            self.metrics.tokens_per_s.observe(completion_tokens / elapsed)
        if self.settings.access_log and log.isEnabledFor(logging.INFO):
            log.info(
                "request",
                extra={
                    "fields": {
                        "request_id": job.request_id,
                        "route": ROUTES[job.kind],
                        "status": int(status) if status.isdigit() else status,
                        "ms": round(elapsed * 1000, 3),
                        "prompt_tokens": job.prompt.tokens,
                        "completion_tokens": completion_tokens,
                        "complexity": job.headers["x-llmfn-complexity"],
                        "stream": job.stream,
                    }
                },
            )

    async def _complete(self, job: _Admitted) -> Response:
        parts: list[str] = []
        tokens, finish = 0, "stop"
        try:
            async for text, count, reason in self._generate(job):
                tokens = count
                parts.append(text)
                finish = reason or finish
        except Exception as exc:
            return self._engine_failed(job, exc, tokens).response(job.request_id)
        except BaseException:
            job.permit.abandon()
            self._finish(job, "499", tokens)
            raise
        job.permit.success()
        self._finish(job, "200", tokens)
        reply = _whole_reply(job, job.echo + "".join(parts), finish, Usage.of(job.prompt.tokens, tokens))
        return Response(json.dumps(reply.model_dump()), 200, job.headers, media_type="application/json")

    def _engine_failed(self, job: _Admitted, exc: Exception, tokens: int) -> APIError:
        """Count an engine failure against the breaker, finish the request, say what failed."""
        job.permit.failure()
        self._finish(job, "500", tokens)
        log.exception("engine failure", extra={"fields": {"request_id": job.request_id}})
        return APIError(500, f"The engine failed: {type(exc).__name__}: {exc}", code="engine_error")

    async def _open_stream(self, job: _Admitted) -> Response:
        """Wait for the first token before sending headers, so that an engine failing at once is a
        plain 500 rather than a 200 stream carrying an error."""
        chunks = self._generate(job)
        try:
            first = await anext(chunks, None)
        except Exception as exc:
            return self._engine_failed(job, exc, 0).response(job.request_id)
        except BaseException:
            job.permit.abandon()
            self._finish(job, "499", 0)
            raise
        return StreamingResponse(
            self._stream(job, first, chunks), media_type=sse.MEDIA_TYPE, headers=job.headers
        )

    async def _stream(
        self,
        job: _Admitted,
        first: tuple[str, int, str | None] | None,
        rest: AsyncIterator[tuple[str, int, str | None]],
    ) -> AsyncIterator[bytes]:
        created = int(time.time())

        def event(text: str | None, finish: str | None, usage: Usage | None = None) -> bytes:
            return sse.sse_event(_stream_chunk(job, created, text, finish, usage))

        async def items() -> AsyncIterator[tuple[str, int, str | None]]:
            if first is not None:
                yield first
            async for item in rest:
                yield item

        tokens, concluded = 0, False
        try:
            if job.kind == CHAT:  # OpenAI's first chat chunk names the role, with empty content
                yield event("", None)
            elif job.echo:  # the echoed prompt comes first, as vLLM streams it
                yield event(job.echo, None)
            finish = "stop"
            try:
                async for text, count, reason in items():
                    tokens = count
                    if text:
                        yield event(text, None)
                    finish = reason or finish
            except Exception as exc:
                concluded = True
                error = self._engine_failed(job, exc, tokens)
                yield sse.sse_event(error.body())
                return
            concluded = True
            job.permit.success()
            self._finish(job, "200", tokens)
            yield event(None, finish)
            if job.include_usage:
                yield event(None, None, Usage.of(job.prompt.tokens, tokens))
            yield sse.DONE
        finally:
            await rest.aclose()
            if not concluded:  # the client went away mid-stream
                job.permit.abandon()
                self._finish(job, "499", tokens)

    def _refuse(self, exc: APIError, kind: str, request_id: str, arrived: float) -> Response:
        status = str(exc.status)
        self.count(kind, status)
        self._latency[kind].observe(time.perf_counter() - arrived)
        if self.settings.access_log and log.isEnabledFor(logging.INFO):
            log.info(
                "request refused",
                extra={
                    "fields": {
                        "request_id": request_id,
                        "route": ROUTES[kind],
                        "status": exc.status,
                        "code": exc.code,
                        "ms": round((time.perf_counter() - arrived) * 1000, 3),
                    }
                },
            )
        return exc.response(request_id)


def _whole_reply(
    job: _Admitted, content: str, finish: str, usage: Usage
) -> ChatCompletionResponse | CompletionResponse:
    """The answer to a request without ``stream``: all the text, why it ended, the token counts."""
    if job.kind == CHAT:
        choice = ChatChoice(message=AssistantMessage(content=content), finish_reason=finish)
        return ChatCompletionResponse(
            id=job.completion_id, created=int(time.time()), model=job.model, choices=[choice], usage=usage
        )
    text = CompletionChoice(text=content, finish_reason=finish)
    return CompletionResponse(
        id=job.completion_id, created=int(time.time()), model=job.model, choices=[text], usage=usage
    )


def _stream_chunk(
    job: _Admitted, created: int, text: str | None, finish: str | None, usage: Usage | None
) -> ChatCompletionChunk | CompletionResponse:
    """One stream chunk: new ``text`` (``""`` opens a chat stream with its role), or ``finish`` (the
    reason it ended), or, with ``usage``, no choice and the token counts. ``created``: Unix seconds."""
    if job.kind == CHAT:
        delta = DeltaMessage(role="assistant", content="") if text == "" else DeltaMessage(content=text)
        chat = [] if usage is not None else [ChatStreamChoice(delta=delta, finish_reason=finish)]
        return ChatCompletionChunk(
            id=job.completion_id, created=created, model=job.model, choices=chat, usage=usage
        )
    texts = [] if usage is not None else [CompletionChoice(text=text or "", finish_reason=finish)]
    return CompletionResponse(
        id=job.completion_id, created=created, model=job.model, choices=texts, usage=usage
    )


def _schema_error(exc: ValidationError) -> APIError:
    first = exc.errors()[0]
    param = ".".join(str(p) for p in first["loc"]) or None
    message = f"{param}: {first['msg']}" if param else first["msg"]
    if len(exc.errors()) > 1:
        message += f" (and {len(exc.errors()) - 1} more)"
    return APIError(422, message, code="invalid_value", param=param)

"""The routes of the OpenAI-compatible inference app: ``create_app(settings) -> FastAPI``.

Routes: ``POST /v1/chat/completions``, ``POST /v1/completions`` (JSON or SSE streaming, ``usage``
filled in, also in a last stream chunk with ``stream_options.include_usage``), ``GET /v1/models``,
``GET /healthz`` (live), ``GET /readyz`` (200 once the preload's last stage finished, else 503 with
stage and progress and ``Retry-After`` in seconds), ``GET /metrics`` (Prometheus). Errors use OpenAI's
format. With an API key every route but ``/healthz`` requires it. GET routes answer HEAD too (RFC 9110
section 9.1: "All general-purpose servers MUST support the methods GET and HEAD"), as the ``llmfn dev``
gateway does; a path with a trailing slash is a 404, never a redirect to the client's ``Host`` before the
key check. Header fields are bounded (:mod:`functions.guards.headers`). The OpenAPI document is not served:
``app.openapi()`` builds it, with the request bodies and 200 answers of :mod:`functions.api.protocol`.
What a generation request goes through, in order, is :mod:`functions.api.serving`'s docstring.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from functions.api import sse
from functions.api.protocol import (
    ChatCompletionChunk,
    ChatCompletionResponse,
    CompletionResponse,
    ModelCard,
    ModelList,
    openapi_components,
    openapi_generation_bodies,
)
from functions.api.serving import CHAT, COMPLETIONS, NOT_READY_RETRY_AFTER_S, ServingRuntime
from functions.engines import Engine
from functions.errors import APIError, http_error
from functions.guards.headers import HeaderLimits
from functions.metrics import CONTENT_TYPE
from functions.settings import ServeSettings


def _answers(reply: type[BaseModel], chunk: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI 200 answer of a generation route: ``reply`` as JSON, or with ``stream`` an SSE stream
    of ``chunk`` events (SSE is text: the document names the chunk's component, it cannot check it)."""
    events = f"Server-Sent Events 'data: <{chunk.__name__} JSON>' (a component), then 'data: [DONE]'."
    return {
        200: {
            "model": reply,
            "content": {sse.MEDIA_TYPE: {"schema": {"type": "string", "description": events}}},
        }
    }


def openapi_schema(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document with the request bodies of the generation routes (read from the raw
    request, so FastAPI cannot see them) and the stream chunk's component. Not served (with a key only ``/healthz`` is open): call
    ``app.openapi()``; the fuzz tests and ``bench/fuzz.py`` do."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
        components, bodies = openapi_generation_bodies()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas.update(components)
        schemas.update(openapi_components(ChatCompletionChunk))  # named by the SSE answers only
        for path, body in bodies.items():
            schema["paths"][path]["post"]["requestBody"] = body
        app.openapi_schema = schema
    return app.openapi_schema


def create_app(settings: ServeSettings, engine: Engine | None = None) -> FastAPI:
    """The app for ``settings``; ``engine`` replaces the one ``settings.engine`` names (tests, embedding).

    The preload starts on the ASGI lifespan start-up (or call ``app.state.runtime.start()`` where no
    lifespan runs, as in the event entry points); the app answers ``/healthz`` and ``/readyz`` at once.
    """
    runtime = ServingRuntime(settings, engine)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        runtime.start()
        yield

    app = FastAPI(
        title="llmfn inference",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
        redirect_slashes=False,
    )
    app.add_middleware(HeaderLimits)
    app.state.runtime = runtime
    app.openapi = lambda: openapi_schema(app)  # type: ignore[method-assign]

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return http_error(exc.status_code, str(exc.detail)).response()

    @app.post("/v1/chat/completions", responses=_answers(ChatCompletionResponse, ChatCompletionChunk))
    async def chat_completions(request: Request) -> Response:
        return await runtime.handle_generation(request, CHAT)

    @app.post("/v1/completions", responses=_answers(CompletionResponse, CompletionResponse))
    async def completions(request: Request) -> Response:
        return await runtime.handle_generation(request, COMPLETIONS)

    def guarded(
        route: str | None,
    ) -> Callable[[Callable[[], Response]], Callable[[Request], Awaitable[Response]]]:
        """A GET endpoint behind the API key (when one is set); ``route`` labels its requests metric."""

        def wrap(answer: Callable[[], Response]) -> Callable[[Request], Awaitable[Response]]:
            async def endpoint(request: Request) -> Response:
                try:
                    runtime.authorize(request)
                except APIError as exc:
                    if route is not None:
                        runtime.count(route, str(exc.status))
                    return exc.response()
                if route is not None:
                    runtime.count(route, "200")
                return answer()

            return endpoint

        return wrap

    @guarded("models")
    def models() -> Response:
        models = ModelList(data=[ModelCard(id=runtime.engine.model_name)])
        return Response(json.dumps(models.model_dump()), media_type="application/json")

    @guarded(None)
    def readyz() -> Response:
        snap = runtime.readiness.snapshot()
        if snap["ready"]:
            return Response(json.dumps(snap), 200, media_type="application/json")
        headers = {"Retry-After": str(NOT_READY_RETRY_AFTER_S)}
        return Response(json.dumps(snap), 503, headers, media_type="application/json")

    @guarded(None)
    def metrics() -> Response:
        runtime.metrics.queue_length.set(runtime.admission.slots.queued)
        return Response(runtime.metrics.render(), media_type=CONTENT_TYPE)

    async def healthz() -> Response:
        """Liveness: the only route open without the API key."""
        return Response(b'{"status":"ok"}', media_type="application/json")

    for path, endpoint, responses in (
        ("/healthz", healthz, None),
        ("/v1/models", models, {200: {"model": ModelList}}),
        ("/readyz", readyz, None),
        ("/metrics", metrics, None),
    ):
        app.add_api_route(path, endpoint, methods=["GET"], responses=responses)
        app.add_api_route(path, endpoint, methods=["HEAD"], include_in_schema=False)  # GET without a body
    return app

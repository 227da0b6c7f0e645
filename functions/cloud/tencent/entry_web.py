"""Tencent SCF web / image function entry point: ``python -m functions.cloud.tencent.entry_web``.

Listens on ``0.0.0.0:9000`` (SCF's fixed port; ``LLMFN_HOST`` / ``LLMFN_PORT`` override it) within the
start-up limit: the preload runs in the background and ``/readyz`` reports it. Configured by
``LLMFN_*`` environment variables (``LLMFN_MODEL``, ``LLMFN_API_KEY``, ...).

With ``LLMFN_ROLE=scaler`` the same image is the scaler: an SCF event image function, whose events
(the timer trigger's ``{"Type": "Timer", "Time": ...}``) arrive as ``POST /event-invoke`` bodies on
port 9000 and are answered with ``functions.scaler.handler.main_handler``'s result as JSON; the
role's temporary keys in each request's ``X-Scf-Secret-Id`` / ``X-Scf-Secret-Key`` /
``X-Scf-Session-Token`` headers reach the handler as ``context["credentials"]``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from core.contract import ENV_HOST, ENV_PORT, ENV_ROLE, ROLE_SCALER, SCF_HOST, SCF_PORT
from functions.serve import serve_or_exit
from functions.settings import ServeSettings


def web_settings() -> ServeSettings:
    """``LLMFN_*`` settings with SCF's host and port unless the environment names others."""
    return ServeSettings.from_env(
        host=None if os.environ.get(ENV_HOST) else SCF_HOST,
        port=None if os.environ.get(ENV_PORT) else SCF_PORT,
    )


EVENT_PATH = "/event-invoke"
# An image function's environment holds no API keys (doc 583/94320 lists its built-in variables); the
# role's temporary keys arrive with each request (doc 583/56051): X-Scf-Secret-Id, X-Scf-Secret-Key,
# X-Scf-Session-Token. They expire, so they are read per request and never cached.
SCF_CREDENTIAL_HEADERS = {
    "secret_id": "x-scf-secret-id",
    "secret_key": "x-scf-secret-key",
    "session_token": "x-scf-session-token",
}
EventHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


def event_function_app(handler: EventHandler) -> Any:
    """ASGI app of an SCF event image function: ``POST /event-invoke`` with the event as the body."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def invoke(request: Request) -> JSONResponse:
        raw = await request.body()
        try:
            event = json.loads(raw) if raw else {}
        except json.JSONDecodeError as exc:
            return JSONResponse({"error": f"event body is not JSON: {exc}"}, status_code=400)
        if not isinstance(event, dict):
            return JSONResponse({"error": "event body must be a JSON object"}, status_code=400)
        context: dict[str, Any] = {"request_id": request.headers.get("x-scf-request-id")}
        credentials = {key: request.headers.get(header) for key, header in SCF_CREDENTIAL_HEADERS.items()}
        if credentials["secret_id"] and credentials["secret_key"]:
            context["credentials"] = credentials
        return JSONResponse(await run_in_threadpool(handler, event, context))

    return Starlette(routes=[Route(EVENT_PATH, invoke, methods=["POST"])])


def serve_scaler() -> None:
    """Run the scaler as an SCF event image function on SCF's host and port."""
    import uvicorn

    from functions.guards.headers import server_options
    from functions.scaler.handler import main_handler

    host = os.environ.get(ENV_HOST) or SCF_HOST
    port = int(os.environ.get(ENV_PORT) or SCF_PORT)
    uvicorn.run(event_function_app(main_handler), host=host, port=port, log_level="info", **server_options())


def main() -> None:
    if os.environ.get(ENV_ROLE) == ROLE_SCALER:
        serve_scaler()
    else:
        serve_or_exit(web_settings)


if __name__ == "__main__":
    main()

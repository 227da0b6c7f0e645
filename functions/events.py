"""API gateway events -> the inference app, shared by every cloud's event entry point
(``functions.cloud.aws.entry``, ``functions.cloud.tencent.entry_event``): one app per process, preload
started outside any lifespan. Each is configured by ``LLMFN_*`` environment variables
(``functions.settings``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from functions.readiness import note_process_span
from functions.settings import ServeSettings

EVENT_READY_WAIT_S = 25.0
"""Event functions have no readiness probe: a request during the preload waits this long (SCF's
start-up limit is 30 s) before a 503."""

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def make_event_handler(settings: ServeSettings, custom_handlers: list[type] | None = None) -> Handler:
    """A handler ``(event, context) -> response dict`` around a fresh app; the preload starts now.

    The engine's weight I/O starts before the serving stack (FastAPI, Mangum) is imported.
    """
    from functions.engines import make_engine

    engine = make_engine(settings)
    engine.begin()
    started = time.monotonic()
    from mangum import Mangum

    from functions.api.router import create_app
    from functions.logs import configure_json_logging

    note_process_span("imports", started, time.monotonic())
    configure_json_logging(settings.log_level)
    app = create_app(settings, engine)
    app.state.runtime.start()
    mangum = Mangum(app, lifespan="off", custom_handlers=custom_handlers or [])
    prime = getattr(engine, "prime_calling_thread", None)
    if prime is None:
        return mangum

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        prime()  # on the invoking (main) thread, once torch is imported: see prime_calling_thread
        return mangum(event, context)

    return handler


def settings_from_env() -> ServeSettings:
    """``LLMFN_*`` settings; a request waits up to ``EVENT_READY_WAIT_S`` for readiness unless set."""
    settings = ServeSettings.from_env()
    settings.require_key_unless_public("a cloud entry point answers whoever reaches the function's URL")
    if "ready_wait_s" not in settings.model_fields_set:
        settings = settings.model_copy(update={"ready_wait_s": EVENT_READY_WAIT_S})
    return settings

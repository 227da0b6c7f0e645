"""Run one inference worker: ``python -m functions.serve --model PATH --port N [options]``.

Listens at once and preloads in the background: ``GET /healthz`` answers 200 immediately,
``GET /readyz`` 503 (JSON: ``stage``, ``progress``, ...) until the preload's last stage finished, then
200; ``GET /metrics`` is Prometheus text; ``/v1/*`` is the OpenAI-compatible API.

Flags (every one also readable from ``LLMFN_<NAME>``; a flag wins over the variable):

--model PATH                checkpoint directory (this or --model-source, unless --engine null)
--model-source SRC          fetched in the background at start-up: org/name, hf://org/name, s3://, cos://
--model-revision REV        Hub revision of --model-source (pin a commit)
--model-cache-dir DIR       where --model-source is fetched to
--model-name NAME           model id clients send (default: the directory name)
--engine {transformers,null,vllm}   default transformers
--device DEV                torch device for transformers: cpu (default), cuda, cuda:1
--host HOST                 default 127.0.0.1
--port N                    default 8000
--api-key KEY               require "Authorization: Bearer KEY" on /v1/* (or LLMFN_API_KEY)
--preload-workers N         parallel readers of the preload (default 4)
--cpu-threads N             torch threads on CPU (default: 1 under 256 MB of weights, else torch's)
--rate-per-s R --burst B    token-bucket admission (default 50 req/s, burst 100)
--max-concurrency N         requests the engine runs at once (default 8)
--max-queue N               admitted requests that may wait for a slot (default 64)
--queue-timeout-s S         longest wait for a slot (default 30)
--ready-wait-s S            how long a request before readiness waits (default 0: 503 at once)
--session-hold-s S          hold a slot per x-llmfn-session header for S seconds (default 0: off)
--max-model-len N           context length (default: the model's)
--max-body-bytes N          413 above (default 1 MiB)
--null-completion-tokens N  answer length of the null engine (default 8)
--log-level LEVEL           debug, info (default), warning, error
--no-access-log             no JSON line per request
"""

from __future__ import annotations

from functions.readiness import mark_entry, note_process_span

mark_entry()  # the entry point's first line: ends the timeline's ``interpreter`` step

import argparse  # noqa: E402
import asyncio  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

from functions.settings import ServeSettings  # noqa: E402

_FLAGS: dict[str, type] = {
    "model": str,
    "model_source": str,
    "model_revision": str,
    "model_cache_dir": str,
    "model_name": str,
    "engine": str,
    "device": str,
    "host": str,
    "port": int,
    "api_key": str,
    "preload_workers": int,
    "cpu_threads": int,
    "rate_per_s": float,
    "burst": int,
    "max_concurrency": int,
    "max_queue": int,
    "queue_timeout_s": float,
    "ready_wait_s": float,
    "session_hold_s": float,
    "max_model_len": int,
    "max_body_bytes": int,
    "null_completion_tokens": int,
    "log_level": str,
}


def parse_settings(argv: list[str] | None = None) -> ServeSettings:
    """Flags over ``LLMFN_*`` variables over defaults; raises ``SettingsError`` naming the bad field."""
    parser = argparse.ArgumentParser(
        prog="python -m functions.serve", description=(__doc__ or "").split("\n\n")[0]
    )
    for name, kind in _FLAGS.items():
        parser.add_argument("--" + name.replace("_", "-"), dest=name, type=kind, default=None)
    parser.add_argument("--no-access-log", dest="access_log", action="store_false", default=None)
    args = vars(parser.parse_args(argv))
    return ServeSettings.from_env(**args)


def serve(settings: ServeSettings) -> None:
    """Run uvicorn on ``settings.host:settings.port`` until interrupted.

    The engine's weight I/O starts first, then the serving stack is imported (the ``imports`` step):
    the bytes arrive while the rest of the process starts.
    """
    from functions.engines import make_engine

    engine = make_engine(settings)
    engine.begin()
    started = time.monotonic()
    import uvicorn

    from functions.api.router import create_app
    from functions.guards.headers import server_options
    from functions.logs import configure_json_logging

    note_process_span("imports", started, time.monotonic())
    configure_json_logging(settings.log_level)
    app = create_app(settings, engine)
    config = uvicorn.Config(
        prime_main_thread(app, engine),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
        timeout_keep_alive=30,
        **server_options(),
    )
    uvicorn.Server(config).run()


def prime_main_thread(app: Any, engine: object) -> Any:
    """``app`` with a lifespan task that calls ``engine.prime_calling_thread()`` on the event loop's
    thread (the main thread) once the engine's imports are done; ``app`` itself for other engines."""
    prime = getattr(engine, "prime_calling_thread", None)
    imported = getattr(engine, "imported", None)
    if prime is None or imported is None:
        return app

    async def wait_then_prime() -> None:
        await asyncio.to_thread(imported.wait)
        prime()

    tasks: list[asyncio.Task[None]] = []

    async def primed_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan" and not tasks:
            tasks.append(asyncio.get_running_loop().create_task(wait_then_prime()))
        await app(scope, receive, send)

    return primed_app


def serve_or_exit(settings_factory: Callable[[], ServeSettings]) -> None:
    """Build the settings and serve; a configuration error is one ``error:`` line and exit status 2."""
    try:
        settings = settings_factory()
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    serve(settings)


def main(argv: list[str] | None = None) -> None:
    serve_or_exit(lambda: parse_settings(argv))


if __name__ == "__main__":
    main()

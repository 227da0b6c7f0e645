"""``llmfn serve``: one OpenAI-compatible inference worker on this machine (``functions.serve``)."""

from __future__ import annotations

import typer

from core.contract import ENV_API_KEY, ENV_PUBLIC


def serve(
    model: str | None = typer.Option(
        None, "--model", help="Checkpoint dir or Hub id. Default: the embedded tiny random-weight model."
    ),
    revision: str | None = typer.Option(None, "--revision", help="Hub revision for a Hub --model."),
    engine: str = typer.Option("transformers", "--engine", help="transformers, vllm (GPU) or null."),
    device: str = typer.Option("cpu", "--device", help="torch device for transformers: cpu, cuda, cuda:1."),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port"),
    api_key: str | None = typer.Option(
        None,
        "--api-key",
        envvar=ENV_API_KEY,
        help="Require 'Authorization: Bearer KEY' on every route but /healthz.",
    ),
    no_auth: bool = typer.Option(
        False,
        "--no-auth",
        envvar=ENV_PUBLIC,
        help="Serve without --api-key on a non-loopback --host (anyone who reaches it may use the model).",
    ),
    rate_per_s: float = typer.Option(50.0, "--rate-per-s", help="Token-bucket admission rate, req/s."),
    burst: int = typer.Option(100, "--burst", help="Token-bucket burst, requests."),
    max_concurrency: int = typer.Option(8, "--max-concurrency", help="Requests the engine runs at once."),
    max_queue: int = typer.Option(64, "--max-queue", help="Requests that may wait for a slot (429 above)."),
    session_hold_s: float = typer.Option(0.0, "--session-hold-s", help="Hold a slot per x-llmfn-session."),
    log_level: str = typer.Option("info", "--log-level"),
) -> None:
    """Serve /v1/chat/completions, /v1/completions, /v1/models, /healthz, /readyz and /metrics."""
    from functions.secrets import api_key_given
    from functions.serve import serve as run
    from functions.settings import ServeSettings
    from llmfn.commands.dev import resolve_model

    model_dir, name = (None, "null") if engine == "null" else resolve_model(model, revision)
    settings = ServeSettings.build(
        model=model_dir,
        model_name=name,
        engine=engine,
        device=device,
        host=host,
        port=port,
        api_key=api_key_given(api_key),
        public=no_auth or None,
        rate_per_s=rate_per_s,
        burst=burst,
        max_concurrency=max_concurrency,
        max_queue=max_queue,
        session_hold_s=session_hold_s,
        log_level=log_level,
    )
    typer.echo(f"serving {settings.served_model_name} ({engine}) on http://{host}:{port}/v1", err=True)
    run(settings)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)

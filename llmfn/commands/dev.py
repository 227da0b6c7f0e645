"""``llmfn dev``: the serverless platform in miniature on this machine (gateway + worker processes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from core.contract import ENV_API_KEY
from core.errors import InputError
from llmfn.commands.fields import option
from llmfn.commands.options import read_policy_config
from llmfn.local.defaults import DevDefaults

console = Console(stderr=True)

NOISE_WARNING = (
    "no --model given: serving the embedded tiny Qwen3-architecture model with RANDOM weights. "
    "Its answers are noise; it exists to try the platform. Use --model Qwen/Qwen3-0.6B or a local "
    "checkpoint directory for real answers."
)


def resolve_model(model: str | None, revision: str | None) -> tuple[Path, str | None]:
    """The checkpoint directory to serve and the name to serve it under.

    None: the cached tiny model (built once, seeded). Otherwise ``preload.resolve_source``: a local
    directory (served under its name), a Hub id such as ``Qwen/Qwen3-0.6B`` (fetched once into the
    cache, revision pinned, served under the id), or ``s3://`` / ``cos://``.
    """
    if model is None:
        from llmfn.local.tiny_model import TINY_MODEL_NAME, ensure_tiny_model

        console.print(f"[bold yellow]warning:[/bold yellow] {NOISE_WARNING}", highlight=False)
        return ensure_tiny_model(), TINY_MODEL_NAME
    from preload import resolve_source

    local = Path(model).expanduser()
    try:
        path = resolve_source(model, revision=revision)
    except (ValueError, OSError):
        raise
    except Exception as exc:  # the hub client's network errors: say what to do instead of a traceback
        raise InputError(
            f"--model {model!r}: could not fetch it ({type(exc).__name__}: {exc}); check the network, "
            "or set HF_HUB_OFFLINE=1 to use a cached copy, or give a local checkpoint directory"
        ) from exc
    return path.resolve(), None if local.is_dir() else model


def _option(field: str, help: str) -> Any:
    """``llmfn dev``'s flag for ``DevConfig.field``, its default ``DevDefaults``' (``llmfn.commands.fields``)."""
    return option("dev", DevDefaults, field, help)


def dev(
    model: str | None = typer.Option(
        None, "--model", help="Checkpoint dir or Hub id (e.g. Qwen/Qwen3-0.6B). Default: tiny random model."
    ),
    revision: str | None = typer.Option(None, "--revision", help="Hub revision (commit) for a Hub --model."),
    policy: str = _option("policy", "Scaling policy deciding every tick."),
    policy_config: Path | None = typer.Option(
        None,
        "--policy-config",
        help='JSON of PolicyConfig fields (e.g. {"hybrid": {...}}) or a deployment profile (JSON/TOML).',
    ),
    reserved: int = _option("reserved", "Reserved workers started at launch (fixed pool size)."),
    max_instances: int = _option("max_instances", "Quota: workers alive at once."),
    concurrency_per_instance: int = _option(
        "concurrency_per_instance", "Concurrent requests per worker (heavy requests take all)."
    ),
    port: int = _option("port", "Gateway port on 127.0.0.1."),
    tick: float | None = _option(
        "tick_s", "Seconds between two policy decisions (default: the policy's own interval)."
    ),
    idle_timeout: float = _option("idle_timeout_s", "Seconds before an idle on-demand worker is reaped."),
    queue_timeout: float = _option("queue_timeout_s", "Longest wait for a worker, seconds (then 503)."),
    max_queue: int = _option("max_queue", "Requests that may wait at once (then 429)."),
    cold_start_timeout: float = _option("cold_start_timeout_s", "Seconds a worker may take to load."),
    cold_start_estimate: float = _option(
        "cold_start_estimate_s", "Cold start the policy plans with, seconds."
    ),
    engine: str = _option("engine", "Worker engine: transformers or null."),
    worker_threads: int = _option("worker_threads", "torch threads per worker."),
    tier_exclusive: bool = _option(
        "tier_exclusive",
        "A busy worker takes requests of its own complexity tier only (llmfn simulate --tiers).",
    ),
    worker_arg: list[str] = typer.Option(
        [], "--worker-arg", help="Extra argument for `python -m functions.serve` (repeatable)."
    ),
    api_key: str | None = typer.Option(
        None,
        "--api-key",
        envvar=ENV_API_KEY,
        help="Require 'Authorization: Bearer KEY' on every route but /healthz (gateway and workers).",
    ),
    max_body_bytes: int = _option("max_body_bytes", "Largest request body, bytes (413 above)."),
) -> None:
    """Serve a model locally behind a gateway with reserved and on-demand workers, scaled by a policy."""
    from functions.secrets import api_key_given
    from llmfn.local.config import DevConfig
    from llmfn.local.runner import build_gateway, serve

    overrides = read_policy_config(policy_config) or None
    planned_slots = (overrides or {}).get("concurrency_per_instance", concurrency_per_instance)
    if planned_slots != concurrency_per_instance:
        raise InputError(
            f"--policy-config {str(policy_config)!r} plans with {planned_slots} concurrent requests per "
            f"instance but --slots is {concurrency_per_instance}: make them equal"
        )
    model_dir, model_name = resolve_model(model, revision)
    config = DevConfig(
        model_dir=model_dir,
        model_name=model_name,
        policy=policy,
        reserved=reserved,
        max_instances=max_instances,
        concurrency_per_instance=concurrency_per_instance,
        port=port,
        tick_s=tick,
        idle_timeout_s=idle_timeout,
        queue_timeout_s=queue_timeout,
        max_queue=max_queue,
        cold_start_timeout_s=cold_start_timeout,
        cold_start_estimate_s=cold_start_estimate,
        engine=engine,
        worker_threads=worker_threads,
        worker_args=tuple(worker_arg),
        api_key=api_key_given(api_key),
        max_body_bytes=max_body_bytes,
        tier_exclusive=tier_exclusive,
    )
    gateway = build_gateway(config, overrides)
    url = f"http://{config.host}:{config.port}"
    console.print(
        f"llmfn dev: gateway {url} | policy {policy} | {reserved} reserved, quota {max_instances} | "
        f"model {model_dir} | worker logs {gateway.pool.log_dir}",
        highlight=False,
    )

    def on_ready(_gateway: object) -> None:
        console.print(
            f"llmfn dev: ready. Try: llmfn invoke 'Hello' --url {url} | status: {url}/_llmfn/status | "
            "Ctrl-C stops every worker.",
            highlight=False,
        )

    def on_stopped(_gateway: object) -> None:
        console.print("llmfn dev: stopped; every worker process has exited.", highlight=False)

    serve(gateway, on_ready, on_stopped)


def register(app: typer.Typer) -> None:
    app.command("dev")(dev)

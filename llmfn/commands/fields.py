"""CLI options whose default is the model field's default, written once (README.md, "Configuration: one
mechanism, one name per concept"), and the field -> flag tables ``llmfn.errors.FLAGS`` reads.

A command declares its flags once, ``FLAGS_OF[command] = {field: flag}``; :func:`option` builds the
typer option of one field from that table and the model (a pydantic model or a dataclass), so the
default shown by ``--help`` and applied without the flag is the model's own, and the error printer
words the same field as the same flag.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import typer

FLAGS_OF: dict[str, dict[str, str]] = {
    "dev": {
        "revision": "--revision",
        "api_key": "--api-key",
        "reserved": "--reserved",
        "max_instances": "--max",
        "concurrency_per_instance": "--slots",
        "port": "--port",
        "tick_s": "--tick",
        "idle_timeout_s": "--idle-timeout",
        "queue_timeout_s": "--queue-timeout",
        "max_queue": "--max-queue",
        "cold_start_timeout_s": "--cold-start-timeout",
        "cold_start_estimate_s": "--cold-start-estimate",
        "engine": "--engine",
        "worker_threads": "--worker-threads",
        "tier_exclusive": "--tier-exclusive",
        "max_body_bytes": "--max-body-bytes",
        "policy": "--policy",
    },
    "plan": {
        "p95_latency_s": "--p95",
        "concurrency_per_instance": "--concurrency",
        "utc_offset_hours": "--utc-offset",
        "provider": "--provider",
        "headroom": "--headroom",
        "min_utilisation": "--min-utilisation",
        "min_reserved": "--min",
        "max_reserved": "--max",
    },
    "simulate": {
        "slo_p99_s": "--slo-p99",
        "slo_per_1k_tokens_s": "--slo-per-1k-tokens",
        "slo_tpot_s": "--slo-tpot",
        "dispatch": "--dispatch",
        "policy": "--policy",
        "fidelity": "--fidelity",
        "tier_bounds_tokens": "--tiers",
        "plot_policies": "--plot-policies",
    },
}
"""Per command: model field -> the flag that sets it (options built by :func:`option`)."""


def model_default(model: type, field: str) -> Any:
    """The default of ``model``'s ``field`` (a pydantic model's or a dataclass's); a field without one
    is a programming error (``KeyError``)."""
    pydantic_fields = getattr(model, "model_fields", None)
    if pydantic_fields is not None:
        info = pydantic_fields[field]
        if info.is_required():
            raise KeyError(f"{model.__name__}.{field} has no default")
        return info.get_default(call_default_factory=True)
    for item in dataclasses.fields(model):
        if item.name == field and item.default is not dataclasses.MISSING:
            return item.default
    raise KeyError(f"{model.__name__}.{field} has no default")


def option(command: str, model: type, field: str, help: str, **extra: Any) -> Any:
    """``typer.Option`` for ``model.field`` under ``command``'s flag (``FLAGS_OF``), its default the model's."""
    return typer.Option(model_default(model, field), FLAGS_OF[command][field], help=help, **extra)

"""The defaults of ``llmfn dev``'s configuration, written once: ``DevConfig`` (``llmfn/local/config.py``)
declares its fields with them and ``llmfn dev``'s options show and apply them (``llmfn.commands.fields``).

A plain dataclass, so the CLI reads it without importing pydantic; units as in ``DevConfig``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DevDefaults:
    """Defaults of ``DevConfig``'s fields (seconds for ``_s``, bytes for ``_bytes``)."""

    policy: str = "hybrid"
    reserved: int = 1
    max_instances: int = 4
    concurrency_per_instance: int = 1
    port: int = 8080
    tick_s: float | None = None
    idle_timeout_s: float = 60.0
    queue_timeout_s: float = 30.0
    max_queue: int = 64
    cold_start_timeout_s: float = 120.0
    cold_start_estimate_s: float = 5.0
    engine: str = "transformers"
    worker_threads: int = 1
    max_body_bytes: int = 1_048_576
    tier_exclusive: bool = False


DEV = DevDefaults()

"""Configuration of the local runtime (``llmfn dev``), validated once at the edge.

Platform behaviour (how long an idle on-demand worker is kept, the quota, how long a request may wait
for capacity) is configuration here exactly as it is provider configuration in the cloud; the policy
decides only the reserved capacity and pre-warming.
"""

from __future__ import annotations

import math
from pathlib import Path

from pydantic import model_validator

from core.errors import InputError
from core.secrets import ApiKey
from core.validated import FrozenModel
from functions.settings import SettingsError
from llmfn.local.defaults import DEV


class DevConfig(FrozenModel):
    """Everything ``llmfn dev`` needs; times are seconds.

    model_dir: local checkpoint directory every worker serves.
    model_name: the id the model is served under (``None``: the checkpoint directory's name).
    policy: name of a ``scaling.policy`` policy deciding the reserved count every tick.
    reserved: reserved (kept-warm) workers at launch and the policy's configured reserved count.
    max_instances: the quota: workers alive at once, reserved and on-demand together (the
        simulator's ``Provider.max_instances``; flag ``--max``).
    concurrency_per_instance: concurrent requests one worker serves (``PolicyConfig``'s and the
        stack's name for it; flag ``--slots``) (tier S and M requests take one slot
        each, tier L requests, the heavy ones of ``functions.guards.complexity``, take all of them).
    tick_s: interval between two policy decisions; None: the policy's own ``interval_s`` (60 s for
        the cloud policies, 2 s for KPA), which is also what the simulator ticks at.
    idle_timeout_s: an on-demand worker idle this long is reaped (the provider's keep-alive).
    queue_timeout_s: longest a request waits for a free slot (incl. a cold start) before a 503.
    max_queue: requests waiting at once; the next one gets 429 with Retry-After.
    cold_start_timeout_s: a worker not ready after this long is killed and counted as failed.
    cold_start_estimate_s: the cold start the policy plans pre-warms with (a worker of the tiny
        model, which imports torch, takes ~3-5 s on a 2-core machine).
    request_timeout_s: longest the gateway waits on a worker for a response (never hangs).
    engine: the worker's engine (``transformers`` or ``null``).
    worker_threads: torch threads per worker (``OMP_NUM_THREADS``).
    worker_args: extra arguments passed through to ``python -m functions.serve``.
    api_key: Bearer key required on every route of the gateway and its workers but ``/healthz``
        (``None``: open; the gateway listens on loopback only); a ``core.secrets.ApiKey``, so an
        empty, blank or multi-line key is refused and its repr is masked.
    max_body_bytes: largest request body, bytes (413 above), at the gateway and at each worker.
    tier_exclusive: a busy worker takes requests of its own complexity tier only (an idle one any),
        so the requests sharing a worker finish close together: the simulator's tiered dispatch
        (``llmfn simulate --tiers``). Off by default.

    A frozen pydantic model, validated once when built; an invalid value raises a
    :class:`functions.settings.SettingsError` (an ``InputError``) naming the field, which the CLI
    words as its ``llmfn dev`` flag (``llmfn.errors.FLAGS``).
    """

    error_type = SettingsError

    model_dir: Path
    model_name: str | None = None
    policy: str = DEV.policy
    reserved: int = DEV.reserved
    max_instances: int = DEV.max_instances
    concurrency_per_instance: int = DEV.concurrency_per_instance
    host: str = "127.0.0.1"
    port: int = DEV.port
    tick_s: float | None = DEV.tick_s
    idle_timeout_s: float = DEV.idle_timeout_s
    queue_timeout_s: float = DEV.queue_timeout_s
    max_queue: int = DEV.max_queue
    cold_start_timeout_s: float = DEV.cold_start_timeout_s
    cold_start_estimate_s: float = DEV.cold_start_estimate_s
    request_timeout_s: float = 300.0
    engine: str = DEV.engine
    worker_threads: int = DEV.worker_threads
    worker_args: tuple[str, ...] = ()
    api_key: ApiKey | None = None
    max_body_bytes: int = DEV.max_body_bytes
    tier_exclusive: bool = DEV.tier_exclusive

    @property
    def served_model_name(self) -> str:
        """The model id clients send: ``model_name``, else the checkpoint directory's name."""
        return self.model_name or self.model_dir.name

    @model_validator(mode="before")
    @classmethod
    def _check_counts(cls, values: object) -> object:
        """Integer settings checked before pydantic coerces them (2.5 is refused, not truncated)."""
        if isinstance(values, dict):
            for name, minimum in _INT_MINIMA:
                if name in values:
                    _check_int(name, values[name], minimum)
        return values

    @model_validator(mode="after")
    def _check(self) -> DevConfig:
        if self.reserved > self.max_instances:
            raise InputError(
                f"{self.reserved} exceeds max_instances {self.max_instances}: the reserved workers must fit "
                "in the quota",
                field="reserved",
                value=self.reserved,
                allowed="<= max_instances",
            )
        if not 1 <= self.port <= 65535:
            raise InputError(
                f"must be in 1..65535, got {self.port}", field="port", value=self.port, allowed="1..65535"
            )
        for name, value in (
            ("idle_timeout_s", self.idle_timeout_s),
            ("queue_timeout_s", self.queue_timeout_s),
            ("cold_start_timeout_s", self.cold_start_timeout_s),
            ("cold_start_estimate_s", self.cold_start_estimate_s),
            ("request_timeout_s", self.request_timeout_s),
        ):
            if not (value > 0 and math.isfinite(value)):
                raise InputError(
                    f"must be a positive number of seconds, got {value!r}",
                    field=name,
                    value=value,
                    allowed="a positive number of seconds",
                )
        if self.tick_s is not None and not (self.tick_s > 0 and math.isfinite(self.tick_s)):
            raise InputError(
                f"must be a positive number of seconds, got {self.tick_s!r}",
                field="tick_s",
                value=self.tick_s,
                allowed="a positive number of seconds",
            )
        if self.engine not in ("transformers", "null"):
            raise InputError(
                f"must be 'transformers' or 'null', got {self.engine!r}",
                field="engine",
                value=self.engine,
                allowed="'transformers' or 'null'",
            )
        if self.host not in ("127.0.0.1", "localhost", "::1"):
            raise InputError(
                f"must be a loopback address (127.0.0.1), got {self.host!r}",
                field="host",
                value=self.host,
                allowed="127.0.0.1, localhost or ::1",
            )
        return self


_INT_MINIMA = (
    ("reserved", 0),
    ("max_instances", 1),
    ("concurrency_per_instance", 1),
    ("max_queue", 0),
    ("worker_threads", 1),
    ("max_body_bytes", 1024),
)
"""(field, minimum) of the integer settings."""


def _check_int(field: str, value: int, minimum: int) -> None:
    if not isinstance(value, int) or value < minimum:
        raise InputError(
            f"must be an integer >= {minimum}, got {value!r}",
            field=field,
            value=value,
            allowed=f"an integer >= {minimum}",
        )

"""The shape of ``/_llmfn/status``: one typed model that the gateway builds and ``llmfn load`` reads.

The gateway validates what the pool, the workers and the autoscaler report into these models before
answering, and every reader parses the answer back into them, so a key renamed on one side fails a
test (an unknown or missing field) instead of a ``KeyError`` in the field. Times are seconds.
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GatewayStatus(_Strict):
    """How the gateway is configured."""

    url: str
    model_dir: str
    model_name: str
    engine: str
    policy: str
    tick_s: float
    """Seconds between two autoscaler ticks."""
    idle_timeout_s: float
    """An on-demand worker idle this long is reaped, seconds."""
    queue_timeout_s: float
    max_queue: int
    admission_rps: float | None
    """The token bucket's refill rate, requests per second; None without admission control."""


class TimelineStep(_Strict):
    """One step of a worker's cold-start timeline, seconds from the worker process's start."""

    name: str
    start_s: float | None
    end_s: float | None
    """None while the step is still running."""
    seconds: float | None
    bytes: int | None = None
    """Bytes the step moved (the ``weights`` step)."""


class TimelineStatus(_Strict):
    """A worker's cold-start timeline as its ``/readyz`` reports it (``functions.readiness``); steps overlap."""

    origin: str
    stages: list[TimelineStep]
    ready_s: float | None
    first_token_s: float | None
    total_s: float | None


class ColdStartStatus(_Strict):
    """One worker's cold start, seconds since spawn (None until reached)."""

    listening_s: float | None
    ready_s: float | None
    stages: dict[str, float]
    """First time each preload stage was seen by ``/readyz``, seconds since spawn."""
    preload_s: dict[str, float]
    """Duration of each preload stage as the worker measured it, seconds."""
    timeline: TimelineStatus | None = None
    """The worker's own timeline from process start; None until its ``/readyz`` reported one."""


class WorkerStatus(_Strict):
    """One worker process."""

    id: int
    kind: str
    """``reserved`` or ``on-demand``."""
    state: str
    pid: int
    port: int
    in_flight: int
    served: int
    age_s: float
    idle_s: float | None
    cold_start: ColdStartStatus
    failure: str | None
    log: str


class PoolCountersStatus(_Strict):
    """Cumulative counts since launch."""

    arrivals: int
    completed: int
    failed: int
    rejected_queue_full: int
    rejected_timeout: int
    cold_starts: int
    cold_start_failures: int
    cold_waits: int
    reaped: int
    worker_deaths: int


class PoolStatus(_Strict):
    """The worker pool."""

    uptime_s: float
    reserved_target: int
    quota: int
    """Most workers alive at once."""
    max_on_demand: int | None
    """Most on-demand workers the policy allows now; None before its first decision."""
    slots_per_worker: int
    """Requests one worker serves at once."""
    waiting: int
    busy_slots: int
    instance_seconds: float
    """Worker-seconds accumulated by every worker ever started (spawn to stop)."""
    counters: PoolCountersStatus
    workers: list[WorkerStatus]
    retired: list[WorkerStatus]
    """The most recently stopped workers."""
    log_dir: str

    def known_workers(self) -> list[WorkerStatus]:
        """Live and retired workers."""
        return [*self.workers, *self.retired]


class PolicyStatus(_Strict):
    """The scaling policy the autoscaler ticks."""

    name: str
    config: dict[str, Any]
    """``PolicyConfig.to_dict()``: what ``PolicyConfig.from_mapping`` reads back."""
    tick_s: float
    ticks: int
    observation: dict[str, Any] | None
    decision: dict[str, Any] | None
    state: Any
    """The policy's own carried state (JSON-ready)."""


class RuntimeStatus(_Strict):
    """The whole answer of ``GET /_llmfn/status``."""

    gateway: GatewayStatus
    pool: PoolStatus
    policy: PolicyStatus


def fetch_status(client: httpx.Client, root: str) -> RuntimeStatus | None:
    """The runtime's ``/_llmfn/status`` when ``root`` is ``llmfn dev``, else None (no such endpoint)."""
    try:
        response = client.get(f"{root}/_llmfn/status", timeout=10)
    except httpx.TransportError:
        return None
    return RuntimeStatus.model_validate_json(response.content) if response.status_code == 200 else None

"""What the simulator predicts for a load run against ``llmfn dev``, configured like the runtime.

The service model is calibrated on this machine from probe requests to a warm worker: a least-squares
fit of time to first token = overhead + prompt tokens / prefill rate, and of (end-to-end - TTFT) =
output tokens x decode seconds per token. ``scaling.service.ServiceModel`` has no constant term, so
the fixed per-request overhead (HTTP, tokenizer, chat template) is carried as its equivalent in
prefill tokens added to every simulated request. The cold start is the mean measured one; the
platform (slots, quota, keep-alive) and the policy (name and ``PolicyConfig``) are read from the
runtime's ``/_llmfn/status``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from llmfn.local.client import Completion
from llmfn.local.status import RuntimeStatus
from scaling.policies import PolicyConfig, make_policy
from scaling.providers import get_provider
from scaling.service import ServiceModel
from scaling.sim_requests import simulate_requests
from scaling.traces import Trace

PROBE_SHAPES: tuple[tuple[int, int], ...] = ((16, 8), (512, 8), (1024, 8), (16, 64), (256, 64), (16, 128))
"""(prompt tokens, output tokens) of the calibration probes: prefill and decode apart."""


@dataclass(frozen=True)
class Calibration:
    """The tiny model's measured speed on this machine.

    overhead_s: fixed time to first token of a request on a warm worker, seconds.
    prefill_tokens_per_s / decode_s_per_token: the ServiceModel's two rates.
    """

    overhead_s: float
    prefill_tokens_per_s: float
    decode_s_per_token: float

    def service_model(self) -> ServiceModel:
        return ServiceModel(
            prefill_tokens_per_s=self.prefill_tokens_per_s, decode_s_per_token=self.decode_s_per_token
        )

    @property
    def overhead_tokens(self) -> float:
        """The overhead as prefill tokens (what the simulated requests carry in addition)."""
        return self.overhead_s * self.prefill_tokens_per_s


def calibrate(probes: list[Completion]) -> Calibration:
    """Fit the service model from answered probes (needs >= 3 with distinct prompt sizes)."""
    rows = [
        (p.prompt_tokens, p.completion_tokens, p.ttft_s, p.e2e_s)
        for p in probes
        if p.error is None and p.ttft_s is not None and p.prompt_tokens and p.completion_tokens
    ]
    if len(rows) < 3 or len({r[0] for r in rows}) < 2:
        raise RuntimeError(
            f"calibration needs >= 3 answered probes with distinct prompt sizes, got {len(rows)}"
        )
    prompt, output, ttft, e2e = (np.array(col, dtype=float) for col in zip(*rows, strict=True))
    (overhead, per_prompt_token), *_ = np.linalg.lstsq(np.column_stack([np.ones_like(prompt), prompt]), ttft)
    decode_rows = output > 1  # the first token is part of the TTFT
    decode = float(np.sum((e2e - ttft)[decode_rows]) / np.sum(output[decode_rows] - 1))
    return Calibration(
        overhead_s=max(float(overhead), 0.0),
        prefill_tokens_per_s=1.0 / max(float(per_prompt_token), 1e-7),
        decode_s_per_token=max(decode, 1e-6),
    )


@dataclass(frozen=True)
class Prediction:
    """The simulator's figures for the replayed window (latencies in seconds)."""

    ttft_p50_s: float
    ttft_p99_s: float
    e2e_p50_s: float
    e2e_p99_s: float
    instance_seconds: float
    cold_starts: int
    cold_fraction: float
    cold_start_s: float


def mean_cold_start_s(status: RuntimeStatus, after_worker_id: int = 0) -> float | None:
    """Mean spawn-to-ready time, seconds, of the workers the runtime reports (live and retired) whose
    id is above ``after_worker_id`` (those started during a replay), else of all of them."""
    started = [(w.id, w.cold_start.ready_s) for w in status.pool.known_workers() if w.cold_start.ready_s]
    times = [ready_s for worker_id, ready_s in started if worker_id > after_worker_id]
    times = times or [ready_s for _, ready_s in started]
    return sum(times) / len(times) if times else None


def predict(
    arrivals_s: list[float],
    prompt_tokens: list[int],
    output_tokens: list[int],
    horizon_s: float,
    warm_reserved: int,
    status: RuntimeStatus,
    calibration: Calibration,
    cold_start_s: float,
) -> Prediction:
    """Simulate the replayed requests (actual token counts) on a platform configured like ``status``.

    warm_reserved: reserved workers already warm when the replay started; the simulator starts
    with as many warm reserved instances, and (as the pool does) a reserved worker the policy
    releases stays on as a warm on-demand worker until its idle timeout.
    """
    pool, gateway, policy_status = status.pool, status.gateway, status.policy
    arrival = np.asarray(arrivals_s, dtype=float)
    order = np.argsort(arrival, kind="stable")
    duration = math.ceil(horizon_s)
    trace = Trace(
        name="llmfn-load",
        second=np.floor(arrival[order]).astype(np.int64),
        count=np.ones(len(arrival), dtype=np.int64),
        input_tokens=np.asarray(prompt_tokens, dtype=float)[order] + calibration.overhead_tokens,
        output_tokens=np.asarray(output_tokens, dtype=float)[order],
        duration_s=duration,
        arrival_s=arrival[order],
    )
    provider = get_provider("scf").with_overrides(
        name="llmfn-dev",
        concurrency_per_instance=pool.slots_per_worker,
        cold_start_s=cold_start_s,
        keep_alive_s=gateway.idle_timeout_s,
        max_instances=pool.quota,
        released_stay_warm=True,
    )
    policy = make_policy(policy_status.name, PolicyConfig.from_mapping(policy_status.config))
    record = simulate_requests(
        trace, policy, provider, calibration.service_model(), warm_reserved=warm_reserved
    )
    usage = record.usage
    alive = np.asarray(usage.reserved_alive) + np.asarray(usage.on_demand_alive)
    return Prediction(
        ttft_p50_s=record.percentile_ttft(50),
        ttft_p99_s=record.percentile_ttft(99),
        e2e_p50_s=record.percentile_e2e(50),
        e2e_p99_s=record.percentile_e2e(99),
        instance_seconds=float(alive.sum()),
        cold_starts=int(usage.on_demand_starts),
        cold_fraction=record.cold_fraction(),
        cold_start_s=cold_start_s,
    )

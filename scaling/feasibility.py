"""What no policy can change: whether the SLO is reachable at all, and how far the trace's demand
exceeds the instance quota. The simulation report states both before any policy's figures, so an
SLO nothing can meet reads as one explained line, not as a column of "NO"s.

- **SLO feasibility**: the least P99 time to first token any capacity can give is the oracle's: each
  request's prefill alone (no queueing, no cold start). When that exceeds the SLO, the report
  gives the share of requests whose prefill alone is too long, the prefill rate that would meet
  the SLO, and the length-scaled SLO (TTFT <= a + b x input tokens) beside it.
- **Quota pressure**: the instances the trace asks for at its peak (ideal packing, every request
  served at once) against the quota, and for how many seconds the need is above it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from scaling.providers import Provider
from scaling.service import ServiceModel
from scaling.sim_result import weighted_percentile
from scaling.traces import Trace


@dataclass(frozen=True)
class SloFeasibility:
    """Whether P99 TTFT <= ``slo_s`` is reachable with unlimited, always-warm capacity.

    min_p99_ttft_s: the oracle's P99 TTFT (prefill alone), seconds.
    prefill_over_slo_share: share of requests whose prefill alone exceeds the SLO.
    p99_input_tokens: input tokens of the request at the P99 of prefill time.
    prefill_tokens_per_s_needed: prefill rate at which that request's prefill takes ``slo_s``.
    """

    slo_s: float
    min_p99_ttft_s: float
    prefill_over_slo_share: float
    p99_input_tokens: float
    prefill_tokens_per_s: float
    prefill_tokens_per_s_needed: float

    @property
    def feasible(self) -> bool:
        return self.min_p99_ttft_s <= self.slo_s

    def to_dict(self) -> dict[str, float | bool]:
        return {**asdict(self), "feasible": self.feasible}


def slo_feasibility(trace: Trace, service: ServiceModel, slo_s: float) -> SloFeasibility:
    """The SLO's feasibility on ``trace`` with ``service`` (see :class:`SloFeasibility`)."""
    weights = trace.count.astype(float)
    prefill = np.asarray(service.prefill_s(trace.input_tokens), dtype=float)
    p99 = weighted_percentile(prefill, weights, 99) if len(prefill) else 0.0
    over = float(weights[prefill > slo_s].sum() / weights.sum()) if weights.sum() else 0.0
    p99_tokens = p99 * service.prefill_tokens_per_s
    return SloFeasibility(
        slo_s=slo_s,
        min_p99_ttft_s=p99,
        prefill_over_slo_share=over,
        p99_input_tokens=p99_tokens,
        prefill_tokens_per_s=service.prefill_tokens_per_s,
        prefill_tokens_per_s_needed=p99_tokens / slo_s,
    )


def feasibility_line(f: SloFeasibility, per_1k_tokens_s: float) -> str | None:
    """One line when the SLO is infeasible (else None): why, and what would change it."""
    if f.feasible:
        return None
    return (
        f"SLO infeasible: no capacity meets P99 TTFT <= {f.slo_s:g} s: prefill alone takes "
        f"{f.min_p99_ttft_s:.2f} s at the P99 ({f.p99_input_tokens:,.0f} input tokens at "
        f"{f.prefill_tokens_per_s:,.0f} tok/s) and exceeds {f.slo_s:g} s for {f.prefill_over_slo_share:.2%} "
        f"of requests. It would take prefill >= {f.prefill_tokens_per_s_needed:,.0f} tok/s (a faster GPU, "
        f"tensor parallelism; chunked prefill only keeps long prompts from delaying others), or an SLO "
        f"that scales with the prompt: see 'len-SLO' (TTFT <= {f.slo_s:g} s + {per_1k_tokens_s:g} s per "
        f"1k input tokens) and 'goodput'."
    )


@dataclass(frozen=True)
class QuotaPressure:
    """The trace's demand against the instance quota.

    peak_instances: the most instances the trace needs at once (ideal packing, no queueing).
    quota: the provider's instance quota.
    seconds_over_quota: seconds in which the need exceeds the quota.
    """

    peak_instances: int
    quota: int
    seconds_over_quota: int

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def quota_pressure(busy_peak_per_s: np.ndarray, quota: int) -> QuotaPressure:
    """From the per-second peak busy instances of the ideal packing."""
    peak = int(busy_peak_per_s.max()) if len(busy_peak_per_s) else 0
    return QuotaPressure(peak, quota, int((busy_peak_per_s > quota).sum()))


def quota_line(q: QuotaPressure) -> str | None:
    """One line when the trace asks for more instances than the quota (else None)."""
    if q.seconds_over_quota == 0:
        return None
    return (
        f"demand above the quota: the trace needs up to {q.peak_instances:,} instances at once, the quota "
        f"is {q.quota:,}; over it for {q.seconds_over_quota:,} s. Requests queue there; a policy that "
        "leaves work queued at the trace's end has no cost ratio or saving printed (it did less work)."
    )


def no_wait_instance_seconds(start_s: np.ndarray, service_s: np.ndarray, weight: np.ndarray, c: int) -> float:
    """Least busy instance-seconds of serving every request the moment it arrives: the integral of
    ceil(n(t) / c) over time, n(t) being the requests in service (sweep over start and end times).

    The oracle divides the work by c as if every instance were always full; at low concurrency that
    needs requests to wait for company, which an SLO on time to first token forbids. With the
    service times the oracle counts (the untiered packing's batches), no dispatch bills less busy
    time without delaying requests; a dispatch that runs smaller batches (tiers) shortens the
    service times themselves and can go below it.
    """
    if len(start_s) == 0:
        return 0.0
    times = np.concatenate((start_s, start_s + service_s))
    steps = np.concatenate((weight, -weight))
    order = np.argsort(times, kind="stable")
    times, steps = times[order], steps[order]
    in_service = np.cumsum(steps)
    return float((np.ceil(np.maximum(in_service[:-1], 0) / c - 1e-9) * np.diff(times)).sum())


LMI_METRIC_PERIOD_S = 60
"""Seconds over which LMI's target tracking sees utilisation (CloudWatch's 1-minute period)."""


def price_floor_usd(
    busy_per_s: np.ndarray, provider: Provider, concurrency_per_s: np.ndarray | None = None
) -> float:
    """About the least any reserved / on-demand split can cost with the platform's packing, USD.

    ``busy_per_s``: busy instances in each second under the platform's packing with no cold starts
    or queueing. The k-th instance is busy in the seconds where at least k are; a perfect planner
    reserves it exactly when that is cheaper than buying its busy seconds on demand. Requests fees,
    cold starts, Lambda's 5-minute rounding and SCF's 10-second idle sampling are left out, so it is
    a lower bound up to the per-second sampling: a policy at it has nothing left to gain from better
    reservation.

    Lambda GPU (Managed Instances): the platform, not the policy, runs the environments above the
    floor, tracking its target utilisation; a floor can only add to them. The floor there is the
    instances that hold, each minute (the metric period), the environments target tracking wants for
    that minute's mean requests in service (``concurrency_per_s``) with perfect foresight: ceil(in
    service / (c x target)), packed ``environments_per_instance`` to an instance.
    """
    if len(busy_per_s) == 0:
        return 0.0
    p, mem, horizon = provider.prices, provider.memory_gb, len(busy_per_s)
    levels = np.ceil(np.asarray(busy_per_s, dtype=float) - 1e-9).astype(np.int64)
    peak = int(levels.max())
    seconds_at = np.bincount(np.maximum(levels, 0), minlength=peak + 1)
    busy_k = np.cumsum(seconds_at[::-1])[::-1][1:].astype(float)  # seconds with >= k busy, k = 1..peak
    if provider.billing == "fixed":
        return float(peak * horizon * p.server_per_hour / 3600)
    if provider.billing == "lambda-gpu":
        if provider.lmi is not None and concurrency_per_s is not None:
            slots = provider.concurrency_per_instance * provider.lmi.target_utilisation
            conc = np.asarray(concurrency_per_s, dtype=float)
            minutes = -(-len(conc) // LMI_METRIC_PERIOD_S)
            padded = np.zeros(minutes * LMI_METRIC_PERIOD_S)
            padded[: len(conc)] = conc
            tracked = np.ceil(padded.reshape(minutes, LMI_METRIC_PERIOD_S).mean(axis=1) / slots - 1e-9)
            return float(p.instances_for(tracked).sum() * LMI_METRIC_PERIOD_S * p.instance_per_s())
        # every environment-second alive is billed, and none starts for a request: at best the
        # k-th environment is alive exactly while it is busy
        return float(busy_k.sum() * p.environment_per_s())
    if provider.billing == "lambda":
        on_demand = busy_k * p.on_demand_per_gb_s * mem
        reserved = (horizon * p.provisioned_per_gb_s + busy_k * p.provisioned_duration_per_gb_s) * mem
    else:
        on_demand = busy_k * p.active_per_gb_s * mem
        reserved = (busy_k * p.active_per_gb_s + (horizon - busy_k) * p.idle_per_gb_s) * mem
    if not provider.on_demand:
        return float(reserved.sum())
    return float(np.minimum(on_demand, reserved).sum())

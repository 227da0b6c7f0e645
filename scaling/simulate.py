"""Replay a trace through the policies and price each one: the engine behind ``llmfn simulate``.

For each policy the report gives cost, savings against the fixed pool, cost / oracle with the gap
split (packing, idle reserved capacity, cold starts, other), P50/P95/P99 time to first token and
end-to-end latency, cold-start and rejected shares, utilisation and SLO attainment.

- The **fixed pool** is the smallest pool of reserved instances, with no on-demand bursts, whose
  P99 TTFT meets the SLO on this trace (bisection), so savings compare like with like.
- The **oracle** is the trace's total service work divided by per-instance concurrency, at the
  provider's busy price: perfect packing, no idle capacity, no cold starts; it obeys the quota the
  policies obey (work beyond it in a second is left out).
- On **Lambda GPU** (Managed Instances) each policy's reserved count is the floor and the platform's
  own scaling runs above it (``scaling.lmi``); requests finding every slot busy are throttled and
  counted (``throttled_share``), never queued.
- **Fidelity**: ``request`` (event simulation, per-request traces up to ~1 M requests) or
  ``timestep`` (1-second fluid model, any trace); ``auto`` picks request-level when it can.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.errors import ScalingError
from scaling.feasibility import (
    QuotaPressure,
    SloFeasibility,
    feasibility_line,
    no_wait_instance_seconds,
    price_floor_usd,
    quota_line,
    quota_pressure,
    slo_feasibility,
)
from scaling.forecasting import Profile, burst_rates_by_hour, forecast_profile
from scaling.lmi import initial_environments, on_platform
from scaling.plan import break_even_counts
from scaling.policies import ORACLE, POLICY_NAMES, PolicyConfig, make_policy, policy_config_for
from scaling.policies.baselines import CLOUD_TICK_S
from scaling.providers import Cost, Provider, cost, oracle_cost
from scaling.service import ServiceModel
from scaling.sim_defaults import SIM
from scaling.sim_requests import DISPATCHES, TIER_KEYS, simulate_requests
from scaling.sim_result import RunRecord, weighted_percentile
from scaling.sim_timestep import Demand, simulate_timestep
from scaling.traces import SECONDS_PER_DAY, Trace

FIDELITIES = ("auto", "request", "timestep")
REQUEST_LEVEL_MAX_REQUESTS = 1_000_000
LONG_TRACE_CONTROL_STEP_S = 10.0  # time-step fidelity on traces over a day: policies tick at least every 10 s
UNFINISHED_TOLERANCE = 0.001
"""Share of the trace's work a run may leave queued at the trace's end and still have its cost
compared (0.1 %). Even then the comparison adds that work at the oracle's price (the least it
could cost), so no saving ever comes from work not done."""
ProgressFn = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Settings:
    """What a simulation needs besides the trace and the policy names.

    slo_p99_s: the P99 time-to-first-token target, seconds (seed: 2 s).
    fidelity: ``auto``, ``request`` or ``timestep``.
    control_step_s: time-step fidelity only: seconds between policy decisions; ``None`` = each
        policy's own interval, raised to 10 s on traces longer than a day (speed).
    policy_config: overrides merged into the :class:`PolicyConfig` the simulator builds (JSON form).
    slo_per_1k_tokens_s: b of the length-scaled SLO TTFT <= slo_p99_s + b x input tokens / 1000.
    slo_tpot_s: time-per-output-token target of the goodput (DistServe: TTFT and TPOT both met).
    tier_bounds_tokens: tiered dispatch by expected output length (request-level fidelity only; see
        :func:`scaling.sim_requests.simulate_requests`); empty = none.
    dispatch: ``pack`` (the platform's) or ``fit`` (length-aware), request-level fidelity only.
    tier_by: what the tier bounds cut: ``output`` tokens or the complexity ``fingerprint`` score.
    """

    provider: Provider
    service: ServiceModel = field(default_factory=ServiceModel)
    slo_p99_s: float = SIM.slo_p99_s
    fidelity: str = SIM.fidelity
    control_step_s: float | None = None
    policy_config: Mapping[str, Any] = field(default_factory=dict)
    slo_per_1k_tokens_s: float = SIM.slo_per_1k_tokens_s
    slo_tpot_s: float = SIM.slo_tpot_s
    tier_bounds_tokens: tuple[float, ...] = ()
    dispatch: str = SIM.dispatch
    tier_by: str = "output"

    def __post_init__(self) -> None:
        if self.fidelity not in FIDELITIES:
            raise ScalingError(f"fidelity must be one of {', '.join(FIDELITIES)}, got {self.fidelity!r}")
        if not (self.slo_p99_s > 0 and math.isfinite(self.slo_p99_s)):
            raise ScalingError(
                f"must be a positive number of seconds, got {self.slo_p99_s!r}",
                field="slo_p99_s",
                value=self.slo_p99_s,
            )
        if not (0 <= self.slo_per_1k_tokens_s <= 3600):
            raise ScalingError(
                f"must be in [0, 3600] seconds, got {self.slo_per_1k_tokens_s!r}",
                field="slo_per_1k_tokens_s",
                value=self.slo_per_1k_tokens_s,
            )
        if self.tier_by not in TIER_KEYS:
            raise ScalingError(f"tier_by must be one of {', '.join(TIER_KEYS)}, got {self.tier_by!r}")
        if self.dispatch not in DISPATCHES:
            raise ScalingError(
                f"must be one of {', '.join(DISPATCHES)}, got {self.dispatch!r}",
                field="dispatch",
                value=self.dispatch,
                allowed=", ".join(DISPATCHES),
            )
        if not (0 < self.slo_tpot_s <= 3600):
            raise ScalingError(
                f"must be in (0, 3600] seconds, got {self.slo_tpot_s!r}",
                field="slo_tpot_s",
                value=self.slo_tpot_s,
            )

    def scaled_ttft_target_s(self, input_tokens: np.ndarray) -> np.ndarray:
        """The length-scaled TTFT target of each request: a + b x input tokens / 1000, seconds."""
        return self.slo_p99_s + self.slo_per_1k_tokens_s * np.asarray(input_tokens, dtype=float) / 1000


@dataclass
class PolicyReport:
    """One policy's figures (costs in USD, latencies in seconds, shares in [0, 1])."""

    name: str
    cost: Cost | None
    total_usd: float
    oracle_usd: float
    ttft_s: tuple[float, float, float]
    e2e_s: tuple[float, float, float]
    cold_share: float
    rejected_share: float
    utilisation: float
    slo_attainment: float
    meets_slo: bool
    gap_usd: dict[str, float]
    savings_vs_fixed: float | None = None
    fixed_instances: int | None = None
    wall_s: float = 0.0
    record: RunRecord | None = field(default=None, repr=False)
    scaled_slo_attainment: float = 1.0
    goodput: float = 1.0
    unfinished_requests: float = 0.0
    unfinished_work_s: float = 0.0
    backlog_peak: float = 0.0
    unfinished_usd: float = 0.0
    throttled_share: float = 0.0

    @property
    def comparable(self) -> bool:
        """Whether the run did (nearly) all the trace's work by its end, so its cost may be compared."""
        work = self.record.work_s if self.record is not None else 0.0
        return self.unfinished_work_s <= UNFINISHED_TOLERANCE * work + 1e-6

    @property
    def completed_usd(self) -> float:
        """Cost with the work left queued at the end added at the oracle's price (USD)."""
        return self.total_usd + self.unfinished_usd

    @property
    def cost_over_oracle(self) -> float:
        """Cost of all the work / oracle; NaN when the run left work undone (it did less work)."""
        if not self.comparable or self.oracle_usd <= 0:
            return math.nan
        return self.completed_usd / self.oracle_usd

    def to_dict(self) -> dict[str, Any]:
        out = {
            "policy": self.name,
            "cost_usd": self.total_usd,
            "oracle_usd": self.oracle_usd,
            "cost_over_oracle": self.cost_over_oracle,
            "savings_vs_fixed": self.savings_vs_fixed,
            "gap_usd": self.gap_usd,
            "cost_components_usd": None if self.cost is None else {**self.cost.__dict__},
            "ttft_p50_p95_p99_s": list(self.ttft_s),
            "e2e_p50_p95_p99_s": list(self.e2e_s),
            "cold_start_share": self.cold_share,
            "rejected_share": self.rejected_share,
            "throttled_share": self.throttled_share,
            "utilisation": self.utilisation,
            "slo_attainment": self.slo_attainment,
            "meets_slo": self.meets_slo,
            "scaled_slo_attainment": self.scaled_slo_attainment,
            "goodput": self.goodput,
            "unfinished_requests": self.unfinished_requests,
            "unfinished_work_s": self.unfinished_work_s,
            "backlog_peak_requests": self.backlog_peak,
            "cost_comparable": self.comparable,
            "cost_with_unfinished_work_usd": self.completed_usd,
            "wall_s": self.wall_s,
        }
        if self.fixed_instances is not None:
            out["fixed_instances"] = self.fixed_instances
        return {k: _json_number(v) for k, v in out.items()}


def _json_number(value: Any) -> Any:
    """numpy floats as floats, NaN as None (JSON has no NaN)."""
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    return value


@dataclass
class Report:
    """A whole simulation: one :class:`PolicyReport` per policy, in the order asked."""

    trace: str
    requests: int
    duration_s: int
    fidelity: str
    provider: str
    slo_p99_s: float
    profile: Profile
    policies: list[PolicyReport]
    wall_s: float
    feasibility: SloFeasibility | None = None
    quota: QuotaPressure | None = None
    slo_per_1k_tokens_s: float = SIM.slo_per_1k_tokens_s
    slo_tpot_s: float = SIM.slo_tpot_s
    oracle_usd: float = 0.0
    no_wait_floor_usd: float = 0.0
    price_floor_usd: float = 0.0
    tier_bounds_tokens: tuple[float, ...] = ()
    tier_by: str = "output"

    def findings(self) -> list[str]:
        """One line per thing no policy can change (an infeasible SLO, demand above the quota) and per
        policy that left work undone at the trace's end."""
        lines = []
        if self.feasibility is not None:
            lines.append(feasibility_line(self.feasibility, self.slo_per_1k_tokens_s))
        if self.quota is not None:
            lines.append(quota_line(self.quota))
        for p in self.policies:
            if not p.comparable:
                lines.append(
                    f"{p.name}: backlog peak {p.backlog_peak:,.0f} requests; {p.unfinished_requests:,.0f} "
                    f"requests ({p.unfinished_work_s:,.0f} slot-s of work) still queued at the trace's end: "
                    "its cost covers less work, so no ratio or saving is shown"
                )
        return [line for line in lines if line]

    def to_dict(self) -> dict[str, Any]:
        return {
            "findings": self.findings(),
            "slo_feasibility": None if self.feasibility is None else self.feasibility.to_dict(),
            "quota": None if self.quota is None else self.quota.to_dict(),
            "scaled_slo": {"base_s": self.slo_p99_s, "per_1k_input_tokens_s": self.slo_per_1k_tokens_s},
            "slo_tpot_s": self.slo_tpot_s,
            "oracle_usd": self.oracle_usd,
            "no_wait_floor_usd": self.no_wait_floor_usd,
            "price_floor_usd": self.price_floor_usd,
            "tier_bounds_tokens": list(self.tier_bounds_tokens),
            "tier_by": self.tier_by,
            "trace": self.trace,
            "requests": self.requests,
            "duration_s": self.duration_s,
            "fidelity": self.fidelity,
            "provider": self.provider,
            "slo_p99_s": self.slo_p99_s,
            "profile": {"method": self.profile.method, "rates_by_hour": list(self.profile.rates_by_hour)},
            "policies": [p.to_dict() for p in self.policies],
            "wall_s": self.wall_s,
        }


def parse_policies(spec: str) -> list[str]:
    """``all`` or comma-separated names -> the list of policy names (validated)."""
    names = list(POLICY_NAMES) if spec.strip() == "all" else [n.strip() for n in spec.split(",") if n.strip()]
    bad = [n for n in names if n not in POLICY_NAMES]
    if bad or not names:
        raise ScalingError(
            f": unknown policy {bad or spec!r}; use 'all' or names from: {', '.join(POLICY_NAMES)}",
            field="policy",
            value=spec,
        )
    return names


def choose_fidelity(trace: Trace, fidelity: str) -> str:
    """Resolve ``auto``; refuse request-level on a trace without individual requests."""
    if fidelity == "request" and not trace.per_request:
        raise ScalingError(
            f"request needs a per-request trace; {trace.name!r} gives rates: use timestep",
            field="fidelity",
            value=fidelity,
        )
    if fidelity != "auto":
        return fidelity
    return "request" if trace.per_request and trace.requests <= REQUEST_LEVEL_MAX_REQUESTS else "timestep"


class _Runner:
    """Runs one policy on the trace with the chosen fidelity, sharing the trace's demand."""

    def __init__(self, trace: Trace, settings: Settings, fidelity: str, progress: ProgressFn | None) -> None:
        self.trace, self.settings, self.fidelity, self.progress = trace, settings, fidelity, progress
        self.provider = settings.provider
        self.demand = Demand(trace, settings.service, self.provider.concurrency_per_instance)
        self.profile = forecast_profile(trace)

    def break_even_by_hour(self) -> list[int]:
        """Instances per hour of day whose measured busy share passes the provider's break-even."""
        seconds = np.arange(len(self.demand.busy), dtype=float) + self.trace.start_of_day_s
        hours = (seconds // 3600).astype(np.int64) % 24
        return break_even_counts(self.demand.busy, hours, self.provider.reserved_break_even())

    def policy_config(self, fixed_instances: int = 1) -> PolicyConfig:
        mean_service_s = self.demand.work_s / max(self.trace.requests, 1)
        break_even = self.provider.reserved_break_even()
        lmi = self.provider.lmi is not None
        return policy_config_for(
            concurrency_per_instance=self.provider.concurrency_per_instance,
            cold_start_s=self.provider.cold_start_s,
            max_reserved=self.provider.max_environments(),
            fixed_instances=fixed_instances,
            rates_by_hour=self.profile.rates_by_hour,
            p95_latency_s=mean_service_s,
            headroom=0.0,
            min_utilisation=break_even,
            lmi_floor=True if lmi else None,
            burst_rates_by_hour=burst_rates_by_hour(self.trace) if lmi else None,
            break_even_by_hour=self.break_even_by_hour() if 0 < break_even < 1 else None,
            overrides=self.settings.policy_config,
        )

    def run(self, name: str, config: PolicyConfig, constant: bool = False) -> RunRecord:
        # a running deployment: a published LMI version already has its environments
        first_tick = self.demand.concurrency[: round(CLOUD_TICK_S)]
        warm = initial_environments(self.provider, float(first_tick.mean()) if len(first_tick) else 0.0)
        policy = on_platform(make_policy(name, config), self.provider, warm)
        if self.fidelity == "request":
            return simulate_requests(
                self.trace,
                policy,
                self.provider,
                self.settings.service,
                warm_reserved=warm,
                tier_bounds_tokens=self.settings.tier_bounds_tokens,
                dispatch=self.settings.dispatch,
                tier_by=self.settings.tier_by,
            )
        if self.settings.tier_bounds_tokens or self.settings.dispatch != "pack":
            raise ScalingError(
                "and dispatch 'fit' need the request-level fidelity (a per-request trace)",
                field="tier_bounds_tokens",
            )
        step = self.settings.control_step_s
        if constant and self.provider.lmi is None:  # on LMI the platform's scaling is not constant
            step = float(self.trace.duration_s)
        elif step is None and self.trace.duration_s > SECONDS_PER_DAY:
            step = max(policy.interval_s, LONG_TRACE_CONTROL_STEP_S)
        total = self.trace.duration_s
        on_step = (lambda done: self.progress(name, done, total)) if self.progress else None
        return simulate_timestep(
            self.trace,
            policy,
            self.provider,
            self.settings.service,
            control_step_s=step,
            on_step=on_step,
            demand=self.demand,
            warm_reserved=warm,
        )

    def smallest_fixed_pool(self) -> int:
        """Bisection for the smallest fixed pool whose P99 TTFT meets the SLO."""
        slo = self.settings.slo_p99_s
        hi = max(1, min(int(self.demand.busy.max()), self.provider.max_environments()))
        lo = 1

        def meets(n: int) -> bool:
            record = self.run("fixed", self.policy_config(n), constant=True)
            return record.percentile_ttft(99) <= slo

        if not meets(hi):
            return hi
        while lo < hi:
            mid = (lo + hi) // 2
            if meets(mid):
                hi = mid
            else:
                lo = mid + 1
        return hi


def _goodput(
    settings: Settings, ttft: np.ndarray, e2e: np.ndarray, tokens_in: np.ndarray, tokens_out: np.ndarray
):
    """(share within the length-scaled TTFT target, share within it and the TPOT target) as bool masks."""
    scaled_ok = ttft <= settings.scaled_ttft_target_s(tokens_in) + 1e-12
    tpot = (e2e - ttft) / np.maximum(np.asarray(tokens_out, dtype=float) - 1, 1)
    return scaled_ok, scaled_ok & (tpot <= settings.slo_tpot_s + 1e-12)


def _report(name: str, record: RunRecord, settings: Settings, oracle: float, wall_s: float) -> PolicyReport:
    """Figures of one run; ``oracle`` is the trace's lower bound (the same for every policy)."""
    provider, slo_s = settings.provider, settings.slo_p99_s
    priced = cost(record.usage, provider)
    usage = record.usage
    busy_s = float(usage.reserved_busy.sum() + usage.on_demand_busy.sum())
    alive_s = float(usage.reserved_alive.sum() + usage.on_demand_alive.sum())
    packing = (
        max(0.0, busy_s - record.work_s / provider.concurrency_per_instance)
        * provider.busy_price_per_instance_s()
    )
    gap = {
        "packing": packing,
        "idle_reserved": priced.reserved_idle,
        "cold_starts": priced.init,
        "other": priced.total - oracle - packing - priced.reserved_idle - priced.init,
    }
    p99 = record.percentile_ttft(99)
    assert record.input_tokens is not None and record.output_tokens is not None
    scaled_ok, good = _goodput(
        settings, record.ttft_s, record.e2e_s, record.input_tokens, record.output_tokens
    )
    return PolicyReport(
        name=name,
        cost=priced,
        total_usd=priced.total,
        oracle_usd=oracle,
        ttft_s=(record.percentile_ttft(50), record.percentile_ttft(95), p99),
        e2e_s=(record.percentile_e2e(50), record.percentile_e2e(95), record.percentile_e2e(99)),
        cold_share=record.cold_fraction(),
        rejected_share=record.rejected / record.offered if record.offered else 0.0,
        utilisation=busy_s / alive_s if alive_s else 0.0,
        slo_attainment=record.slo_attainment(slo_s) * record.answered_share(),
        meets_slo=p99 <= slo_s,
        gap_usd=gap,
        wall_s=wall_s,
        record=record,
        scaled_slo_attainment=record.share_within(scaled_ok) * record.answered_share(),
        goodput=record.share_within(good) * record.answered_share(),  # a throttled request is no good
        unfinished_requests=record.unfinished_requests,
        unfinished_work_s=record.unfinished_work_s,
        backlog_peak=record.backlog_peak,
        unfinished_usd=oracle_cost(record.unfinished_work_s, provider),
        throttled_share=record.throttled_share,
    )


def _oracle_report(runner: _Runner, settings: Settings) -> PolicyReport:
    slo_s = settings.slo_p99_s
    d = runner.demand
    t = runner.trace
    scaled_ok, good = _goodput(settings, d.prefill_s, d.service_s, t.input_tokens, t.output_tokens)
    weights = runner.trace.count.astype(float)
    oracle = oracle_cost(d.work_s, runner.provider, d.concurrency)
    pct = lambda values, q: weighted_percentile(values, weights, q)  # noqa: E731
    ttft = (pct(d.prefill_s, 50), pct(d.prefill_s, 95), pct(d.prefill_s, 99))
    return PolicyReport(
        name=ORACLE,
        cost=None,
        total_usd=oracle,
        oracle_usd=oracle,
        ttft_s=ttft,
        e2e_s=(pct(d.service_s, 50), pct(d.service_s, 95), pct(d.service_s, 99)),
        cold_share=0.0,
        rejected_share=0.0,
        utilisation=1.0,
        slo_attainment=float(weights[d.prefill_s <= slo_s].sum() / weights.sum()) if weights.sum() else 1.0,
        meets_slo=ttft[2] <= slo_s,
        gap_usd={"packing": 0.0, "idle_reserved": 0.0, "cold_starts": 0.0, "other": 0.0},
        scaled_slo_attainment=float(weights[scaled_ok].sum() / weights.sum()) if weights.sum() else 1.0,
        goodput=float(weights[good].sum() / weights.sum()) if weights.sum() else 1.0,
    )


def simulate(
    trace: Trace, policies: Sequence[str], settings: Settings, progress: ProgressFn | None = None
) -> Report:
    """Run every policy in ``policies`` (names from ``POLICY_NAMES``) on ``trace``."""
    started = time.perf_counter()
    if trace.requests == 0:
        raise ScalingError(
            f"trace {trace.name!r} has no requests (every window has rate 0): nothing to simulate"
        )
    fidelity = choose_fidelity(trace, settings.fidelity)
    runner = _Runner(trace, settings, fidelity, progress)
    fixed_n = runner.smallest_fixed_pool()
    oracle = oracle_cost(runner.demand.work_s, settings.provider, runner.demand.concurrency)
    reports: list[PolicyReport] = []
    for name in policies:
        t0 = time.perf_counter()
        if name == ORACLE:
            reports.append(_oracle_report(runner, settings))
            continue
        record = runner.run(name, runner.policy_config(fixed_n), constant=name == "fixed")
        report = _report(name, record, settings, oracle, time.perf_counter() - t0)
        if name == "fixed":
            report.fixed_instances = fixed_n
        reports.append(report)
    fixed = next((r for r in reports if r.name == "fixed"), None)
    if fixed is None:
        fixed_record = runner.run("fixed", runner.policy_config(fixed_n), constant=True)
        fixed = _report("fixed", fixed_record, settings, oracle, 0.0)
    for r in reports:  # savings only between runs that did all the work
        both_done = r.comparable and fixed.comparable
        r.savings_vs_fixed = (
            1 - r.completed_usd / fixed.completed_usd if both_done and fixed.completed_usd > 0 else None
        )
    return Report(
        trace=trace.name,
        requests=trace.requests,
        duration_s=trace.duration_s,
        fidelity=fidelity,
        provider=settings.provider.name,
        slo_p99_s=settings.slo_p99_s,
        profile=runner.profile,
        policies=reports,
        wall_s=time.perf_counter() - started,
        feasibility=slo_feasibility(trace, settings.service, settings.slo_p99_s),
        quota=quota_pressure(runner.demand.busy_peak, settings.provider.max_environments()),
        slo_per_1k_tokens_s=settings.slo_per_1k_tokens_s,
        slo_tpot_s=settings.slo_tpot_s,
        oracle_usd=oracle,
        no_wait_floor_usd=no_wait_instance_seconds(
            runner.demand.start,
            runner.demand.service_s,
            trace.count.astype(float),
            settings.provider.concurrency_per_instance,
        )
        * settings.provider.busy_price_per_instance_s(),
        price_floor_usd=price_floor_usd(runner.demand.busy, settings.provider, runner.demand.concurrency),
        tier_bounds_tokens=settings.tier_bounds_tokens,
        tier_by=settings.tier_by,
    )

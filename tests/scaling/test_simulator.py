"""The simulators: Little's law, determinism, the two fidelities against each other, the fixed-pool
search, the oracle as a lower bound, admission accounting."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from scaling.policies import Decision, Observation, PolicyConfig, State, make_policy
from scaling.providers import cost, get_provider
from scaling.service import ServiceModel
from scaling.sim_requests import simulate_requests
from scaling.sim_timestep import simulate_timestep
from scaling.simulate import Settings, _Runner, parse_policies, simulate
from scaling.traces import diurnal_trace, poisson_trace, read_trace

SCF = get_provider("scf")


def test_littles_law_holds_in_the_event_simulation() -> None:
    """Mean number in the system (integrated on the simulator's clock) = rate x mean time in system."""
    trace = poisson_trace(4.0, 20_000, seed=7, tokens_in=400, tokens_out=40)
    # a fixed pool near saturation, so the time in system includes real queueing
    config = PolicyConfig(concurrency_per_instance=SCF.concurrency_per_instance, fixed_instances=2)
    record = simulate_requests(trace, make_policy("fixed", config), SCF, ServiceModel())
    assert record.in_system_area_s is not None
    mean_in_system = record.in_system_area_s / trace.duration_s
    rate = record.served / trace.duration_s
    mean_time = float(np.average(record.e2e_s, weights=record.weights))
    assert record.percentile_ttft(99) > 2 * record.percentile_ttft(50)  # queueing is present
    assert mean_in_system == pytest.approx(rate * mean_time, rel=0.02)


def test_littles_law_in_the_time_step_demand() -> None:
    trace = poisson_trace(4.0, 20_000, seed=7, tokens_in=400, tokens_out=40)
    record = simulate_timestep(trace, make_policy("on-demand", PolicyConfig()), SCF, ServiceModel())
    mean_concurrency = record.usage.on_demand_busy.sum()  # instance-seconds, not requests: check work instead
    assert mean_concurrency > 0
    rate = trace.requests / trace.duration_s
    mean_service = record.work_s / trace.requests
    from scaling.sim_timestep import Demand

    demand = Demand(trace, ServiceModel(), SCF.concurrency_per_instance)
    assert demand.concurrency.mean() == pytest.approx(rate * mean_service, rel=0.02)


def test_same_seed_same_result() -> None:
    def run(seed: int) -> dict:
        trace = diurnal_trace(1.0, days=0.25, seed=seed)
        report = simulate(trace, ["on-demand", "hybrid", "oracle"], Settings(provider=SCF))
        return {p.name: (p.total_usd, p.ttft_s) for p in report.policies}

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_oracle_is_a_lower_bound_and_fixed_pool_is_smallest() -> None:
    trace = poisson_trace(3.0, 1800, seed=2)
    report = simulate(trace, parse_policies("all"), Settings(provider=SCF, slo_p99_s=2.0))
    by_name = {p.name: p for p in report.policies}
    oracle = by_name["oracle"].total_usd
    assert all(p.total_usd >= oracle * 0.999 for p in report.policies)
    fixed = by_name["fixed"]
    assert fixed.meets_slo and fixed.savings_vs_fixed == 0
    runner = _Runner(trace, Settings(provider=SCF), report.fidelity, None)
    smaller = runner.run("fixed", runner.policy_config((fixed.fixed_instances or 1) - 1), constant=True)
    assert (fixed.fixed_instances or 0) == 1 or smaller.percentile_ttft(99) > 2.0
    gap = by_name["hybrid"].gap_usd
    assert sum(gap.values()) == pytest.approx(by_name["hybrid"].total_usd - oracle)


@dataclass(frozen=True)
class _Admit:
    """A test policy: one reserved instance, admission at 1 req/s."""

    name: str = "admit"
    interval_s: float = 60.0

    def initial_state(self) -> State:
        return {}

    def decide(self, obs: Observation, state: State) -> tuple[Decision, State]:
        return Decision(reserved=1, admission_rps=1.0), {}


def test_rejected_requests_are_counted() -> None:
    trace = poisson_trace(5.0, 600, seed=1)
    record = simulate_requests(trace, _Admit(), SCF, ServiceModel())
    assert record.rejected + record.served == trace.requests
    assert record.rejected == pytest.approx(trace.requests - 600, rel=0.05)  # ~1 admitted per second


ALL = ("fixed", "on-demand", "reactive", "target-tracking", "kpa", "hybrid")
# (provider, trace) -> (policies whose cost agrees within 5 %, whose P99 TTFT agrees within 10 %);
# the exceptions and their reasons are in scaling/README.md ("Known limits of the time-step fidelity")
AGREEING = {
    ("scf", "azure_llm_2023_conv"): (ALL, ("on-demand", "reactive", "target-tracking", "hybrid")),
    ("scf", "azure_llm_2023_code"): (
        ("fixed", "on-demand", "reactive", "target-tracking", "hybrid"),
        ("hybrid",),
    ),
    ("lambda", "azure_llm_2023_conv"): (ALL, ALL),
    ("lambda", "azure_llm_2023_code"): (
        ("fixed", "on-demand", "reactive", "target-tracking", "kpa", "hybrid"),
        ("fixed", "on-demand", "reactive", "target-tracking", "hybrid"),
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("provider_name, trace_name", sorted(AGREEING))
def test_fidelities_agree_on_the_azure_traces(traces_dir: Path, provider_name: str, trace_name: str) -> None:
    provider = get_provider(provider_name)
    trace = read_trace(traces_dir / f"{trace_name}.csv")
    settings = Settings(provider=provider)
    exact = _Runner(trace, settings, "request", None)
    fluid = _Runner(trace, settings, "timestep", None)
    n = exact.smallest_fixed_pool()
    same_cost, same_p99 = AGREEING[(provider_name, trace_name)]
    for name in sorted(set(same_cost) | set(same_p99)):
        a = exact.run(name, exact.policy_config(n))
        b = fluid.run(name, fluid.policy_config(n))
        if name in same_cost:
            assert cost(b.usage, provider).total == pytest.approx(cost(a.usage, provider).total, rel=0.05), (
                name
            )
        if name in same_p99:
            assert b.percentile_ttft(99) == pytest.approx(a.percentile_ttft(99), rel=0.10), name


def test_warm_reserved_at_start_and_released_instances_staying_warm() -> None:
    """A running deployment (warm_reserved) answers its first request warm; when the policy releases
    that capacity, the instance stops at once unless the platform keeps it warm (``llmfn dev``)."""
    trace = poisson_trace(0.5, 120, seed=3, tokens_in=100, tokens_out=10)
    fixed = make_policy("fixed", PolicyConfig(concurrency_per_instance=8, fixed_instances=1))
    on_demand = make_policy("on-demand", PolicyConfig(concurrency_per_instance=8))
    service = ServiceModel()

    # the pool's own start at t = 0 delays the first request by most of a cold start; a warm one does not
    assert simulate_requests(trace, fixed, SCF, service).percentile_ttft(100) > SCF.cold_start_s / 2
    assert simulate_requests(trace, fixed, SCF, service, warm_reserved=1).percentile_ttft(100) < 0.5

    released = simulate_requests(trace, on_demand, SCF, service, warm_reserved=1)
    assert released.cold_fraction() > 0 and released.usage.on_demand_starts == 1
    kept = simulate_requests(
        trace, on_demand, SCF.with_overrides(released_stay_warm=True), service, warm_reserved=1
    )
    assert kept.cold_fraction() == 0 and kept.usage.on_demand_starts == 0
    assert kept.usage.reserved_alive.sum() == 0 and kept.usage.on_demand_alive.sum() == trace.duration_s

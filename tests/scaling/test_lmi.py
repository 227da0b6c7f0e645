"""Lambda GPU on Managed Instances (LMI), as the simulators replay it: the platform's own scaling
above the policy's floor (target tracking, growth bounded by one doubling per five minutes, gradual
scale-down, minutes from zero), throttling instead of queueing, per-instance billing with
environments packed onto instances, the LMI floor rule, and no credit for pre-warm invokes.

Each rule's source is in ``scaling.profile``'s table (``llmfn simulate --show-profile``)."""

from __future__ import annotations

import numpy as np
import pytest

from scaling.lmi import LmiPlatform, next_environments, on_platform
from scaling.plan import ReservedRule, break_even_counts, lmi_floor_schedule, lmi_floor_terms
from scaling.policies import Decision, Observation, PolicyConfig, make_policy
from scaling.providers import (
    LmiScaling,
    Prices,
    Usage,
    cost,
    environments_per_instance,
    floor_cost_per_day,
    get_provider,
    oracle_cost,
)
from scaling.service import ServiceModel
from scaling.sim_requests import simulate_requests
from scaling.sim_timestep import simulate_timestep
from scaling.simulate import Settings, simulate
from scaling.traces import Trace

GPU = get_provider("lambda-gpu")
SERVICE = ServiceModel()
INSTANCE_HOUR = 0.8048 * 1.15  # g6.xlarge on-demand + the 15 % management fee, USD


def _trace(rates: np.ndarray, start_s: float = 0.0) -> Trace:
    """Evenly spaced arrivals at ``rates[s]`` requests in second s; 512 tokens in, 64 out."""
    counts = np.asarray(rates, dtype=int)
    second = np.repeat(np.arange(len(counts)), counts)
    offset = np.concatenate([np.arange(n) / max(n, 1) for n in counts]) if len(second) else np.zeros(0)
    arrival = second + offset
    n = len(arrival)
    return Trace(
        name="synthetic",
        second=second.astype(np.int64),
        count=np.ones(n, dtype=np.int64),
        input_tokens=np.full(n, 512.0),
        output_tokens=np.full(n, 64.0),
        duration_s=len(counts),
        start_of_day_s=start_s,
        arrival_s=arrival.astype(float),
    )


def _run(trace: Trace, provider, floor: int, environments: int, fidelity: str = "request"):
    config = PolicyConfig(concurrency_per_instance=8, fixed_instances=floor, max_reserved=1000)
    policy = on_platform(make_policy("fixed", config), provider, environments)
    if fidelity == "request":
        return simulate_requests(trace, policy, provider, SERVICE, warm_reserved=environments)
    return simulate_timestep(trace, policy, provider, SERVICE, warm_reserved=environments)


def _steady_environments(rate: int, provider) -> int:
    """More environments than target tracking settles at for ``rate`` req/s (mean in service / (c x
    target) at a full batch, doubled); the first ten minutes bring them down to it gradually."""
    in_service = rate * float(SERVICE.service_s(512, 64, 8))
    return 2 * int(np.ceil(in_service / (8 * provider.lmi.target_utilisation)))


@pytest.mark.parametrize("fidelity", ["request", "timestep"])
def test_a_step_that_doubles_in_one_minute_is_partly_throttled_one_that_doubles_in_ten_is_not(
    fidelity: str,
) -> None:
    """'If your traffic more than doubles within 5 minutes, you may see throttles' (LMI scaling page).
    The default 40 % target leaves room for one doubling at once ('designed to leave headroom for
    traffic to double', GPU scaling page), so the step is to the CDK example's 60 % target."""
    provider = GPU.with_overrides(lmi=LmiScaling(target_utilisation=0.6))
    base = 20
    start = _steady_environments(base, provider)
    step = np.concatenate([np.full(900, base), np.full(1200, 2 * base)])
    stepped = _run(_trace(step), provider, 0, start, fidelity)
    assert stepped.throttled > 0  # partly throttled...
    assert stepped.throttled < 0.2 * 2 * base * 1200  # ...until capacity catches up
    assert stepped.usage.reserved_alive[-1] > stepped.usage.reserved_alive[0]  # the platform scaled out
    # the same growth (and more: x4) spread so that it doubles every ten minutes
    ramp = np.concatenate(
        [np.full(900, base), np.round(base * 2 ** (np.arange(1200) / 600)), np.full(300, 4 * base)]
    )
    ramped = _run(_trace(ramp), provider, 0, start, fidelity)
    assert ramped.throttled == 0
    # at the default 40 % target the headroom takes one doubling at once, but not four times the traffic
    default_start = _steady_environments(base, GPU)
    assert _run(_trace(step), GPU, 0, default_start, fidelity).throttled == 0
    quadruple = np.concatenate([np.full(900, base), np.full(1200, 4 * base)])
    assert _run(_trace(quadruple), GPU, 0, default_start, fidelity).throttled > 0


def test_a_floor_of_zero_after_an_idle_hour_delays_service_by_the_from_zero_time() -> None:
    """'scaling from zero can take several minutes while Lambda provisions new GPU instances, and
    requests might fail' (GPU scaling page): with no floor, the first request after an idle hour is
    served from_zero_s later; everything before is throttled. A floor of one serves at once."""
    idle_s, busy_s = 3600, 900
    rates = np.concatenate([np.full(60, 2), np.zeros(idle_s), np.full(busy_s, 2)])
    trace = _trace(rates)
    back = 60 + idle_s  # traffic returns
    no_floor = _run(trace, GPU, 0, 1)
    assert no_floor.usage.reserved_alive[back - 1] == 0  # the platform went to zero in the idle hour
    first_served = no_floor.second[no_floor.second >= back].min()
    assert first_served - back == pytest.approx(GPU.lmi.from_zero_s, abs=60)  # one metric period
    assert no_floor.throttled == pytest.approx(2 * (first_served - back), abs=2)
    floor_one = _run(trace, GPU, 1, 1)
    assert floor_one.second[floor_one.second >= back].min() == back
    assert floor_one.throttled == 0


def test_the_platform_steps_bounded_up_gradual_down_floor_and_ceiling() -> None:
    s = LmiScaling()
    # target tracking: 64 in service at 8 per environment and 40 % -> 20 wanted; growth 2^(60/300)
    assert next_environments(10, 0, 64.0, 60, 8, 100, s) == 12
    assert next_environments(10, 0, 64.0, 300, 8, 100, s) == 20  # one doubling per five minutes
    assert next_environments(10, 15, 0.0, 60, 8, 100, s) == 15  # the floor applies at once
    assert next_environments(10, 0, 64.0, 300, 8, 16, s) == 16  # the ceiling (maxInstances)
    assert next_environments(20, 0, 0.0, 60, 8, 100, s) == 18  # gradual: 10 % of the 19 above 1 per min
    assert next_environments(1, 0, 0.0, 60, 8, 100, s, keep_one=False) == 0


def test_pre_warm_invokes_add_no_capacity_on_managed_instances() -> None:
    """LMI 'does not scale when invocations arrive' (issue 20, item 2): a pre-warm is dropped; the
    hybrid raises the floor to its forecast instead."""

    class PrewarmOnly:
        name = "prewarm-only"
        interval_s = 60.0

        def initial_state(self):
            return {}

        def decide(self, obs, state):
            return Decision(reserved=0, prewarm=5), state

    platform = LmiPlatform(PrewarmOnly(), GPU.lmi, 8, 100, 60.0, 1)
    obs = Observation(
        t_s=0,
        interval_s=60,
        hour_of_day=0,
        arrival_rate_rps=0,
        in_flight=0,
        reserved_instances=1,
        on_demand_instances=0,
    )
    decision, _ = platform.decide(obs, platform.initial_state())
    assert decision.prewarm == 0 and decision.reserved == 1
    trace = _trace(np.full(1800, 4))
    with_prewarm = simulate_requests(
        trace, LmiPlatform(PrewarmOnly(), GPU.lmi, 8, 100, 60.0, 3), GPU, SERVICE, warm_reserved=3
    )
    plain = _run(trace, GPU, 0, 3)
    assert cost(with_prewarm.usage, GPU).total == pytest.approx(cost(plain.usage, GPU).total)
    config = PolicyConfig(
        concurrency_per_instance=8,
        hybrid={"rates_by_hour": [10.0] * 24, "p95_latency_s": 3.2, "headroom": 0.0, "lmi_floor": True},
    )
    hybrid = make_policy("hybrid", config)
    busy = Observation(
        t_s=0,
        interval_s=60,
        hour_of_day=0,
        arrival_rate_rps=20,
        in_flight=64,
        reserved_instances=4,
        on_demand_instances=0,
    )
    decision, _ = hybrid.decide(busy, hybrid.initial_state())
    assert decision.prewarm == 0 and decision.reserved >= 8  # 20 req/s x 3.2 s / 8 = 8 environments


def test_environments_are_packed_onto_instances_by_the_documented_rule() -> None:
    assert environments_per_instance(24, 24, 4, 1, 16, 2) == 1  # g6.xlarge, 24 GiB accelerator memory
    assert environments_per_instance(24, 12, 4, 1, 16, 2) == 2  # 12 GiB: two share the L4
    assert environments_per_instance(24, 6, 4, 2, 16, 2) == 2  # vCPUs bind: 4 / 2
    assert environments_per_instance(96, 24, 48, 4, 192, 8) == 4  # g6.12xlarge, 4 GPUs; memory binds at 6


def test_cost_arithmetic_by_hand() -> None:
    """3 environments alive for an hour, 2 to an instance: 2 instances x 1 h x (0.8048 + 15 %) =
    1.85104 USD, plus 1,000,000 requests x 0.20 USD / million."""
    two = GPU.with_overrides(prices=Prices(environments_per_instance=2))
    full = lambda n: np.full(3600, float(n))  # noqa: E731
    priced = cost(Usage(full(3), full(1), full(0), full(0), 0, 1_000_000), two)
    assert priced.busy == pytest.approx(0.92552)  # the busy environment's instance
    assert priced.reserved_idle == pytest.approx(0.92552)  # the other instance
    assert priced.total == pytest.approx(2 * INSTANCE_HOUR + 0.20)
    # a floor of 3 all day on 2 per instance: 2 instances x 24 h
    assert floor_cost_per_day([3] * 24, two).estimated_cost_per_day == pytest.approx(48 * INSTANCE_HOUR)
    assert floor_cost_per_day([3] * 24, GPU).estimated_cost_per_day == pytest.approx(72 * INSTANCE_HOUR)


def test_the_oracle_obeys_the_quota() -> None:
    """With 1 instance of 8 slots allowed, 16 requests in service in one second leave 8 unservable:
    the oracle prices 4 + 8 = 12 slot-seconds, not 20."""
    one = GPU.with_overrides(max_instances=1)
    assert oracle_cost(20.0, one, np.array([16.0, 4.0])) == pytest.approx(
        12 / 8 * one.busy_price_per_instance_s()
    )
    assert oracle_cost(20.0, GPU, np.array([16.0, 4.0])) == pytest.approx(
        20 / 8 * GPU.busy_price_per_instance_s()
    )
    # where the quota binds, no policy prints a cost below the oracle
    trace = _trace(np.full(1200, 12))
    small = get_provider("scf").with_overrides(max_instances=2)
    report = simulate(trace, ["fixed", "on-demand", "hybrid"], Settings(provider=small))
    assert report.quota is not None and report.quota.seconds_over_quota > 0
    for p in report.policies:
        assert p.completed_usd >= report.oracle_usd * (1 - 1e-9), p.name


def test_lmi_floor_is_littles_law_or_the_doubling_term_whichever_binds() -> None:
    """W = 3.2 s, 8 per environment. Hour 0 at 1 req/s faces hour 1's 10 req/s in its last five
    minutes: Little ceil(1 x 3.2 / 8) = 1, doubling ceil(10 x 3.2 / 16) = 2 -> 2 (doubling). Hour 1:
    Little ceil(10 x 3.2 / 8) = 4, doubling 2 -> 4 (little). A 5-minute peak of 40 req/s in hour 5:
    doubling ceil(40 x 3.2 / 16) = 8."""
    rule = ReservedRule(p95_latency_s=3.2, concurrency_per_instance=8, headroom=0.0)
    rates = [1.0, 10.0] + [1.0] * 22
    terms = lmi_floor_terms(rates, rule)
    assert (terms[0].littles_law, terms[0].doubling, terms[0].floor, terms[0].binds) == (1, 2, 2, "doubling")
    assert (terms[1].littles_law, terms[1].doubling, terms[1].floor, terms[1].binds) == (4, 2, 4, "little")
    bursts = list(rates)
    bursts[5] = 40.0
    assert lmi_floor_schedule(rates, rule, bursts)[5] == 8


def test_break_even_counts_use_the_measured_busy_share() -> None:
    """An hour where 1 instance is busy 30 % of seconds and 2 are busy 10 %: at Lambda's break-even 0.6
    neither pays (Little's fluid share would reserve one for a mean of 1.6 busy); at 0.2 one does."""
    busy = np.array([0] * 60 + [1] * 20 + [2] * 10 + [0] * 10, dtype=float)
    hours = np.zeros(len(busy), dtype=int)
    assert break_even_counts(busy, hours, 0.6)[0] == 0
    assert break_even_counts(busy, hours, 0.2)[0] == 1
    assert break_even_counts(busy, hours, 0.05)[0] == 2


def test_lambda_hybrid_on_bursty_traffic_costs_no_more_than_reserving_nothing() -> None:
    """Bursty traffic (a mean of ~1.6 busy, the first instance busy far less than 60 % of the time):
    the hybrid used to reserve one anyway and cost more than on-demand."""
    rng = np.random.default_rng(3)
    rates = np.where(rng.random(3600) < 0.1, 20, 0)
    trace = _trace(rates)
    report = simulate(trace, ["on-demand", "hybrid"], Settings(provider=get_provider("lambda")))
    by = {p.name: p for p in report.policies}
    assert by["hybrid"].completed_usd <= 1.03 * by["on-demand"].completed_usd


def test_gpu_stack_scaler_and_plan_compute_one_floor(tmp_path, traces_dir) -> None:
    """The GPU stack's reservedSchedule, the scaler's hybrid base and ``llmfn plan --provider
    lambda-gpu`` are one function (``scaling.plan.lmi_floor_terms``), with a trace's 5-minute peaks."""
    import json
    import subprocess
    import sys

    from infra.common import scaler_policy_config
    from scaling.policies import hybrid_schedule
    from tests.infra.mocks import REPO_ROOT, example_with, parse_example

    trace = traces_dir / "azure_llm_2023_conv.csv"
    config = parse_example(
        example_with("Pulumi.example-aws-gpu.yaml", ratesByHour=None, trafficTrace=str(trace))
    )
    assert config.aws_gpu is not None and config.burst_rates_by_hour is not None
    scaler = hybrid_schedule(PolicyConfig.from_mapping(scaler_policy_config(config)))
    assert scaler == config.reserved_schedule
    rule = ["--p95", str(config.p95_latency_s), "--concurrency", str(config.concurrency_per_instance)]
    rule += [
        "--headroom",
        str(config.headroom),
        "--min",
        str(config.min_instances),
        "--max",
        str(config.max_instances),
    ]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "llmfn",
            "plan",
            "--trace",
            str(trace),
            *rule,
            "--provider",
            "lambda-gpu",
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
    )
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert plan["reserved_by_hour"] == config.reserved_schedule
    assert [h["floor"] for h in plan["lmi_floor_by_hour"]] == config.reserved_schedule

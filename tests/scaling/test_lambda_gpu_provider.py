"""The Lambda GPU provider (Managed Instances): every execution-environment-second alive is billed at
the instance's price plus Lambda's 15 % management fee, plus $0.20 per million requests."""

from __future__ import annotations

import numpy as np
import pytest

from scaling.providers import Provider, Usage, cost, get_provider, oracle_cost
from scaling.simulate import Settings, simulate
from scaling.traces import diurnal_trace

ENV_PER_S = 0.8048 * 1.15 / 3600  # g6.xlarge us-east-1 + management fee, per environment-second


def _usage(
    reserved_alive: int, reserved_busy: int, od_alive: int, od_busy: int, seconds: int, requests: int
) -> Usage:
    full = lambda n: np.full(seconds, float(n))  # noqa: E731
    return Usage(full(reserved_alive), full(reserved_busy), full(od_busy), full(od_alive), 3, requests)


def test_every_alive_environment_second_is_billed_with_the_fee() -> None:
    gpu = get_provider("lambda-gpu")
    priced = cost(_usage(2, 1, 1, 0, 3600, 1_000_000), gpu)
    assert priced.busy == pytest.approx(3600 * ENV_PER_S)
    # 3 environments alive, 1 busy: the 2 idle instances are billed (the platform's and the floor's alike)
    assert priced.reserved_idle == pytest.approx(2 * 3600 * ENV_PER_S)
    assert priced.on_demand_idle == 0.0
    assert priced.init == 0.0  # start-up is alive time
    assert priced.requests == pytest.approx(0.20)
    assert priced.total == pytest.approx(3 * 3600 * ENV_PER_S + 0.20)


def test_instance_price_fee_and_packing_are_configuration() -> None:
    gpu = get_provider("lambda-gpu")
    two_per_instance = gpu.with_overrides(
        prices=type(gpu.prices)(instance_per_hour=1.3232, environments_per_instance=2)
    )
    assert two_per_instance.busy_price_per_instance_s() == pytest.approx(1.3232 * 1.15 / 2 / 3600)
    assert oracle_cost(8 * 3600.0, gpu) == pytest.approx(3600 * ENV_PER_S)  # 8 requests per environment
    assert gpu.reserved_break_even() == 0.0  # the floor is all there is: reserve what the load needs


def test_a_savings_plan_discounts_the_instance_not_the_fee() -> None:
    """ "15% premium on the EC2 on-demand instance price" (AWS Lambda pricing): a 40 % Savings Plan
    leaves the fee at 15 % of the on-demand price."""
    gpu = get_provider("lambda-gpu")
    discounted = gpu.with_overrides(prices=type(gpu.prices)(instance_discount=0.4))
    assert discounted.busy_price_per_instance_s() == pytest.approx(0.8048 * (0.6 + 0.15) / 3600)


def test_simulator_prices_lambda_gpu_runs() -> None:
    """Managed Instances start no environment for a request; the platform's own scaling serves above
    the floor, so even no floor ("on-demand") serves, throttling what outgrows it."""
    gpu: Provider = get_provider("lambda-gpu")
    assert gpu.on_demand is False
    trace = diurnal_trace(0.5, days=0.25, seed=5)
    report = simulate(trace, ["hybrid", "on-demand"], Settings(provider=gpu))
    by_name = {p.name: p for p in report.policies}
    hybrid, on_demand = by_name["hybrid"], by_name["on-demand"]
    assert hybrid.cost is not None and hybrid.total_usd == pytest.approx(hybrid.cost.total)
    assert hybrid.total_usd > 0 and hybrid.cost.init == 0.0
    # no floor: the platform's environments serve (and bill); nothing queues forever
    assert on_demand.total_usd > 0 and on_demand.comparable and on_demand.slo_attainment > 0.9
    # but from zero at night takes minutes, throttled meanwhile: the hybrid's floor keeps the SLO
    assert on_demand.throttled_share > 0.01 > hybrid.throttled_share and hybrid.meets_slo
    # the price floor prices instance-seconds of the platform's own tracking, at least the oracle's
    assert report.oracle_usd <= report.price_floor_usd
    with pytest.raises(ValueError, match="instance_discount"):
        type(gpu.prices)(instance_discount=1.2)

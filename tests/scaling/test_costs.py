"""Each cost model against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from scaling.providers import Prices, Usage, cost, get_provider, oracle_cost


def usage(reserved_alive, reserved_busy, od_busy, od_alive=None, starts=0, requests=0) -> Usage:
    arr = lambda x: np.asarray(x, dtype=float)  # noqa: E731
    return Usage(
        arr(reserved_alive),
        arr(reserved_busy),
        arr(od_busy),
        arr(od_alive if od_alive is not None else od_busy),
        starts,
        requests,
    )


def test_scf_idle_reserved_sampled_every_10_s() -> None:
    scf = get_provider("scf").with_overrides(
        memory_gb=1.0, prices=Prices(active_per_gb_s=1.0, idle_per_gb_s=0.1)
    )
    # 30 s: 3 reserved; busy 1 at the sample instants 0 and 10, busy 3 at 20 (samples at s = 0, 10, 20)
    busy = np.array([1] * 20 + [3] * 10)
    u = usage([3] * 30, busy, [0] * 30)
    c = cost(u, scf)
    # idle = provisioned - busy at each sample
    assert c.reserved_idle == pytest.approx((2 + 2 + 0) * 10 * 0.1)
    assert c.busy == pytest.approx(busy.sum() * 1.0)
    # on-demand busy seconds at the active price; idle on-demand and initialisation are free on SCF
    u = usage([0] * 10, [0] * 10, [2] * 10, od_alive=[5] * 10, starts=4)
    c = cost(u, scf)
    assert (c.busy, c.reserved_idle, c.init, c.on_demand_idle) == (pytest.approx(20.0), 0.0, 0.0, 0.0)
    # a GPU "idle mode" platform bills the 3 idle-warm instances x 10 s at its idle price
    idle_mode = scf.with_overrides(prices=Prices(active_per_gb_s=1.0, on_demand_idle_per_gb_s=0.25))
    assert cost(u, idle_mode).on_demand_idle == pytest.approx(3 * 10 * 0.25)


def test_lambda_provisioned_rounded_to_5_minutes() -> None:
    lam = get_provider("lambda").with_overrides(memory_gb=2.0)
    p = lam.prices
    # 2 provisioned for the first 301 s (into the 2nd 5-minute block), then 0 until 900 s
    alive = [2] * 301 + [0] * 599
    u = usage(alive, [1] * 100 + [0] * 800, [3] * 50 + [0] * 850, starts=5, requests=1_000_000)
    c = cost(u, lam)
    # 2 blocks x 300 s x 2 instances provisioned; the 100 busy seconds' fee is counted as busy cost
    assert c.reserved_idle == pytest.approx((2 * 600 - 100) * 2.0 * p.provisioned_per_gb_s)
    busy_reserved = 100 * 2.0 * (p.provisioned_per_gb_s + p.provisioned_duration_per_gb_s)
    assert c.busy == pytest.approx(busy_reserved + 150 * 2.0 * p.on_demand_per_gb_s)
    by_hand = 2 * 600 * 2.0 * p.provisioned_per_gb_s + 100 * 2.0 * p.provisioned_duration_per_gb_s
    assert c.total == pytest.approx(by_hand + 150 * 2.0 * p.on_demand_per_gb_s + c.init + 0.20)
    assert c.init == pytest.approx(5 * 2.8 * 2.0 * p.on_demand_per_gb_s)  # AWS bills INIT
    assert c.requests == pytest.approx(0.20)
    assert (p.provisioned_per_gb_s, p.provisioned_duration_per_gb_s, p.on_demand_per_gb_s) == (
        0.0000041667,
        0.0000097222,
        0.0000166667,
    )


def test_fixed_pool_pays_every_server_second() -> None:
    fixed = get_provider("fixed")
    u = usage([4] * 3600, [1] * 3600, [0] * 3600)
    c = cost(u, fixed)
    assert c.total == pytest.approx(4 * 1.006)
    assert c.busy == pytest.approx(1.006) and c.reserved_idle == pytest.approx(3 * 1.006)


def test_oracle_is_work_over_concurrency_at_the_busy_price() -> None:
    scf = get_provider("scf")
    assert oracle_cost(8000.0, scf) == pytest.approx(1000 * 16 * 2.1 * 0.000020)
    lam = get_provider("lambda")
    assert oracle_cost(10.0, lam) == pytest.approx(
        10 * 10 * (0.0000041667 + 0.0000097222)
    )  # fully used provisioned


def test_unknown_provider_names_the_choices() -> None:
    with pytest.raises(ValueError, match="scf, lambda, fixed"):
        get_provider("gcp")

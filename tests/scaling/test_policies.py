"""Each policy's documented behaviour, the shared bounds and delays, and the contract's rules."""

from __future__ import annotations

import copy
import json
import math

import pytest

from scaling.plan import ReservedRule, hourly_schedule
from scaling.policies import (
    POLICY_NAMES,
    RUNNABLE_POLICY_NAMES,
    Decision,
    HybridConfig,
    Observation,
    PolicyConfig,
    hybrid_schedule,
    make_policy,
)


def obs(**kw: float) -> Observation:
    base = dict(
        t_s=0.0,
        interval_s=60.0,
        hour_of_day=0,
        arrival_rate_rps=0.0,
        in_flight=0.0,
        reserved_instances=0,
        on_demand_instances=0,
    )
    base.update(kw)
    return Observation(**base)  # type: ignore[arg-type]


def run(name: str, observations: list[Observation], config: PolicyConfig | None = None) -> list[Decision]:
    policy = make_policy(name, config or PolicyConfig())
    state = policy.initial_state()
    out = []
    for o in observations:
        decision, state = policy.decide(o, state)
        out.append(decision)
    return out


def test_registry_names_and_errors() -> None:
    assert POLICY_NAMES == ("fixed", "on-demand", "reactive", "target-tracking", "kpa", "hybrid", "oracle")
    with pytest.raises(ValueError, match="unknown policy 'nope'"):
        make_policy("nope")
    with pytest.raises(ValueError, match="lower bound"):
        make_policy("oracle")
    with pytest.raises(ValueError, match="unknown policy config key 'bogus'"):
        make_policy("hybrid", {"bogus": 1})
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['x'\] in policy config 'kpa'"):
        PolicyConfig.from_mapping({"kpa": {"x": 1}})
    with pytest.raises(ValueError, match="rates_by_hour"):
        PolicyConfig(hybrid=HybridConfig(rates_by_hour=(1.0,) * 23))


@pytest.mark.parametrize("name", RUNNABLE_POLICY_NAMES)
def test_pure_and_json_state(name: str) -> None:
    """Same inputs, same outputs; the state survives JSON; the input state is never mutated."""
    config = PolicyConfig(hybrid=HybridConfig(rates_by_hour=tuple(float(h % 7) for h in range(24))))
    policy = make_policy(name, config)
    state = policy.initial_state()
    trace = [
        obs(
            t_s=60.0 * i,
            interval_s=policy.interval_s,
            arrival_rate_rps=float(i % 5) * 3,
            in_flight=float(i % 5) * 9,
            reserved_instances=i % 4,
            on_demand_instances=i % 3,
            reserved_utilisation=(i % 10) / 10,
        )
        for i in range(40)
    ]
    for o in trace:
        before = copy.deepcopy(state)
        d1, s1 = policy.decide(o, state)
        assert state == before
        d2, s2 = policy.decide(o, json.loads(json.dumps(state)))
        assert (d1, json.loads(json.dumps(s1))) == (d2, json.loads(json.dumps(s2)))
        state = json.loads(json.dumps(s1))


def test_fixed_and_on_demand() -> None:
    fixed = run("fixed", [obs(), obs(arrival_rate_rps=100, in_flight=500)], PolicyConfig(fixed_instances=7))
    assert all(d.reserved == 7 and d.max_on_demand == 0 for d in fixed)
    assert all(
        d.reserved == 0 and d.max_on_demand is None for d in run("on-demand", [obs(in_flight=50.0)] * 3)
    )


def test_reactive_exact_constants() -> None:
    # all slots busy and rps above capacity: load = 0.4 + 0.3 + 0.3 = 1; EMA 0.7 from 0 -> 0.7, then 0.91
    o = obs(reserved_instances=4, in_flight=32.0, arrival_rate_rps=100.0)
    first, second = run("reactive", [o, o])
    assert first.reserved == 4  # 0.7 is between the thresholds: hold
    smoothed = 0.7 * 1.0 + 0.3 * 0.7
    assert second.reserved == math.ceil(4 * 2 ** ((smoothed - 0.8) * 10)) == 9
    # idle: load 0 < 0.3 -> floor(sqrt(N)), never below the seed's min 1
    assert run("reactive", [obs(reserved_instances=10)])[0].reserved == 3
    assert run("reactive", [obs(reserved_instances=1)])[0].reserved == 1
    # the seed's max 50 caps the exponential step
    hot = obs(reserved_instances=40, in_flight=320.0, arrival_rate_rps=1e4)
    assert run("reactive", [hot, hot])[1].reserved == 50
    # between the thresholds nothing changes: 0.7 x (0.4 x 0.5 + 0.3 x 0.5) = 0.245 -> then EMA climbs
    mid = obs(reserved_instances=5, in_flight=20.0, arrival_rate_rps=0.0)
    assert [d.reserved for d in run("reactive", [mid, mid, mid])] == [2, 5, 5]


def test_target_tracking_datapoints() -> None:
    hot = obs(reserved_instances=10, reserved_utilisation=0.9)
    ds = run("target-tracking", [hot] * 3)
    assert [d.reserved for d in ds] == [10, 10, math.ceil(10 * 0.9 / 0.7)]  # 3 datapoints to scale out
    band = obs(reserved_instances=10, reserved_utilisation=0.65)  # between 63 % and 70 %: hold
    assert {d.reserved for d in run("target-tracking", [band] * 20)} == {10}
    cold = obs(reserved_instances=10, reserved_utilisation=0.35)
    ds = run("target-tracking", [cold] * 15)
    assert [d.reserved for d in ds[:14]] == [10] * 14 and ds[14].reserved == 5  # 15 datapoints to scale in
    # 2 s ticks are folded into one-minute datapoints
    fast = [obs(interval_s=2.0, reserved_instances=10, reserved_utilisation=0.9)] * 90
    ds = run("target-tracking", fast)
    assert ds[88].reserved == 10 and ds[89].reserved == 13


def test_kpa_panic_and_scale_to_zero() -> None:
    c = PolicyConfig(concurrency_per_instance=10)  # 7 requests per pod at the 70 % target
    steady = [obs(t_s=2.0 * i, interval_s=2.0, in_flight=14.0, reserved_instances=2) for i in range(30)]
    assert run("kpa", steady, c)[-1].reserved == 2
    # a 6 s burst to 10x: the panic window sees it at once, the 60 s stable window barely does
    burst = steady + [
        obs(t_s=60.0 + 2 * i, interval_s=2.0, in_flight=140.0, reserved_instances=2) for i in range(3)
    ]
    ds = run("kpa", burst, c)
    assert ds[-1].reserved == 20 and all(d.max_on_demand == 0 for d in ds)
    # no traffic: stays at 1 through the 30 s grace after the stable window empties, then 0
    quiet = [obs(t_s=2.0 * i, interval_s=2.0, in_flight=0.0, reserved_instances=1) for i in range(60)]
    ds = run("kpa", quiet, c)
    assert ds[10].reserved == 1 and ds[-1].reserved == 0


def test_bounds_and_delays_apply_to_every_policy() -> None:
    config = PolicyConfig(min_reserved=2, max_reserved=5, fixed_instances=9)
    assert run("fixed", [obs()], config)[0].reserved == 5  # clamped to max
    assert run("on-demand", [obs()], config)[0].reserved == 2  # clamped to min
    hot = obs(reserved_instances=3, reserved_utilisation=1.0)
    ds = run("target-tracking", [hot] * 6, PolicyConfig(upscale_delay_s=120))
    # the raw count rises at the 3rd datapoint; the wrapper applies it once wanted over 120 s (2 ticks)
    assert [d.reserved for d in ds] == [3, 3, 3, 5, 5, 5]
    # from zero there is no delay (the fast path)
    z = run("fixed", [obs()], PolicyConfig(fixed_instances=4, upscale_delay_s=600))
    assert z[0].reserved == 4


def _hybrid_config(**kw: float) -> PolicyConfig:
    rates = tuple([1.0] * 8 + [20.0] * 12 + [1.0] * 4)
    return PolicyConfig(
        concurrency_per_instance=4, cold_start_s=2.8, hybrid=HybridConfig(rates_by_hour=rates, **kw)
    )


def test_hybrid_base_is_the_planned_schedule() -> None:
    config = _hybrid_config()
    rule = ReservedRule(p95_latency_s=0.76, concurrency_per_instance=4, headroom=0.2, max_reserved=50)
    assert hybrid_schedule(config) == hourly_schedule(config.hybrid.rates_by_hour, rule)  # type: ignore[arg-type]
    busy = dict(arrival_rate_rps=1.0, in_flight=0.5)
    (d,) = run("hybrid", [obs(t_s=3 * 3600.0, hour_of_day=3, **busy)], config)
    assert d.reserved == hybrid_schedule(config)[3] == 1
    # 40 s before 08:00 (lead = 2.8 + 30 s) the 08:00 count is already asked for; 60 s before it is not
    early = obs(t_s=8 * 3600.0 - 60, hour_of_day=7, **busy)
    ahead = obs(t_s=8 * 3600.0 - 30, hour_of_day=7, **busy)
    assert run("hybrid", [early], config)[0].reserved == 1
    assert run("hybrid", [ahead], config)[0].reserved == hybrid_schedule(config)[8] == 5


def test_hybrid_correction_idle_and_prewarm() -> None:
    config = _hybrid_config()
    # measured concurrency far above the 03:00 base: corrected only after 180 s above it
    surge = [
        obs(t_s=3 * 3600.0 + 60 * i, hour_of_day=3, arrival_rate_rps=30.0, in_flight=40.0) for i in range(5)
    ]
    reserved = [d.reserved for d in run("hybrid", surge, config)]
    assert reserved[:2] == [1, 1] and reserved[3] > 1
    # far below the 10:00 base of 5 for 180 s: the measurement wins, reserved drops to its need
    lull = [
        obs(t_s=10 * 3600.0 + 60 * i, hour_of_day=10, arrival_rate_rps=1.0, in_flight=2.0) for i in range(5)
    ]
    assert [d.reserved for d in run("hybrid", lull, config)] == [5, 5, 1, 1, 1]
    # idle for 300 s: reserved 0 and no pre-warm, even at 10:00 where the base is 5
    idle = [obs(t_s=10 * 3600.0 + 60 * i, hour_of_day=10) for i in range(6)]
    ds = run("hybrid", idle, config)
    assert ds[0].reserved == 5 and ds[-1] == Decision(reserved=0)
    # a burst the platform met with 10 on-demand instances: the next ticks hold 12 (x 1.2) warm
    burst = [
        obs(
            t_s=3 * 3600.0,
            hour_of_day=3,
            arrival_rate_rps=1.0,
            in_flight=1.0,
            reserved_instances=1,
            on_demand_instances=9,
        ),
        obs(t_s=3 * 3600.0 + 60, hour_of_day=3, arrival_rate_rps=1.0, in_flight=1.0, reserved_instances=1),
    ]
    ds = run("hybrid", burst, config)
    assert ds[0].prewarm == 12 - 1 and ds[1].prewarm == 11


def test_policy_config_for_is_the_one_builder_overrides_merge_per_section() -> None:
    """``policy_config_for``: given values only, an override file's section merges key by key (the
    derived rates stay), and ``compact`` is the form the stack sends that rebuilds the same config."""
    from core.errors import ScalingError
    from scaling.policies import compact, policy_config_for

    rates = [float(h) for h in range(24)]
    config = policy_config_for(
        concurrency_per_instance=4,
        max_reserved=9,
        rates_by_hour=rates,
        p95_latency_s=1.5,
        overrides={"hybrid": {"headroom": 0.5}, "min_reserved": 2},
    )
    assert (config.concurrency_per_instance, config.min_reserved, config.max_reserved) == (4, 2, 9)
    assert (list(config.hybrid.rates_by_hour or ()), config.hybrid.headroom) == (rates, 0.5)
    assert config.cold_start_s == 2.8  # not given: the model's default
    sent = compact(config)
    assert "cold_start_s" not in sent and "kpa" not in sent
    assert policy_config_for(overrides=json.loads(json.dumps(sent))) == config
    with pytest.raises(ScalingError, match="'typo'"):
        policy_config_for(overrides={"hybrid": {"typo": 1}})

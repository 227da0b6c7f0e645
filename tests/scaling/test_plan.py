"""The hybrid rule (Little's law) and its hourly schedule as crons, against hand-computed cases."""

from __future__ import annotations

import pytest

from scaling.plan import (
    ReservedRule,
    ScheduleChange,
    aws_cron,
    hourly_schedule,
    reserved_instances,
    scf_cron,
    schedule_changes,
)


def test_littles_law_by_hand() -> None:
    # 10 req/s x 0.38 s = 3.8 concurrent; c = 1; +20 % -> 4.56 -> 5
    rule = ReservedRule(p95_latency_s=0.38, concurrency_per_instance=1, headroom=0.2)
    assert reserved_instances(10.0, rule) == 5
    # c = 4 -> 3.8 / 4 x 1.2 = 1.14 -> 2
    assert reserved_instances(10.0, ReservedRule(0.38, 4, 0.2)) == 2
    # exact integers do not round up through float noise: 5 x 0.4 / 1 x 1.0 = 2.0
    assert reserved_instances(5.0, ReservedRule(0.4, 1, 0.0)) == 2
    assert reserved_instances(0.0, ReservedRule(0.4)) == 0


def test_daily_count_form_matches_rate_form() -> None:
    # the seed's "daily QPS x P95 / 86400" read correctly: N requests/day -> lambda = N / 86400
    n_per_day = 864_000
    rule = ReservedRule(p95_latency_s=2.0, headroom=0.0)
    assert reserved_instances(n_per_day / 86400, rule) == 20


def test_bounds_clamp() -> None:
    rule = ReservedRule(p95_latency_s=1.0, min_reserved=2, max_reserved=3)
    assert reserved_instances(0.0, rule) == 2
    assert reserved_instances(100.0, rule) == 3


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"p95_latency_s": 0}, "p95_latency_s"),
        ({"p95_latency_s": 1, "concurrency_per_instance": 0}, "concurrency_per_instance"),
        ({"p95_latency_s": 1, "headroom": -0.1}, "headroom"),
        ({"p95_latency_s": 1, "min_reserved": 5, "max_reserved": 2}, "min_reserved"),
    ],
)
def test_bad_rule_names_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        ReservedRule(**kwargs)


def test_schedule_changes_are_cyclic() -> None:
    rates = [1.0] * 8 + [10.0] * 12 + [1.0] * 4
    sched = hourly_schedule(rates, ReservedRule(p95_latency_s=1.0, headroom=0.0))
    assert sched == [1] * 8 + [10] * 12 + [1] * 4
    assert schedule_changes(sched) == [ScheduleChange(8, 10), ScheduleChange(20, 1)]
    assert schedule_changes([3] * 24) == [ScheduleChange(0, 3)]
    with pytest.raises(ValueError, match="24"):
        hourly_schedule([1.0] * 23, ReservedRule(1.0))


def test_crons() -> None:
    assert scf_cron(8) == "0 0 8 * * * *"
    assert len(scf_cron(8).split()) == 7
    assert aws_cron(20) == "cron(0 20 * * ? *)"
    assert scf_cron(8, utc_offset_hours=8) == "0 0 0 * * * *"  # 08:00 Beijing = 00:00 UTC
    assert aws_cron(2, utc_offset_hours=8) == "cron(0 18 * * ? *)"


def test_min_utilisation_reserves_only_instances_busy_enough() -> None:
    # 10 req/s x 0.5 s / 1 = 5.0 instances of load; 5.5 with +10 %
    plain = ReservedRule(p95_latency_s=0.5, headroom=0.1)
    assert reserved_instances(10.0, plain) == 6  # the 6th is busy half the time
    assert reserved_instances(10.0, ReservedRule(p95_latency_s=0.5, headroom=0.1, min_utilisation=0.6)) == 5
    assert reserved_instances(10.0, ReservedRule(p95_latency_s=0.5, headroom=0.1, min_utilisation=1.0)) == 5
    assert reserved_instances(1.0, ReservedRule(p95_latency_s=0.5, headroom=0.1, min_utilisation=0.6)) == 0
    with pytest.raises(ValueError, match="min_utilisation"):
        ReservedRule(p95_latency_s=0.5, min_utilisation=1.5)

"""The report says what no policy can change (issue 15): an SLO that prefill alone misses, demand above
the quota, and work left undone, on synthetic traces built here."""

from __future__ import annotations

import math

import numpy as np
import pytest

from llmfn.errors import cli_message
from scaling.providers import get_provider
from scaling.simulate import Settings, simulate
from scaling.tables import format_report
from scaling.traces import Trace, poisson_trace


def _trace(name: str, arrival: np.ndarray, tokens_in: np.ndarray, tokens_out: np.ndarray) -> Trace:
    order = np.argsort(arrival)
    arrival = arrival[order] - arrival[order][0]
    second = np.floor(arrival).astype(np.int64)
    return Trace(
        name=name,
        second=second,
        count=np.ones(len(arrival), dtype=np.int64),
        input_tokens=tokens_in[order].astype(float),
        output_tokens=tokens_out[order].astype(float),
        duration_s=int(second[-1]) + 1,
        arrival_s=arrival,
    )


def test_an_slo_prefill_alone_misses_is_stated_with_its_cause_and_a_scaled_slo() -> None:
    # conversations whose prompts average 12k tokens, a few above 100k
    base = poisson_trace(0.5, 900, seed=11, tokens_in=12_000, tokens_out=100)
    tokens_in = base.input_tokens.copy()
    tokens_in[::97] = 120_000
    trace = _trace("long-prompts", base.arrival_s, tokens_in, base.output_tokens)
    report = simulate(trace, ["on-demand", "hybrid", "oracle"], Settings(provider=get_provider("scf")))
    f = report.feasibility
    by = {p.name: p for p in report.policies}
    prefill = tokens_in / 8000
    assert f is not None and not f.feasible
    assert f.min_p99_ttft_s == pytest.approx(by["oracle"].ttft_s[2])  # the least any capacity gives
    assert f.min_p99_ttft_s == pytest.approx(np.sort(prefill)[math.ceil(0.99 * len(prefill)) - 1])
    assert f.prefill_over_slo_share == pytest.approx(float(np.mean(prefill > 2.0)))
    assert f.prefill_tokens_per_s_needed == pytest.approx(f.p99_input_tokens / 2.0)
    assert not any(p.meets_slo for p in report.policies)
    # the length-scaled SLO (2 s + 0.25 s per 1k tokens) and the goodput are reachable
    assert by["oracle"].scaled_slo_attainment == 1.0 and by["oracle"].goodput == 1.0
    assert by["hybrid"].scaled_slo_attainment > 0.97 and by["hybrid"].goodput > 0.97
    text = format_report(report)
    line = next(x for x in text.splitlines() if x.startswith("SLO infeasible"))
    assert f"{f.prefill_over_slo_share:.2%} of requests" in line and "prefill >= " in line
    assert "len-SLO" in text and "goodput" in text
    # the same trace with a feasible SLO says nothing of the kind
    feasible = simulate(trace, ["oracle"], Settings(provider=get_provider("scf"), slo_p99_s=20.0))
    assert feasible.feasibility.feasible and not any("infeasible" in x for x in feasible.findings())


@pytest.mark.parametrize("fidelity", ["request", "timestep"])
def test_a_burst_above_a_small_quota_reports_the_need_and_prints_no_false_saving(fidelity: str) -> None:
    rng = np.random.default_rng(3)
    quiet = np.sort(rng.uniform(0, 600, 300))
    burst = np.sort(rng.uniform(590, 600, 400))  # 400 requests in the trace's last 10 s
    arrival = np.concatenate((quiet, burst))
    tokens_in = np.full(len(arrival), 500.0)
    tokens_out = np.concatenate((np.full(len(quiet), 50.0), np.full(len(burst), 400.0)))
    trace = _trace("burst", arrival, tokens_in, tokens_out)
    scf = get_provider("scf").with_overrides(max_instances=2)
    report = simulate(
        trace, ["fixed", "on-demand", "hybrid", "oracle"], Settings(provider=scf, fidelity=fidelity)
    )
    q = report.quota
    assert q is not None and q.quota == 2 and q.peak_instances > 2 and q.seconds_over_quota > 0
    by = {p.name: p for p in report.policies}
    undone = by["on-demand"]
    assert not undone.comparable and undone.unfinished_requests > 100 and undone.backlog_peak > 200
    assert undone.total_usd < undone.oracle_usd  # it did less work: the raw cost is below the oracle
    assert math.isnan(undone.cost_over_oracle) and undone.savings_vs_fixed is None
    for p in report.policies:
        if p.savings_vs_fixed is not None:
            assert p.comparable and p.completed_usd >= p.oracle_usd * 0.999
    text = format_report(report)
    assert f"the trace needs up to {q.peak_instances:,} instances" in text
    assert f"over it for {q.seconds_over_quota:,} s" in text
    assert "on-demand: backlog peak" in text and "still queued at the trace's end" in text
    row = next(x for x in text.splitlines() if x.strip().startswith("on-demand "))
    assert row.split()[2:4] == ["n/a", "n/a"]  # no saving, no ratio
    data = report.to_dict()
    assert data["quota"]["seconds_over_quota"] == q.seconds_over_quota
    assert data["policies"][1]["cost_over_oracle"] is None and data["policies"][1]["cost_comparable"] is False


def test_tiers_pack_short_and_long_requests_apart_and_cut_the_packing_gap() -> None:
    # bursts of mixed requests: untiered, each of the burst's instances keeps one long answer and
    # stays billed long after its short ones ended; tiered, the long answers share few instances
    rng = np.random.default_rng(5)
    arrival = np.sort(np.concatenate([start + rng.uniform(0, 1, 80) for start in range(0, 1800, 60)]))
    long = rng.random(len(arrival)) < 0.1
    tokens_out = np.where(long, 1500.0, 10.0)
    trace = _trace("bursts", arrival, np.full(len(arrival), 200.0), tokens_out)
    scf = get_provider("scf")
    plain = simulate(trace, ["on-demand", "oracle"], Settings(provider=scf))
    tiered = simulate(trace, ["on-demand", "oracle"], Settings(provider=scf, tier_bounds_tokens=(100,)))
    a, b = plain.policies[0], tiered.policies[0]
    assert b.gap_usd["packing"] < 0.8 * a.gap_usd["packing"]
    assert b.cost_over_oracle < 0.5 * a.cost_over_oracle and b.ttft_s[2] <= a.ttft_s[2] * 1.05
    # the floor counts the oracle's work (the untiered packing's service times) served on arrival
    assert plain.oracle_usd <= plain.no_wait_floor_usd <= a.total_usd
    assert plain.oracle_usd <= plain.price_floor_usd <= a.total_usd  # on-demand pays the packing in full
    assert tiered.no_wait_floor_usd == pytest.approx(plain.no_wait_floor_usd)
    assert "Tiers (output bounds): 100" in format_report(tiered)
    # the S/M/L complexity tiers llmfn dev --tier-exclusive routes by: long prompts x long answers
    smt = Settings(provider=scf, tier_bounds_tokens=(1.2, 3.0), tier_by="fingerprint")
    by_fingerprint = simulate(trace, ["on-demand"], smt)
    assert "Tiers (fingerprint bounds): 1.2,3" in format_report(by_fingerprint)
    fit = simulate(trace, ["on-demand"], Settings(provider=scf, dispatch="fit")).policies[0]
    assert fit.gap_usd["packing"] < 0.8 * a.gap_usd["packing"]  # length-aware dispatch also packs
    with pytest.raises(ValueError, match=r"^dispatch must be one of pack, fit") as refused:
        Settings(provider=scf, dispatch="random")
    assert cli_message(refused.value, "simulate").startswith("--dispatch must be one of pack, fit")
    with pytest.raises(
        ValueError, match=r"^tier_bounds_tokens and dispatch 'fit' need the request-level"
    ) as refused:
        simulate(trace, ["on-demand"], Settings(provider=scf, tier_bounds_tokens=(100,), fidelity="timestep"))
    assert cli_message(refused.value, "simulate").startswith(
        "--tiers and dispatch 'fit' need the request-level"
    )

"""Plain-text tables of a simulation report (what ``llmfn simulate`` and ``bench/simulate.py`` print)."""

from __future__ import annotations

import math

from scaling.simulate import PolicyReport, Report

_COLUMNS = (
    ("policy", 15),
    ("cost $", 11),
    ("vs fixed", 8),
    ("/oracle", 7),
    ("gap: pack", 10),
    ("idle-res", 10),
    ("cold", 8),
    ("other", 10),
    ("TTFT p50", 8),
    ("p95", 6),
    ("p99", 6),
    ("E2E p50", 7),
    ("p95", 6),
    ("p99", 6),
    ("cold%", 6),
    ("rej%", 5),
    ("thr%", 6),
    ("util", 5),
    ("SLO att", 7),
    ("SLO", 4),
    ("len-SLO", 7),
    ("goodput", 7),
)


def _money(x: float) -> str:
    return f"{x:,.2f}" if abs(x) < 1e5 else f"{x:,.0f}"


def _row(p: PolicyReport) -> list[str]:
    gap = p.gap_usd
    name = p.name if p.fixed_instances is None else f"{p.name} ({p.fixed_instances})"
    savings = "n/a" if p.savings_vs_fixed is None else f"{p.savings_vs_fixed:+.1%}"
    ratio = "n/a" if math.isnan(p.cost_over_oracle) else f"{p.cost_over_oracle:.2f}x"
    return [
        name,
        _money(p.total_usd),
        savings,
        ratio,
        _money(gap["packing"]),
        _money(gap["idle_reserved"]),
        _money(gap["cold_starts"]),
        _money(gap["other"]),
        *(f"{v:.2f}" for v in p.ttft_s),
        *(f"{v:.1f}" for v in p.e2e_s),
        f"{p.cold_share:.2%}",
        f"{p.rejected_share:.1%}",
        f"{p.throttled_share:.2%}",
        f"{p.utilisation:.2f}",
        f"{p.slo_attainment:.2%}",
        "yes" if p.meets_slo else "NO",
        f"{p.scaled_slo_attainment:.2%}",
        f"{p.goodput:.2%}",
    ]


def format_report(report: Report) -> str:
    """A header line and one row per policy, columns aligned."""
    head = (
        f"trace {report.trace}: {report.requests:,} requests over {report.duration_s / 3600:.1f} h; "
        f"provider {report.provider}; fidelity {report.fidelity}; SLO P99 TTFT <= {report.slo_p99_s:g} s; "
        f"hourly profile: {report.profile.method}; simulated in {report.wall_s:.1f} s"
    )
    lines = [head, *report.findings(), "  ".join(name.rjust(width) for name, width in _COLUMNS)]
    for p in report.policies:
        cells = _row(p)
        lines.append("  ".join(cell.rjust(width) for cell, (_, width) in zip(cells, _COLUMNS, strict=True)))
    lines.append(
        "gap = cost - oracle, USD: packing (busy instance time beyond work / concurrency), idle reserved, "
        "billed cold starts, other (on-demand price premium, request fees, work differences); "
        f"len-SLO = share with TTFT <= {report.slo_p99_s:g} s + {report.slo_per_1k_tokens_s:g} s per 1k input "
        f"tokens; goodput = share meeting len-SLO and TPOT <= {report.slo_tpot_s:g} s (DistServe); thr% = "
        "throttled (429, every slot busy on Lambda Managed Instances), counted as missing every target"
    )
    if report.oracle_usd > 0:
        tiers = ",".join(f"{b:g}" for b in report.tier_bounds_tokens) or "none"
        lines.append(
            f"price floor {_money(report.price_floor_usd)} USD = {report.price_floor_usd / report.oracle_usd:.2f}x "
            "oracle: about the best reserved / on-demand split of the platform's packing, per second with "
            "perfect foresight (a policy within a few % of it has nothing left to gain from reservation)"
        )
        lines.append(
            f"no-wait floor {_money(report.no_wait_floor_usd)} USD = {report.no_wait_floor_usd / report.oracle_usd:.2f}x "
            "oracle: the busy time of serving each request on arrival, ceil(in service / concurrency); "
            f"packing below it needs requests to wait. Tiers ({report.tier_by} bounds): {tiers}"
        )
    return "\n".join(lines)

"""Benchmark of the simulator: every policy on both Azure LLM traces and the 14-day ServeGen trace.

First the summary: one table, a row per trace x provider (scf, lambda, lambda-gpu), a cell per
policy with cost / oracle, P99 TTFT and throttled share, the best policy of each row (the cheapest
that meets the SLO) marked ``*``, and per row the hybrid's two checks: at most 1.03x the cheaper of
on-demand and the fixed pool among those meeting the SLO, and at most 1.05x the printed price floor
(``--only-summary`` stops there).
Prints first, per provider and Azure trace, the packing gap with and without tiers (and with
length-aware 'fit' dispatch) beside the oracle and the no-wait floor, with the goal check (hybrid
<= 1.10x oracle with the SLO met, or the one line saying the SLO is infeasible); ``--only-packing``
stops there. Then, per provider, the table ``llmfn simulate`` prints for each trace, the goal checks (hybrid
within the SLO and cheapest of those that meet it; cost / oracle against 1.25x / 2.0x), the
agreement of the two fidelities on the Azure traces, and the simulator's own speed: the median of
``--repeats`` (>= 5) runs of each replay, with the time-step fidelity's speed as a ratio to the
request-level one on the same traces and the 14-day replay against its 60 s budget.

Run: ``.venv/bin/python bench/simulate.py [--repeats 5] [--providers scf,lambda]``. The machine is
shared, so wall times move by tens of percent between runs; the spread (min-max) is printed.
``--smoke`` runs the whole pipeline (every table and check above, one repeat of each timing) in seconds on
the same files cut to their first rows (``SMOKE_ROWS``), read through the same reader; its figures mean
nothing, only that every step ran.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from scaling.policies import POLICY_NAMES  # noqa: E402
from scaling.providers import cost, get_provider  # noqa: E402
from scaling.sim_requests import FINGERPRINT_BOUNDS  # noqa: E402
from scaling.simulate import Report, Settings, _Runner, simulate  # noqa: E402
from scaling.tables import format_report  # noqa: E402
from scaling.traces import Trace, read_trace  # noqa: E402

TRACES = REPO.parent / "shared" / "data" / "traces"
AZURE = ("azure_llm_2023_conv.csv", "azure_llm_2023_code.csv")
SERVEGEN = "servegen_m-large_per_10min.csv"
ORACLE_TARGET = {"azure_llm_2023_conv": 1.25, "servegen_m-large_per_10min": 1.25, "azure_llm_2023_code": 2.0}
QUOTA = 20_000  # instances: ServeGen peaks need ~1,700 SCF instances or ~13,000 Lambda ones
SUMMARY_PROVIDERS = ("scf", "lambda", "lambda-gpu")
NEVER_WORSE = 1.03  # hybrid <= 1.03x the cheaper of on-demand and the fixed pool meeting the SLO
NEAR_FLOOR = 1.05  # hybrid <= 1.05x the price floor
SMOKE_ROWS = {AZURE[0]: 800, AZURE[1]: 800, SERVEGEN: 3}
"""Rows each trace file keeps in ``--smoke``: a few minutes of each Azure trace, three 10-minute ServeGen windows."""


def cut_traces(into: Path) -> Path:
    """Copy each shipped trace's header and first ``SMOKE_ROWS`` rows into ``into``; returns ``into``."""
    for name, rows in SMOKE_ROWS.items():
        with (TRACES / name).open(encoding="utf-8") as src:
            head = [line for _, line in zip(range(rows + 1), src, strict=False)]
        (into / name).write_text("".join(head), encoding="utf-8")
    return into


def _cell(p) -> str:
    ratio = "n/a" if p.cost_over_oracle != p.cost_over_oracle else f"{p.cost_over_oracle:.2f}x"
    return f"{ratio} {p.ttft_s[2]:.2f}s {p.throttled_share:.2%}"


def summary_rows(traces: dict[str, Trace], providers: tuple[str, ...]) -> tuple[list[str], list[dict]]:
    """The summary table's lines, and per row the figures its checks use."""
    names = [n for n in POLICY_NAMES if n != "oracle"]
    width = 24
    head = f"{'trace':28s} {'provider':10s} " + " ".join(f"{n:>{width}s}" for n in names)
    lines = [
        "cells: cost / oracle, P99 TTFT, throttled %; * = best of the row (cheapest meeting the SLO)",
        head,
    ]
    checks = []
    for trace in traces.values():
        for provider_name in providers:
            provider = get_provider(provider_name).with_overrides(max_instances=QUOTA)
            report = simulate(trace, names, Settings(provider=provider))
            by = {p.name: p for p in report.policies}
            meeting = [p for p in report.policies if p.meets_slo and p.comparable]
            best = min(meeting, key=lambda p: p.completed_usd).name if meeting else None
            cells = [(_cell(by[n]) + ("*" if n == best else " ")).rjust(width) for n in names]
            lines.append(f"{trace.name:28s} {provider_name:10s} " + " ".join(cells))
            baseline = [by[n] for n in ("on-demand", "fixed") if by[n].meets_slo and by[n].comparable]
            hybrid = by["hybrid"]
            checks.append(
                {
                    "row": f"{trace.name} / {provider_name}",
                    "hybrid_meets_slo": hybrid.meets_slo,
                    "vs_baseline": hybrid.completed_usd / min(p.completed_usd for p in baseline)
                    if baseline
                    else None,
                    "baseline": min(baseline, key=lambda p: p.completed_usd).name if baseline else "none",
                    "vs_price_floor": hybrid.completed_usd / report.price_floor_usd
                    if report.price_floor_usd > 0
                    else None,
                }
            )
    for c in checks:
        vs_b, vs_f = c["vs_baseline"], c["vs_price_floor"]
        lines.append(
            f"  {c['row']:44s} hybrid {'meets' if c['hybrid_meets_slo'] else 'MISSES'} the SLO; "
            + (
                f"{vs_b:.3f}x {c['baseline']} ({'ok' if vs_b <= NEVER_WORSE else 'OVER'} {NEVER_WORSE}x)"
                if vs_b is not None
                else "neither on-demand nor the fixed pool meets the SLO"
            )
            + (
                f"; {vs_f:.3f}x the price floor ({'ok' if vs_f <= NEAR_FLOOR else 'OVER'} {NEAR_FLOOR}x)"
                if vs_f is not None
                else ""
            )
        )
    return lines, checks


def goals(report: Report) -> str:
    by = {p.name: p for p in report.policies}
    hybrid = by["hybrid"]
    meeting = [p for p in report.policies if p.meets_slo and p.name != "oracle"]
    cheapest = min(meeting, key=lambda p: p.total_usd).name if meeting else "none"
    target = ORACLE_TARGET.get(report.trace)
    ratio = hybrid.cost_over_oracle
    return (
        f"goals: hybrid P99 TTFT {hybrid.ttft_s[2]:.2f} s {'meets' if hybrid.meets_slo else 'MISSES'} the SLO; "
        f"cheapest meeting it: {cheapest}{' (hybrid)' if cheapest == 'hybrid' else ''}; "
        f"hybrid cost / oracle {ratio:.2f}x vs goal {target}x: {'met' if target and ratio <= target else 'MISSED'}"
    )


def agreement(trace: Trace, provider_name: str) -> str:
    provider = get_provider(provider_name).with_overrides(max_instances=QUOTA)
    settings = Settings(provider=provider)
    exact, fluid = _Runner(trace, settings, "request", None), _Runner(trace, settings, "timestep", None)
    n = exact.smallest_fixed_pool()
    lines = [f"fidelity agreement on {trace.name} ({provider_name}): time-step vs request-level"]
    for name in POLICY_NAMES[:-1]:
        a, b = exact.run(name, exact.policy_config(n)), fluid.run(name, fluid.policy_config(n))
        ca, cb = cost(a.usage, provider).total, cost(b.usage, provider).total
        pa, pb = a.percentile_ttft(99), b.percentile_ttft(99)
        lines.append(
            f"  {name:16s} cost {ca:9.3f} vs {cb:9.3f} ({cb / ca - 1:+6.1%})   P99 TTFT {pa:5.2f} vs {pb:5.2f} s ({pb / pa - 1:+6.1%})"
        )
    return "\n".join(lines)


PACKING_VARIANTS = (
    ("pack", (), "pack", "output"),
    ("pack + tiers 100", (100.0,), "pack", "output"),
    ("pack + tiers 50,400", (50.0, 400.0), "pack", "output"),
    ("pack + S/M/L tiers", FINGERPRINT_BOUNDS, "pack", "fingerprint"),
    ("fit", (), "fit", "output"),
)
"""Dispatch variants of the packing table: the platform's packing, tiers by expected output length
(the complexity fingerprint's job), and length-aware 'fit' dispatch."""
PACKING_GOAL = 1.10


def packing(trace: Trace, provider_name: str) -> str:
    """The packing gap of the hybrid (and on-demand) with and without tiers, against the oracle and
    the no-wait floor, and the goal check: hybrid <= 1.10x oracle with the SLO met where feasible."""
    provider = get_provider(provider_name).with_overrides(max_instances=QUOTA)
    lines = [
        f"packing on {trace.name} ({provider_name}): gap = cost - oracle; packing = busy instance time "
        "beyond work / concurrency",
        f"  {'dispatch':22s} {'policy':10s} {'cost $':>8s} {'/oracle':>8s} {'packing $':>10s} "
        f"{'pack/oracle':>11s} {'P99 TTFT':>8s} {'SLO':>4s}",
    ]
    best = None
    for label, tiers, dispatch, tier_by in PACKING_VARIANTS:
        settings = Settings(provider=provider, tier_bounds_tokens=tiers, dispatch=dispatch, tier_by=tier_by)
        report = simulate(trace, ["hybrid", "on-demand", "oracle"], settings)
        for p in report.policies[:2]:
            lines.append(
                f"  {label:22s} {p.name:10s} {p.total_usd:8.3f} {p.cost_over_oracle:7.2f}x "
                f"{p.gap_usd['packing']:10.3f} {p.gap_usd['packing'] / p.oracle_usd:10.1%} "
                f"{p.ttft_s[2]:7.2f}s {'yes' if p.meets_slo else 'NO':>4s}"
            )
            if p.name == "hybrid" and p.meets_slo and (best is None or p.cost_over_oracle < best[1]):
                best = (label, p.cost_over_oracle)
    f = report.feasibility
    floor = report.no_wait_floor_usd / report.oracle_usd
    price_floor = report.price_floor_usd / report.oracle_usd
    if f is not None and not f.feasible:
        verdict = f"SLO infeasible on this trace (oracle P99 TTFT {f.min_p99_ttft_s:.2f} s > {f.slo_s:g} s)"
    elif best is None:
        verdict = "no hybrid variant meets the SLO"
    else:
        met = "met" if best[1] <= PACKING_GOAL else "MISSED"
        verdict = f"best hybrid meeting the SLO: {best[0]} at {best[1]:.2f}x vs goal {PACKING_GOAL}x: {met}"
    lines.append(
        f"  price floor {price_floor:.2f}x oracle (best per-second reserved / on-demand split of the "
        f"platform's packing); no-wait floor {floor:.2f}x oracle (every request served on arrival, "
        f"ceil(in service / c) instances busy; below it requests must wait). {verdict}"
    )
    return "\n".join(lines)


def timed(fn, repeats: int) -> tuple[float, float, float]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times), max(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--providers", default="scf,lambda")
    parser.add_argument(
        "--only-packing", action="store_true", help="Only the packing tables (deterministic: no timing)."
    )
    parser.add_argument("--only-summary", action="store_true", help="Only the summary table.")
    parser.add_argument(
        "--smoke", action="store_true", help="Every step on the traces cut to their first rows, 1 repeat."
    )
    args = parser.parse_args()
    if args.smoke:
        with tempfile.TemporaryDirectory() as cut:
            run(args, cut_traces(Path(cut)), repeats=1)
        return
    if args.repeats < 5:
        parser.error("--repeats must be >= 5 (medians of at least 5 runs)")
    run(args, TRACES, args.repeats)


def run(args: argparse.Namespace, folder: Path, repeats: int) -> None:
    """Every table of the benchmark on the trace files in ``folder``, timings as medians of ``repeats``."""
    traces = {name: read_trace(folder / name, seed=0) for name in (*AZURE, SERVEGEN)}
    print("\n".join(summary_rows(traces, SUMMARY_PROVIDERS)[0]))
    print()
    if args.only_summary:
        return
    for provider_name in args.providers.split(","):
        for name in AZURE:
            print(packing(traces[name], provider_name))
            print()
    if args.only_packing:
        return
    for provider_name in args.providers.split(","):
        provider = get_provider(provider_name).with_overrides(max_instances=QUOTA)
        for trace in traces.values():
            report = simulate(trace, POLICY_NAMES, Settings(provider=provider))
            print(format_report(report))
            print(goals(report))
            print()
        for name in AZURE:
            print(agreement(traces[name], provider_name))
        print()

    print(
        f"simulator speed (all {len(POLICY_NAMES)} policies incl. the fixed-pool search; median of {repeats}, min-max)"
    )
    scf = get_provider("scf").with_overrides(max_instances=QUOTA)
    for name in AZURE:
        trace = traces[name]
        req = timed(
            lambda t=trace: simulate(t, POLICY_NAMES, Settings(provider=scf, fidelity="request")),
            repeats,
        )
        ts = timed(
            lambda t=trace: simulate(t, POLICY_NAMES, Settings(provider=scf, fidelity="timestep")),
            repeats,
        )
        print(
            f"  {trace.name:28s} {trace.requests:>11,} req  request-level {req[0]:6.2f} s ({req[1]:.2f}-{req[2]:.2f})  "
            f"time-step {ts[0]:6.2f} s ({ts[1]:.2f}-{ts[2]:.2f})  time-step speed-up {req[0] / ts[0]:.1f}x"
        )
    trace = traces[SERVEGEN]
    sg = timed(lambda: simulate(trace, POLICY_NAMES, Settings(provider=scf)), repeats)
    read = timed(lambda: read_trace(folder / SERVEGEN, seed=0), repeats)
    print(
        f"  {trace.name:28s} {trace.requests:>11,} req  14-day time-step replay {sg[0]:6.2f} s ({sg[1]:.2f}-{sg[2]:.2f}) "
        f"= {sg[0] / 60:.2f} of the 60 s budget; {trace.duration_s * (len(POLICY_NAMES) - 1) / sg[0] / 1e6:.2f} M "
        f"simulated policy-seconds per second; reading + arrival generation {read[0]:.2f} s"
    )


if __name__ == "__main__":
    main()

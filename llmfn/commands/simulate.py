"""``llmfn simulate``: replay a trace through the capacity policies and price each one."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import typer

from core.errors import InputError
from llmfn.commands.fields import option
from llmfn.commands.options import read_policy_config, read_trace_with_progress
from scaling.sim_defaults import SimDefaults


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate)


def _check_flags(
    max_instances: int | None, cold_start: float | None, keep_alive: float | None, seed: int
) -> None:
    """Refuse flag values no platform has, naming the flag (before any file is read)."""
    if max_instances is not None and max_instances < 1:
        raise InputError(f"--max-instances must be >= 1 (an instance quota), got {max_instances}")
    for flag, value in (("--cold-start", cold_start), ("--keep-alive", keep_alive)):
        if value is not None and not (0 <= value <= 86400):
            raise InputError(f"{flag} must be a number of seconds in [0, 86400], got {value:g}")
    if seed < 0:
        raise InputError(f"--seed must be >= 0, got {seed}")


def _tier_bounds(spec: str) -> tuple[float, ...]:
    """``--tiers '50,400'`` -> (50.0, 400.0), validated (increasing positive token counts)."""
    if not spec.strip():
        return ()
    try:
        bounds = tuple(float(part) for part in spec.split(","))
    except ValueError:
        raise InputError(
            f"--tiers must be comma-separated token counts like '100' or '50,400', got {spec!r}"
        ) from None
    if any(not (0 < b <= 1e7) for b in bounds) or list(bounds) != sorted(set(bounds)):
        raise InputError(f"--tiers must be increasing token counts in (0, 10,000,000], got {spec!r}")
    return bounds


def _option(field: str, help: str) -> Any:
    """``llmfn simulate``'s flag for ``Settings.field``, its default ``SimDefaults``' (``llmfn.commands.fields``)."""
    return option("simulate", SimDefaults, field, help)


def simulate(
    trace: Path | None = typer.Option(
        None,
        "--trace",
        help="Trace file: Azure LLM CSV, ServeGen rates, or timestamp,input_tokens,output_tokens CSV / JSONL.",
    ),
    policy: str = typer.Option(
        "all",
        "--policy",
        help="'all' or comma-separated: fixed,on-demand,reactive,target-tracking,kpa,hybrid,oracle.",
    ),
    provider: str = typer.Option("scf", "--provider", help="scf, lambda or fixed (a GPU server pool)."),
    slo_p99: float = _option("slo_p99_s", "SLO on P99 time to first token, seconds."),
    slo_per_1k_tokens: float = _option(
        "slo_per_1k_tokens_s",
        "b of the length-scaled SLO TTFT <= --slo-p99 + b x input tokens / 1000, seconds.",
    ),
    slo_tpot: float = _option(
        "slo_tpot_s", "Time-per-output-token target of the goodput, seconds (DistServe)."
    ),
    fidelity: str = _option("fidelity", "auto, request (event simulation) or timestep (1 s fluid)."),
    max_instances: int | None = typer.Option(
        None, "--max-instances", help="Quota on instances (default: the provider's, 1000)."
    ),
    cold_start: float | None = typer.Option(
        None, "--cold-start", help="Cold start, seconds (default 2.8: staged preload)."
    ),
    keep_alive: float | None = typer.Option(
        None, "--keep-alive", help="Seconds the platform keeps an idle on-demand instance."
    ),
    policy_config: Path | None = typer.Option(
        None, "--policy-config", help="JSON file of PolicyConfig overrides."
    ),
    tiers: str = typer.Option(
        "",
        "--tiers",
        help="Tiered dispatch: output-token bounds ('100', '50,400') or 'fingerprint' (the S/M/L complexity tiers of llmfn dev --tier-exclusive).",
    ),
    dispatch: str = _option(
        "dispatch", "pack (busiest instance with a free slot) or fit (least added busy time; request-level)."
    ),
    profile: Path | None = typer.Option(
        None,
        "--profile",
        help="Deployment profile (JSON or TOML): service model, instance, platform, prices, cold start.",
    ),
    cold_start_from: Path | None = typer.Option(
        None,
        "--cold-start-from",
        help="Measured cold start: /readyz JSON (timeline or stages_done_s) or a stages list of {name, seconds}.",
    ),
    show_profile: bool = typer.Option(
        False, "--show-profile", help="Print every figure the simulation uses with its source, and exit."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed for traces given as rates (ServeGen)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    plot: Path | None = typer.Option(None, "--plot", help="Write a PNG of load, instances and latency."),
    plot_policies: str = typer.Option(
        "hybrid,on-demand,fixed", "--plot-policies", help="Policies drawn in --plot."
    ),
) -> None:
    """Cost, savings, cost / oracle and latency of each policy on your own traffic."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from scaling.profile import DeploymentProfile, describe, read_cold_start, read_profile
    from scaling.providers import get_provider
    from scaling.sim_requests import FINGERPRINT_BOUNDS
    from scaling.simulate import Settings, parse_policies
    from scaling.simulate import simulate as run_simulation
    from scaling.tables import format_report
    from scaling.traces import check_has_work

    names = parse_policies(policy)
    _check_flags(max_instances, cold_start, keep_alive, seed)
    if cold_start is not None and cold_start_from is not None:
        raise InputError("give one of --cold-start SECONDS or --cold-start-from FILE")
    deployment = read_profile(profile) if profile is not None else DeploymentProfile()
    if cold_start_from is not None:
        deployment = replace(deployment, cold_start=read_cold_start(cold_start_from))
    elif cold_start is not None:
        deployment = replace(deployment, cold_start=None)
    chosen = deployment.apply(get_provider(provider))
    service = deployment.service_model()
    overrides = {
        key: value
        for key, value in {
            "max_instances": max_instances,
            "cold_start_s": cold_start,
            "keep_alive_s": keep_alive,
        }.items()
        if value is not None
    }
    if overrides:
        chosen = chosen.with_overrides(**overrides)
    if show_profile:
        for key, value, source in describe(chosen, service, deployment, flags=set(overrides)):
            typer.echo(f"{key:<44} {value:>12}  {source}")
        return
    if trace is None:
        raise InputError("--trace FILE is required (or --show-profile)")
    config = read_policy_config(policy_config)
    settings = Settings(
        provider=chosen,
        service=service,
        slo_p99_s=slo_p99,
        fidelity=fidelity,
        policy_config=config,
        slo_per_1k_tokens_s=slo_per_1k_tokens,
        slo_tpot_s=slo_tpot,
        tier_bounds_tokens=FINGERPRINT_BOUNDS if tiers.strip() == "fingerprint" else _tier_bounds(tiers),
        tier_by="fingerprint" if tiers.strip() == "fingerprint" else "output",
        dispatch=dispatch,
    )
    loaded = read_trace_with_progress(trace, seed=seed, quiet=as_json)
    check_has_work(loaded, trace)
    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=as_json or loaded.duration_s <= 86400,
    ) as bar:
        tasks: dict[str, int] = {}

        def progress(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(f"simulating {name}", total=total)
            bar.update(tasks[name], completed=done)

        report = run_simulation(loaded, names, settings, progress=progress)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        typer.echo(format_report(report))
    if plot is not None:
        from scaling.plot import plot_report

        wanted = [n.strip() for n in plot_policies.split(",") if n.strip()]
        out = plot_report(report, loaded, plot, wanted)
        console.print(f"plot written to {out}")

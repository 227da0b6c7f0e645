"""``llmfn plan``: the reserved-instance schedule per hour of day, as SCF and AWS crons."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from core.errors import InputError
from llmfn.commands.fields import FLAGS_OF, option
from scaling.plan import DEFAULT_P95_LATENCY_S, ReservedRule


def register(app: typer.Typer) -> None:
    app.command("plan")(plan)


def _option(field: str, help: str) -> Any:
    """``llmfn plan``'s flag for ``ReservedRule.field``, its default the rule's (``llmfn.commands.fields``)."""
    return option("plan", ReservedRule, field, help)


def plan(
    trace: Path | None = typer.Option(
        None, "--trace", help="Trace file whose hourly rates make the profile."
    ),
    rate_profile: Path | None = typer.Option(
        None,
        "--rate-profile",
        help="24 hourly rates (req/s): JSON list / {\"rates_by_hour\": [...]} or CSV 'hour,rate_rps'.",
    ),
    p95: float = typer.Option(
        DEFAULT_P95_LATENCY_S,
        FLAGS_OF["plan"]["p95_latency_s"],
        help="P95 time in system per request, seconds (Little's law W).",
    ),
    concurrency: int | None = typer.Option(
        None, "--concurrency", help="Concurrent requests one instance serves (default: --profile's, else 8)."
    ),
    profile: Path | None = typer.Option(
        None, "--profile", help="Deployment profile (JSON or TOML); its instance.concurrency is used."
    ),
    headroom: float = _option("headroom", "Margin over Little's-law concurrency (0.2 = +20 %)."),
    min_utilisation: float = _option(
        "min_utilisation", "Reserve an instance only if busier than this share (Lambda break-even 0.6)."
    ),
    min_reserved: int = _option("min_reserved", "Fewest reserved instances."),
    max_reserved: int = _option("max_reserved", "Most reserved instances."),
    utc_offset: int = typer.Option(
        0, "--utc-offset", help="Hours east of UTC of the profile's hours (crons are UTC)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed for traces given as rates (ServeGen)."),
    provider: str | None = typer.Option(
        None,
        "--provider",
        help="lambda-gpu: the floor as Managed Instances execution environments (--concurrency = "
        "requests per environment), its environment-hours and estimated USD a day.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON."),
) -> None:
    """Reserved instances = ceil(rate x P95 / concurrency x (1 + headroom)) for each hour of day."""
    from scaling.plan import lmi_floor_terms, read_rate_profile, schedule_plan
    from scaling.providers import PROVIDERS, floor_cost_per_day

    if (trace is None) == (rate_profile is None):
        raise InputError("give exactly one of --trace FILE or --rate-profile FILE")
    if provider is not None and provider != "lambda-gpu":
        raise InputError(
            "must be lambda-gpu (the provider whose floor is billed per execution environment)",
            field="provider",
            value=provider,
            allowed="lambda-gpu",
        )
    billed_by = PROVIDERS[provider] if provider is not None else None
    if concurrency is None:
        from scaling.profile import read_profile

        from_profile = read_profile(profile).concurrency if profile is not None else None
        default = billed_by.concurrency_per_instance if billed_by is not None else 8
        concurrency = from_profile if from_profile is not None else default
    if billed_by is not None:
        from infra.clouds.aws.gpu.config import MAX_CONCURRENCY_PER_ENVIRONMENT

        if not 1 <= concurrency <= MAX_CONCURRENCY_PER_ENVIRONMENT:  # the stack refuses the same
            raise InputError(
                f"must be between 1 and {MAX_CONCURRENCY_PER_ENVIRONMENT} requests per execution "
                f"environment (PerExecutionEnvironmentMaxConcurrency) with --provider lambda-gpu, got {concurrency}",
                field="concurrency_per_instance",
                value=concurrency,
            )
    # a bad value names the rule's field; the CLI's printer words it as the flag (llmfn.errors.FLAGS)
    rule = ReservedRule(
        p95_latency_s=p95,
        concurrency_per_instance=concurrency,
        headroom=headroom,
        min_reserved=min_reserved,
        max_reserved=max_reserved,
        min_utilisation=min_utilisation,
    )
    bursts = None
    if trace is not None:
        from llmfn.commands.options import read_trace_with_progress
        from scaling.forecasting import burst_rates_by_hour, forecast_profile

        replay = read_trace_with_progress(trace, seed=seed, quiet=as_json)
        profile = forecast_profile(replay)
        rates, method = list(profile.rates_by_hour), profile.method
        bursts = burst_rates_by_hour(replay)
    else:
        assert rate_profile is not None
        rates, method = read_rate_profile(rate_profile), "rate-profile file"
    terms = lmi_floor_terms(rates, rule, bursts) if billed_by is not None else None
    schedule = None if terms is None else [t.floor for t in terms]
    result = {**schedule_plan(rates, rule, utc_offset, schedule), "profile_method": method}
    floor = None
    if billed_by is not None and terms is not None:
        floor = floor_cost_per_day(result["reserved_by_hour"], billed_by)
        result |= {
            "lmi_floor_by_hour": [
                {
                    "hour": t.hour,
                    "rate_rps": t.rate_rps,
                    "burst_rps": t.burst_rps,
                    "littles_law": t.littles_law,
                    "doubling": t.doubling,
                    "floor": t.floor,
                    "binds": t.binds,
                }
                for t in terms
            ],
            "provider": billed_by.name,
            "reserved_environment_hours_per_day": floor.environment_hours_per_day,
            "environment_price_per_hour": floor.environment_price_per_hour,
            "estimated_reserved_cost_per_day": floor.estimated_cost_per_day,
        }
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    typer.echo(
        f"profile: {method}; rule: ceil(rate x {p95:g} s / {concurrency} x {1 + headroom:g}), in [{min_reserved}, {max_reserved}]"
    )
    if terms is not None:
        typer.echo(
            "floor = max(Little's law, doubling): the doubling term ceil(5-min peak rate x "
            f"{p95:g} s / ({concurrency} x 2)) keeps the next five minutes within one doubling of the "
            "capacity in place (Managed Instances throttle traffic that more than doubles within 5 minutes)"
        )
        typer.echo(
            f"{'hour':>4}  {'rate req/s':>10}  {'5-min peak':>10}  {'little':>6}  {'doubling':>8}  "
            f"{'environments':>12}  binds"
        )
        for t in terms:
            typer.echo(
                f"{t.hour:>4}  {t.rate_rps:>10.2f}  {t.burst_rps:>10.2f}  {t.littles_law:>6}  "
                f"{t.doubling:>8}  {t.floor:>12}  {t.binds}"
            )
    else:
        typer.echo(f"{'hour':>4}  {'rate req/s':>10}  {'reserved':>8}")
        for hour, (rate, count) in enumerate(
            zip(result["rates_by_hour"], result["reserved_by_hour"], strict=True)
        ):
            typer.echo(f"{hour:>4}  {rate:>10.2f}  {count:>8}")
    if floor is not None and billed_by is not None:
        typer.echo(
            f"floor (MinExecutionEnvironments): {floor.environment_hours_per_day:g} environment-hours/day x "
            f"{floor.environment_price_per_hour:.4f} USD/h = {floor.estimated_cost_per_day:.4f} USD/day "
            f"(instance + {billed_by.prices.management_fee:.0%} management fee; requests and scale-out "
            "above the floor not included)"
        )
    if floor is not None:  # the scaler moves MinExecutionEnvironments: no cron target exists for it
        typer.echo(f"changes (the scaler sets the floor from these hours, profile at UTC{utc_offset:+d}):")
        typer.echo(f"{'from hour':>9}  {'environments':>12}  {'UTC hour':>8}")
        for change in result["changes"]:
            utc_hour = (change["hour"] - utc_offset) % 24
            typer.echo(f"{change['hour']:>9}  {change['instances']:>12}  {utc_hour:>8}")
        return
    typer.echo(f"changes (crons in UTC, profile at UTC{utc_offset:+d}):")
    typer.echo(f"{'from hour':>9}  {'instances':>9}  {'SCF TriggerActions cron':<24}  AWS scheduled action")
    for change in result["changes"]:
        typer.echo(
            f"{change['hour']:>9}  {change['instances']:>9}  {change['scf_cron']:<24}  {change['aws_cron']}"
        )

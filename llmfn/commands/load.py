"""``llmfn load``: replay a trace slice (or Poisson arrivals) against an endpoint, measure, and put the
simulator's prediction for the same requests and configuration beside the measurements.

This module parses the options and prints; :mod:`llmfn.local.measurement` does the run."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from llmfn.local.prediction import Calibration, Prediction
    from llmfn.local.status import RuntimeStatus
from core.errors import InputError

console = Console()
err_console = Console(stderr=True)


def _fmt(value: float | None, unit: str = "s") -> str:
    if value is None:
        return "-"
    return f"{value:.3f} {unit}".strip() if unit else f"{value:.1f}"


def _diff(measured: float | None, predicted: float | None) -> str:
    if measured is None or predicted is None or measured == 0:
        return "-"
    return f"{(predicted - measured) / measured * 100:+.1f} %"


def load(
    url: str = typer.Option(..., "--url", help="Endpoint base URL, e.g. http://127.0.0.1:8080."),
    trace: Path | None = typer.Option(
        None, "--trace", help="Per-request trace file (Azure CSV, CSV, JSONL)."
    ),
    start: float = typer.Option(0.0, "--start", help="Slice start, seconds from the trace's first request."),
    duration: float = typer.Option(
        60.0, "--duration", help="Seconds of trace (or of Poisson arrivals) to send."
    ),
    time_scale: float = typer.Option(
        1.0, "--time-scale", help="Replay this many times faster (0.5 = slower)."
    ),
    token_scale: float = typer.Option(1.0, "--token-scale", help="Multiply the trace's token counts."),
    max_prompt_tokens: int = typer.Option(
        1024, "--max-prompt-tokens", help="Cap on prompt tokens per request."
    ),
    max_output_tokens: int = typer.Option(
        256, "--max-output-tokens", help="Cap on output tokens per request."
    ),
    rps: float | None = typer.Option(None, "--rps", help="Poisson arrivals at this rate instead of a trace."),
    prompt_tokens: int = typer.Option(64, "--prompt-tokens", help="Prompt tokens per --rps request."),
    output_tokens: int = typer.Option(32, "--output-tokens", help="Output tokens per --rps request."),
    seed: int = typer.Option(0, "--seed", help="Seed of the Poisson arrivals."),
    max_in_flight: int = typer.Option(
        64, "--max-in-flight", help="Most requests open at once (more are dropped)."
    ),
    model: str | None = typer.Option(
        None, "--model", help="Model id; default: the first one /v1/models lists."
    ),
    predict: bool = typer.Option(
        True, "--predict/--no-predict", help="Simulate the same run (llmfn dev targets)."
    ),
    allow_remote: bool = typer.Option(False, "--allow-remote", help="Allow a non-loopback --url."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of the table."),
    save: Path | None = typer.Option(None, "--save", help="Write one JSON line per request to this file."),
    write_profile: Path | None = typer.Option(
        None,
        "--write-profile",
        help="Write the measured service model, slots per worker and cold start as a deployment profile (JSON).",
    ),
    lmi: list[str] = typer.Option(
        [],
        "--lmi",
        help="KEY=VALUE of Lambda Managed Instances scaling measured on your account, written to the "
        "profile's [lmi] section with --write-profile (target_utilisation, from_zero_s, doubling_s, "
        "scale_in_per_min, idle_to_zero_s, publish_environments); repeatable.",
    ),
) -> None:
    """Bounded load test with latency percentiles, cold starts and 429s, beside the simulator's prediction."""
    from llmfn.local import loadgen
    from llmfn.local.client import api_key_from_env, auth_headers, v1_base
    from llmfn.local.measurement import ModelListingFailed, measure

    loadgen.check_target(url, allow_remote)
    lmi_measured = _lmi_pairs(lmi) if lmi else {}
    if lmi_measured and write_profile is None:
        raise InputError("--lmi is written to the profile: give --write-profile FILE with it")
    if max_in_flight < 1:
        raise InputError(f"--max-in-flight must be >= 1, got {max_in_flight}")
    if (trace is None) == (rps is None):
        raise InputError("give exactly one of --trace FILE or --rps R")
    base = v1_base(url)
    headers = auth_headers(api_key_from_env())
    if trace is not None:
        from llmfn.commands.options import read_trace_with_progress

        source = read_trace_with_progress(trace)
        if source.arrival_s is None:
            raise InputError(f"--trace {str(trace)!r}: holds rates, not requests; give a per-request trace")
        plan = loadgen.trace_plan(
            source.arrival_s.tolist(),
            source.input_tokens.astype(int).tolist(),
            source.output_tokens.astype(int).tolist(),
            start,
            duration,
            time_scale,
            token_scale,
            max_prompt_tokens,
            max_output_tokens,
        )
        horizon = duration / time_scale
    else:
        plan = loadgen.poisson_plan(rps, duration, prompt_tokens, output_tokens, seed)  # type: ignore[arg-type]
        horizon = duration

    try:
        run = measure(
            base,
            plan,
            horizon,
            headers,
            model,
            max_in_flight,
            predict,
            progress=lambda line: err_console.print(line, highlight=False),
        )
    except ModelListingFailed as exc:
        err_console.print(f"[bold red]error:[/bold red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None

    if save is not None:
        loadgen.save_outcomes(run.outcomes, save)
    if write_profile is not None:
        _write_profile(
            write_profile,
            run.calibration,
            run.calibrated_on,
            run.final_status,
            run.prediction,
            url,
            lmi_measured,
        )
    if as_json:
        print(
            json.dumps(
                {
                    "measured": asdict(run.summary)
                    | {
                        "instance_seconds": run.instance_seconds,
                        "instance_seconds_sampled_s": run.sampled_s,
                        "worker_cold_starts": run.worker_cold_starts,
                        "wall_s": run.wall_s,
                    },
                    "predicted": asdict(run.prediction) if run.prediction else None,
                    "calibration": asdict(run.calibration) | {"fitted_on": run.calibrated_on}
                    if run.calibration
                    else None,
                },
                indent=2,
            )
        )
        return
    _print_table(
        run.summary,
        run.instance_seconds,
        run.worker_cold_starts,
        run.prediction,
        run.calibration,
        run.calibrated_on,
    )


def _lmi_pairs(pairs: list[str]) -> dict[str, float]:
    """``--lmi KEY=VALUE`` options as validated ``[lmi]`` figures (one clear error per bad one)."""
    from scaling.profile import ProfileError, lmi_values

    values: dict[str, float] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep:
            raise InputError(f"--lmi takes KEY=VALUE, got {pair!r}", field="lmi", value=pair)
        try:
            values[key.strip()] = float(raw)
        except ValueError:
            raise InputError(
                f"--lmi takes KEY=VALUE with a number, got {pair!r}", field="lmi", value=pair
            ) from None
    try:
        return lmi_values(values, "--lmi")
    except ProfileError as exc:
        raise InputError(str(exc), field="lmi", value=pairs) from None


def _write_profile(
    path: Path,
    calibration: Calibration | None,
    calibrated_on: str,
    status: RuntimeStatus | None,
    prediction: Prediction | None,
    url: str,
    lmi: dict[str, float] | None = None,
) -> None:
    """The measurement as a deployment profile ``llmfn simulate/plan --profile`` read back."""
    from scaling.profile import write_profile

    if calibration is None:
        raise InputError(
            "--write-profile needs the fitted service model: target `llmfn dev` and keep --predict"
        )
    slots = status.pool.slots_per_worker if status else None
    written = write_profile(
        path,
        calibration.service_model(),
        slots,
        prediction.cold_start_s if prediction is not None else None,
        f"measured by llmfn load against {url}: service model fitted on {calibrated_on}; "
        "batch_slowdown is the default (not measured); cold start = mean measured worker start"
        + ("; lmi: measured on the account (--lmi)" if lmi else ""),
        lmi=lmi,
    )
    err_console.print(f"profile written to {written}", highlight=False)


def _print_table(
    summary: Any,
    instance_s: float | None,
    cold_starts: int | None,
    prediction: Any,
    calibration: Any,
    calibrated_on: str,
) -> None:
    table = Table(title="llmfn load: measured vs simulated")
    for column in ("metric", "measured", "simulator", "difference"):
        table.add_column(column, justify="right" if column != "metric" else "left")
    p = prediction
    rows = [
        ("TTFT p50", summary.ttft_p50_s, p and p.ttft_p50_s),
        ("TTFT p95", summary.ttft_p95_s, None),
        ("TTFT p99", summary.ttft_p99_s, p and p.ttft_p99_s),
        ("end-to-end p50", summary.e2e_p50_s, p and p.e2e_p50_s),
        ("end-to-end p95", summary.e2e_p95_s, None),
        ("end-to-end p99", summary.e2e_p99_s, p and p.e2e_p99_s),
    ]
    for name, measured, predicted in rows:
        table.add_row(name, _fmt(measured), _fmt(predicted), _diff(measured, predicted))
    table.add_row(
        "instance-seconds",
        _fmt(instance_s, ""),
        _fmt(p and p.instance_seconds, ""),
        _diff(instance_s, p and p.instance_seconds),
    )
    table.add_row(
        "worker cold starts",
        "-" if cold_starts is None else str(cold_starts),
        str(p.cold_starts) if p else "-",
        "",
    )
    table.add_row("requests that waited for one", str(summary.cold_starts_seen), "", "")
    table.add_row("answered / planned", f"{summary.answered} / {summary.planned}", "", "")
    table.add_row(
        "429 / 5xx / transport / dropped",
        f"{summary.rejected_429} / {summary.server_errors} / {summary.transport_errors} / {summary.dropped_by_client}",
        "",
        "",
    )
    console.print(table)
    if calibration is not None:
        cold = f"; simulated cold start {p.cold_start_s:.2f} s (mean measured)" if p else ""
        console.print(
            f"service model fitted on {calibrated_on}: overhead {calibration.overhead_s * 1000:.1f} ms, "
            f"prefill {calibration.prefill_tokens_per_s:,.0f} tok/s, "
            f"decode {calibration.decode_s_per_token * 1000:.2f} ms/token{cold}",
            highlight=False,
        )


def register(app: typer.Typer) -> None:
    app.command("load")(load)

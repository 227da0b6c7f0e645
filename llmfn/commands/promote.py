"""``llmfn promote``: move a model revision into production behind the stack's alias, from CI."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from core.contract import ENV_API_KEY


def register(app: typer.Typer) -> None:
    app.command("promote")(promote)


def promote(
    stack: str = typer.Option(
        ..., "--stack", help="Stack name; its outputs come from stack-outputs/NAME.json."
    ),
    model_revision: str = typer.Option(..., "--model-revision", help="The model revision to promote."),
    outputs: Path | None = typer.Option(
        None, "--outputs", help="`pulumi stack output --json` file (default: stack-outputs/STACK.json)."
    ),
    cloud: str | None = typer.Option(None, "--cloud", help="aws or tencent (over the stack outputs)."),
    function: str | None = typer.Option(None, "--function", help="Function name (over the stack outputs)."),
    alias: str | None = typer.Option(None, "--alias", help="Alias name (over the stack outputs)."),
    region: str | None = typer.Option(None, "--region", help="Region (over the stack outputs)."),
    namespace: str | None = typer.Option(None, "--namespace", help="SCF namespace (Tencent only)."),
    endpoint: str | None = typer.Option(
        None, "--endpoint", help="HTTP endpoint for the smoke request (over the outputs' endpointUrl)."
    ),
    api_endpoint: str | None = typer.Option(
        None, "--api-endpoint", help="Cloud API endpoint URL override (stand-ins, private endpoints)."
    ),
    steps: str = typer.Option("10,50,100", "--steps", help="Percent of traffic per step, ending at 100."),
    interval: float = typer.Option(
        300.0, "--interval", help="Seconds to wait after each shift before its gate."
    ),
    window: float = typer.Option(
        300.0, "--window", help="Metric window of each gate, seconds (multiple of 60)."
    ),
    max_error_rate: float = typer.Option(
        0.01, "--max-error-rate", help="Largest error rate a gate passes, 0-1."
    ),
    max_p95: float | None = typer.Option(
        None, "--max-p95", help="Largest P95 duration a gate passes, seconds."
    ),
    smoke_prompt: str = typer.Option(
        "Reply with the word OK.", "--smoke-prompt", help="Prompt of the smoke request."
    ),
    api_key_env: str = typer.Option(
        ENV_API_KEY, "--api-key-env", help="Environment variable holding the endpoint's bearer key."
    ),
    canary_capacity: int | None = typer.Option(
        None,
        "--canary-capacity",
        help="Provisioned instances for the new version (default: as many as the old one).",
    ),
    warm_timeout: float = typer.Option(
        900.0, "--warm-timeout", help="Longest wait for warm capacity, seconds."
    ),
    poll: float = typer.Option(5.0, "--poll", help="Seconds between readiness checks."),
    report: Path | None = typer.Option(None, "--report", help="Also write the JSON report to this file."),
) -> None:
    """Publish the new revision, warm it, shift traffic behind gates, then promote or roll back.

    Prints a JSON report; exits 1 on rollback. Re-run with the same arguments to resume an interrupted
    promotion.
    """
    import os

    from functions.cloud.connect import cloud_name
    from functions.cloud.retry import RetryPolicy
    from llmfn.release.gates import GateThresholds, SmokeCheck
    from llmfn.release.promotion import Promotion, PromotionPlan, parse_steps
    from llmfn.release.stack import resolve_stack

    plan = PromotionPlan(
        model_revision=model_revision,
        steps=parse_steps(steps),
        interval_s=interval,
        metrics_window_s=window,
        thresholds=GateThresholds(max_error_rate=max_error_rate, max_p95_s=max_p95),
        canary_capacity=canary_capacity,
        warm_timeout_s=warm_timeout,
        poll_s=poll,
    )
    resolved = resolve_stack(
        stack,
        outputs,
        cloud=cloud_name(cloud) if cloud else None,
        function=function,
        alias=alias,
        region=region,
        namespace=namespace,
        endpoint_url=endpoint,
        api_endpoint=api_endpoint,
    )
    retry = RetryPolicy()
    promotion = Promotion(
        control=resolved.target.control(retry),
        metrics=resolved.target.metrics(retry),
        plan=plan,
        smoke=SmokeCheck(
            prompt=smoke_prompt, endpoint_url=resolved.endpoint_url, api_key=os.environ.get(api_key_env)
        ),
    )
    result = promotion.run()
    text = json.dumps(result.as_dict(), indent=2)
    if report is not None:
        report.write_text(text + "\n")
    typer.echo(text)
    if not result.succeeded:
        raise typer.Exit(1)

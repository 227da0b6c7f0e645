"""``llmfn scale``: run the scaler (the same tick the deployed scaler function runs) from a shell."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from core.contract import ALIAS_NAME
from llmfn.commands.options import read_policy_config


def register(app: typer.Typer) -> None:
    app.command("scale")(scale)


def scale(
    cloud: str = typer.Option(..., "--cloud", help="aws or tencent (also: tencentcloud, scf, lambda)."),
    function: str = typer.Option(..., "--function", help="Function name."),
    alias: str = typer.Option(ALIAS_NAME, "--alias", help="Alias whose traffic is measured and scaled."),
    region: str = typer.Option(..., "--region", help="Cloud region, e.g. us-east-1 or ap-guangzhou."),
    namespace: str = typer.Option("default", "--namespace", help="SCF namespace (Tencent only)."),
    state_bucket: str = typer.Option(..., "--state-bucket", help="S3 / COS bucket of the scaler's state."),
    state_key: str = typer.Option("llmfn/scaler-state.json", "--state-key", help="Object key of the state."),
    state_endpoint: str | None = typer.Option(
        None, "--state-endpoint", help="S3 API endpoint URL of the state (default: S3 / the region's COS)."
    ),
    api_endpoint: str | None = typer.Option(
        None, "--api-endpoint", help="Cloud API endpoint URL override (stand-ins, private endpoints)."
    ),
    policy: str = typer.Option("hybrid", "--policy", help="Policy name (scaling.policies)."),
    policy_config: Path | None = typer.Option(
        None, "--policy-config", help="JSON file of the policy config (scaling.policies.PolicyConfig)."
    ),
    window: float = typer.Option(60.0, "--window", help="Tick and metric window, seconds (multiple of 60)."),
    utc_offset: float = typer.Option(
        0.0, "--utc-offset", help="Hours east of UTC of the policy's hourly rates."
    ),
    once: bool = typer.Option(False, "--once", help="Run one tick and exit (default: a tick every window)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the decision; write and change nothing."),
) -> None:
    """Read metrics, run the policy, keep its state in S3 / COS and set provisioned capacity; prints JSON per tick."""
    import time

    from functions.cloud.connect import CloudTarget, cloud_name
    from functions.scaler.run import Scaler
    from functions.scaler.settings import ScalerSettings

    name = cloud_name(cloud)
    target = CloudTarget(
        cloud=name,  # type: ignore[arg-type]
        function=function,
        alias=alias,
        region=region,
        namespace=namespace,
        endpoint=api_endpoint,
        **(CloudTarget.tencent_credentials() if name == "tencent" else {}),  # type: ignore[arg-type]
    )
    config = read_policy_config(policy_config)
    settings = ScalerSettings(
        target=target,
        state_bucket=state_bucket,
        state_key=state_key,
        state_endpoint=state_endpoint,
        policy=policy,
        policy_config=config,
        window_s=window,
        utc_offset_hours=utc_offset,
    )
    scaler = Scaler.from_settings(settings)
    while True:
        outcome = scaler.run_once(dry_run=dry_run)
        typer.echo(json.dumps(outcome.as_dict()))
        if once:
            return
        time.sleep(max(1.0, outcome.tick_end_s + window - time.time()))

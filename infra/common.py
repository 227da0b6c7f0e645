"""What both clouds' components share: the function's environment, the schedule and cost outputs."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi

from core import contract as c
from core.contract import ALIAS_NAME, DESCRIPTION_PREFIX
from core.errors import InputError
from infra.config import StackConfig

# re-exported: the components read the environment from here; infra.config checks its size too
from infra.environment import model_environment as model_environment
from layers import Artifact, BuildManifest, artifact_sizes, check_sizes, read_manifest
from layers.limits import PlatformLimits
from scaling.policies import compact, policy_config_for

ALIAS_DESCRIPTION = "traffic entry point; llmfn promote moves its version and weights"
# Alias properties `llmfn promote` owns after creation (infra/README.md, "One owner per setting").
ALIAS_PROMOTE_OWNED = ["functionVersion", "routingConfig"]
SECONDS_PER_HOUR = 3600
MB_PER_GB = 1024


@dataclass(frozen=True)
class CronAction:
    """From ``hour`` (profile time zone) on, keep ``instances`` reserved: the cloud's cron for it."""

    hour: int
    instances: int
    cron: str


def cron_actions(config: StackConfig, cron: Callable[[int, int], str]) -> list[CronAction]:
    """One action per schedule change, with the cloud's cron (``scf_cron`` or ``aws_cron``) in UTC."""
    return [
        CronAction(change.hour, change.instances, cron(change.hour, config.utc_offset_hours))
        for change in config.schedule_changes
    ]


def published_description(config: StackConfig, code: str | None = None) -> str:
    """The description of a version the stack publishes, in the form ``llmfn promote`` finds by revision:
    ``llmfn model-revision=REV`` (plus ``code=<12 hex of sha256(code id)>`` when ``code`` is given, so a
    new image publishes a new version)."""
    revision = config.model_revision or config.model_uri
    text = f"{DESCRIPTION_PREFIX}{revision}"
    if code is not None:
        text += f" code={hashlib.sha256(code.encode()).hexdigest()[:12]}"
    return text


def with_api_key(env: dict[str, str], config: StackConfig) -> pulumi.Input[dict[str, str]]:
    """``env`` plus ``LLMFN_API_KEY`` as a Pulumi secret when one is configured."""
    if config.api_key is None:
        return env
    secret = pulumi.Output.secret(config.api_key.get_secret_value())
    return secret.apply(lambda key: {**env, c.ENV_API_KEY: key})


def scaler_policy_config(config: StackConfig) -> dict[str, Any]:
    """The configured policy's configuration for the scaler (``scaling.policies.PolicyConfig``'s
    JSON mapping, the given values only), built and validated by ``policy_config_for``."""
    gpu = config.aws_gpu is not None
    return compact(
        policy_config_for(
            concurrency_per_instance=config.concurrency_per_instance,
            min_reserved=config.min_instances,
            max_reserved=config.max_instances,
            cold_start_s=config.profile_cold_start_s,
            rates_by_hour=config.hourly_rates,
            p95_latency_s=config.p95_latency_s,
            headroom=config.headroom,
            lmi_floor=gpu,  # the floor rule the stack's schedule uses
            burst_rates_by_hour=config.burst_rates_by_hour if gpu else None,
        )
    )


def scaler_environment(
    config: StackConfig, function_name: pulumi.Input[str], state_bucket: pulumi.Input[str] | None
) -> pulumi.Output[dict[str, str]]:
    """Environment of the scaler function, as ``functions.scaler.settings.ScalerSettings.from_env`` reads it."""
    static = {
        c.ENV_ROLE: c.ROLE_SCALER,
        c.ENV_CLOUD: c.cloud_name(config.cloud, "llmfn:cloud"),
        c.ENV_ALIAS: ALIAS_NAME,
        c.ENV_REGION: config.region,
        c.ENV_POLICY: config.policy,
        c.ENV_POLICY_CONFIG: json.dumps(scaler_policy_config(config), separators=(",", ":")),
        c.ENV_UTC_OFFSET_HOURS: str(config.utc_offset_hours),
        c.ENV_WINDOW_S: "60",
    }
    if config.aws_gpu is not None:  # Lambda Managed Instances: the floor is MinExecutionEnvironments
        static[c.ENV_RESERVED_CAPACITY] = c.EXECUTION_ENVIRONMENTS
    if config.cloud == "tencentcloud":
        static[c.ENV_NAMESPACE] = config.namespace
        # COS speaks the S3 API at this endpoint; the scaler keeps its state there.
        static[c.ENV_STATE_ENDPOINT] = f"https://cos.{config.region}.myqcloud.com"
    return pulumi.Output.all(function_name, state_bucket or "").apply(
        lambda parts: {
            **static,
            c.ENV_FUNCTION: parts[0],
            **({c.ENV_STATE_BUCKET: parts[1]} if parts[1] else {}),
        }
    )


def load_build(config: StackConfig, limits: PlatformLimits) -> tuple[Artifact, Artifact | None]:
    """The function package and runtime layer from ``llmfn:buildDir``, checked against the limits."""
    assert config.build_dir is not None
    manifest: BuildManifest = read_manifest(config.build_dir)
    expected = config.cloud
    if c.cloud_name(manifest.cloud, "manifest.json's cloud") != c.cloud_name(expected, "llmfn:cloud"):
        raise InputError(
            f"llmfn:buildDir = {str(config.build_dir)!r} holds a build for {manifest.cloud!r}, "
            f"this stack deploys to {config.cloud!r}: run `llmfn layer build --cloud {expected}`"
        )
    check_sizes(artifact_sizes(manifest.artifacts), limits)
    function = manifest.artifact("function")
    if function is None:
        raise InputError(f"llmfn:buildDir = {str(config.build_dir)!r} has no function package")
    _check_handlers_packed(config, function)
    return function, manifest.artifact("runtime_layer")


def _check_handlers_packed(config: StackConfig, function: Artifact) -> None:
    """The package holds only its entry points' import closure: a handler outside it could not start."""
    handlers = {"llmfn:handler": config.handler}
    if config.reserved_control == "scaler":
        handlers["llmfn:scalerHandler"] = config.scaler_entry_point
    packed = {entry.path for entry in function.files}
    for key, handler in handlers.items():
        module = c.handler_module(handler).replace(".", "/")
        if not {f"{module}.py", f"{module}/__init__.py"} & packed:
            raise ValueError(
                f"{key} = {handler!r}: its module is not in the function package in llmfn:buildDir = "
                f"{str(config.build_dir)!r} (it packs its entry points' imports only): run "
                f"`llmfn layer build --cloud aws --handler {handler}` (repeat --handler for each entry point)"
            )


def reserved_gb_seconds_per_day(config: StackConfig) -> float:
    """Provisioned GB-seconds a day the schedule reserves (memory x instances x 3600 s per hour)."""
    return sum(config.reserved_schedule) * config.memory_mb / MB_PER_GB * SECONDS_PER_HOUR


def stack_outputs(
    config: StackConfig,
    *,
    endpoint_url: pulumi.Input[str],
    function_name: pulumi.Input[str],
    alias_name: pulumi.Input[str],
    version: pulumi.Input[str],
    cron: Callable[[int, int], str],
) -> dict[str, Any]:
    """The outputs both clouds export, by name."""
    gb_s = reserved_gb_seconds_per_day(config)
    price = config.price_per_gb_s
    outputs: dict[str, Any] = {
        "cloud": config.cloud,
        "region": config.region,
        "endpointUrl": endpoint_url,
        "functionName": function_name,
        "aliasName": alias_name,
        "version": version,
        "reservedSchedule": config.reserved_schedule,
        "scheduleActions": [
            {"hour": a.hour, "instances": a.instances, "cron": a.cron} for a in cron_actions(config, cron)
        ],
        "reservedGbSecondsPerDay": gb_s,
        "estimatedReservedCostPerDay": None if price is None else round(gb_s * price, 4),
    }
    if config.aws_gpu is not None:  # Managed Instances bill environments (instances), not GB-s
        from scaling.providers import floor_cost_per_day, get_provider

        floor = floor_cost_per_day(config.reserved_schedule, get_provider("lambda-gpu"))  # = llmfn plan's
        outputs["reservedEnvironmentHoursPerDay"] = floor.environment_hours_per_day
        outputs["reservedCapacity"] = c.EXECUTION_ENVIRONMENTS  # what `llmfn promote --stack` moves
        outputs["estimatedReservedCostPerDay"] = floor.estimated_cost_per_day
    if config.cloud == "tencentcloud":
        outputs["namespace"] = config.namespace
    return outputs

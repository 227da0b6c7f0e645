"""One owner per cloud setting: who creates each setting llmfn touches and who alone changes it after.

The stack creates; afterwards exactly one writer moves each setting (the stack through ``pulumi up``,
``llmfn promote``, the scaler, or a native scheduled action), the others only read it, and Pulumi
ignores (``ignore_changes``) what another writer moves. ``infra/README.md`` shows this table; the
tests check the stacks and the runtime writers against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Writer = Literal["stack", "llmfn promote", "scaler", "scheduled actions", "Application Auto Scaling"]


@dataclass(frozen=True)
class Setting:
    """One cloud setting: ``resource`` is the Pulumi type token that creates it and ``property`` its
    input (camelCase, as ``ignore_changes`` names it); ``writer`` changes it after creation;
    ``cloud``: "aws", "tencentcloud" or "both"; ``when``: the stack option it depends on, if any."""

    name: str
    cloud: str
    resource: str
    property: str
    writer: Writer
    when: str = ""


SETTINGS: tuple[Setting, ...] = (
    # code and configuration
    Setting("code (image / zip)", "aws", "aws:lambda/function:Function", "imageUri", "stack"),
    Setting("code (image)", "tencentcloud", "tencentcloud:Scf/function:Function", "imageConfigs", "stack"),
    Setting("environment", "aws", "aws:lambda/function:Function", "environment", "stack"),
    Setting("environment", "tencentcloud", "tencentcloud:Scf/function:Function", "environment", "stack"),
    # versions: published by the stack on each change of what a version freezes
    Setting("published version", "aws", "aws:lambda/function:Function", "publish", "stack"),
    Setting(
        "published version",
        "tencentcloud",
        "tencentcloud:Scf/functionVersion:FunctionVersion",
        "description",
        "stack",
    ),
    # the alias: created by the stack on its first version, moved by promotions only
    Setting("alias version", "aws", "aws:lambda/alias:Alias", "functionVersion", "llmfn promote"),
    Setting("alias weights", "aws", "aws:lambda/alias:Alias", "routingConfig", "llmfn promote"),
    Setting(
        "alias version",
        "tencentcloud",
        "tencentcloud:Scf/functionAlias:FunctionAlias",
        "functionVersion",
        "llmfn promote",
    ),
    Setting(
        "alias weights",
        "tencentcloud",
        "tencentcloud:Scf/functionAlias:FunctionAlias",
        "routingConfig",
        "llmfn promote",
    ),
    # reserved capacity (AWS: alias-level provisioned concurrency through Application Auto Scaling)
    Setting(
        "reserved floor (MinCapacity)",
        "aws",
        "aws:appautoscaling/target:Target",
        "minCapacity",
        "scaler",
        "reservedControl=scaler",
    ),
    Setting(
        "reserved floor (MinCapacity)",
        "aws",
        "aws:appautoscaling/target:Target",
        "minCapacity",
        "scheduled actions",
        "reservedControl=schedule",
    ),
    Setting(
        "reserved ceiling (MaxCapacity)", "aws", "aws:appautoscaling/target:Target", "maxCapacity", "stack"
    ),
    Setting(
        "provisioned amount",
        "aws",
        "aws:lambda/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig",
        "provisionedConcurrentExecutions",
        "Application Auto Scaling",
    ),
    Setting(
        "utilisation tracking",
        "aws",
        "aws:appautoscaling/policy:Policy",
        "targetTrackingScalingPolicyConfiguration",
        "stack",
    ),
    Setting(
        "schedule",
        "aws",
        "aws:appautoscaling/scheduledAction:ScheduledAction",
        "schedule",
        "stack",
        "reservedControl=schedule",
    ),
    # reserved capacity (AWS GPU, Lambda Managed Instances: per published version; llmfn:gpu)
    Setting(
        "reserved floor (MinExecutionEnvironments)",
        "aws",
        "aws:lambda/functionScalingConfig:FunctionScalingConfig",
        "functionScalingConfig.minExecutionEnvironments",
        "scaler",
        "llmfn:gpu",
    ),
    Setting(
        "reserved ceiling (MaxExecutionEnvironments)",
        "aws",
        "aws:lambda/functionScalingConfig:FunctionScalingConfig",
        "functionScalingConfig.maxExecutionEnvironments",
        "stack",
        "llmfn:gpu",
    ),
    Setting(
        "accelerator memory (and the version published with it)",
        "aws",
        "pulumi-python:dynamic:Resource",
        "accelerator_memory_gb",
        "stack",
        "llmfn:gpu",
    ),
    # reserved capacity (SCF: per version, created and moved by the scaler; no stack resource)
    Setting(
        "provisioned config of the alias's version",
        "tencentcloud",
        "",
        "",
        "scaler",
        "promote holds a new version's config until the alias points at it alone",
    ),
    # routes
    Setting("API routes", "aws", "aws:apigatewayv2/route:Route", "routeKey", "stack"),
    Setting(
        "HTTP endpoint (function URL)",
        "tencentcloud",
        "pulumi-python:dynamic:Resource",
        "qualifier",
        "stack",
    ),
    Setting(
        "scaler single flight (reserved concurrency = its memory)",
        "tencentcloud",
        "tencentcloud:Scf/reservedConcurrencyConfig:ReservedConcurrencyConfig",
        "reservedConcurrencyMem",
        "stack",
    ),
    Setting(
        "requests per instance (InstanceConcurrencyConfig)",
        "tencentcloud",
        "pulumi-python:dynamic:Resource",
        "max_concurrency",
        "stack",
    ),
)


def ignored_by_stack(cloud: str, reserved_control: str) -> dict[str, set[str]]:
    """Per resource type, the properties the stack must ignore after creation (another writer's)."""
    ignored: dict[str, set[str]] = {}
    for setting in SETTINGS:
        if setting.cloud not in (cloud, "both") or not setting.resource or setting.writer == "stack":
            continue
        if (
            setting.when.startswith("reservedControl=")
            and setting.when != f"reservedControl={reserved_control}"
        ):
            continue
        ignored.setdefault(setting.resource, set()).add(setting.property)
    return ignored


def markdown_table() -> str:
    """The table as ``infra/README.md`` shows it."""
    rows = [
        "| setting | cloud | created by (resource . property) | changed afterwards by |",
        "|---|---|---|---|",
    ]
    for s in SETTINGS:
        where = (
            f"`{s.resource.split(':')[-1]}.{s.property}`" if s.resource else "the scaler (no stack resource)"
        )
        writer = s.writer + (f" ({s.when})" if s.when else "")
        rows.append(f"| {s.name} | {s.cloud} | {where} | {writer} |")
    return "\n".join(rows)

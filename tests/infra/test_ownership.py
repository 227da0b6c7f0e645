"""One owner per setting, in both stacks: what another writer moves, Pulumi ignores; what the stack
owns, it never ignores; the schedule and the scaler never both drive one target."""

from __future__ import annotations

import inspect
import json

import pytest

from infra.ownership import SETTINGS, ignored_by_stack, markdown_table
from tests.infra.mocks import REPO_ROOT, StackRun, example_with, run_stack

EXAMPLES = {
    ("aws", "scaler"): ("Pulumi.example-aws.yaml", {}),
    ("aws", "schedule"): ("Pulumi.example-aws.yaml", {"reservedControl": "schedule"}),
    ("tencentcloud", "scaler"): ("Pulumi.example-tencent.yaml", {}),
    ("aws", "gpu"): ("Pulumi.example-aws-gpu.yaml", {}),  # the scaler moves MinExecutionEnvironments
}


def _run(cloud: str, mode: str) -> StackRun:
    file_name, changes = EXAMPLES[(cloud, mode)]
    return run_stack(example_with(file_name, **changes))


@pytest.mark.parametrize(("cloud", "mode"), sorted(EXAMPLES))
def test_no_two_writers_on_one_setting(cloud: str, mode: str) -> None:
    run = _run(cloud, mode)
    must_ignore = ignored_by_stack(cloud, mode)
    stack_owned = {
        (s.resource, s.property)
        for s in SETTINGS
        if s.cloud in (cloud, "both") and s.writer == "stack" and s.resource
    }
    for resource in run.registered:
        expected = must_ignore.get(resource.typ, set())
        assert expected <= resource.ignore_changes, f"{resource.name}: another writer moves {expected}"
        for prop in resource.ignore_changes:
            assert (resource.typ, prop) not in stack_owned, f"{resource.name}.{prop} is the stack's own"
            assert prop in expected, f"{resource.name} ignores {prop}, which no other writer owns"

    functions = [r.name for r in run.registered if r.typ.endswith("function:Function")]
    scheduled = [r for r in run.registered if r.typ == "aws:appautoscaling/scheduledAction:ScheduledAction"]
    scaler = "llmfn-scaler" in functions
    assert scaler == (mode in ("scaler", "gpu")) and not (scaler and scheduled)  # never both on one target
    for action in scheduled:  # a scheduled action moves the floor only; MaxCapacity is the stack's
        assert set(action.inputs["scalableTargetAction"]) == {"minCapacity"}
    if cloud == "tencentcloud":  # the scaler owns each version's provisioned config
        assert not [r for r in run.registered if "provisionedConcurrencyConfig" in r.typ]


def test_the_scaler_may_do_what_it_owns_and_no_more() -> None:
    """AWS scaler role: the floor (RegisterScalableTarget) and pre-warm invokes; nothing that deletes."""
    run = _run("aws", "scaler")
    policy = json.loads(
        next(r for r in run.registered if r.typ == "aws:iam/rolePolicy:RolePolicy").inputs["policy"]
    )
    actions = {a for s in policy["Statement"] for a in s["Action"]}
    assert "lambda:InvokeFunction" in actions
    assert not {a for a in actions if a.startswith("application-autoscaling:") and "Deregister" in a}
    assert "application-autoscaling:*" not in actions


def test_the_readme_shows_the_ownership_table() -> None:
    readme = (REPO_ROOT / "infra" / "README.md").read_text()
    assert markdown_table() in readme


def _input_names() -> dict[str, set[str]]:
    """Per resource type token: the input property names (camelCase) its installed SDK declares."""
    from pulumi import _types
    from pulumi_aws import apigatewayv2, appautoscaling, lambda_
    from tencentcloud_iac_pulumi import apigateway, scf

    args = {
        "aws:lambda/function:Function": lambda_.FunctionArgs,
        "aws:lambda/alias:Alias": lambda_.AliasArgs,
        "aws:lambda/functionScalingConfig:FunctionScalingConfig": lambda_.FunctionScalingConfigArgs,
        "aws:lambda/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig": (
            lambda_.ProvisionedConcurrencyConfigArgs
        ),
        "aws:appautoscaling/target:Target": appautoscaling.TargetArgs,
        "aws:appautoscaling/policy:Policy": appautoscaling.PolicyArgs,
        "aws:appautoscaling/scheduledAction:ScheduledAction": appautoscaling.ScheduledActionArgs,
        "aws:apigatewayv2/route:Route": apigatewayv2.RouteArgs,
        "tencentcloud:Scf/function:Function": scf.FunctionArgs,
        "tencentcloud:Scf/functionVersion:FunctionVersion": scf.FunctionVersionArgs,
        "tencentcloud:Scf/functionAlias:FunctionAlias": scf.FunctionAliasArgs,
        "tencentcloud:Scf/layer:Layer": scf.LayerArgs,
        "tencentcloud:Scf/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig": (
            scf.ProvisionedConcurrencyConfigArgs
        ),
        "tencentcloud:ApiGateway/api:Api": apigateway.ApiArgs,
        "tencentcloud:Scf/reservedConcurrencyConfig:ReservedConcurrencyConfig": scf.ReservedConcurrencyConfigArgs,
    }
    names = {typ: set(_types.input_type_py_to_pulumi_names(cls).values()) for typ, cls in args.items()}
    # nested inputs that an ignore_changes path names as "outer.inner"
    nested = {
        ("aws:lambda/functionScalingConfig:FunctionScalingConfig", "functionScalingConfig"): (
            lambda_.FunctionScalingConfigFunctionScalingConfigArgs
        ),
    }
    for (typ, outer), cls in nested.items():
        names[typ] |= {f"{outer}.{inner}" for inner in _types.input_type_py_to_pulumi_names(cls).values()}
    # our dynamic resources (infra.clouds.aws.gpu.accelerator, infra.clouds.tencent.scf_dynamic): their inputs are its constructor's keyword arguments
    from infra.clouds.aws.gpu.accelerator import LambdaAcceleratorConfig
    from infra.clouds.tencent.scf_dynamic import ScfFunctionUrl, ScfInstanceConcurrency

    names["pulumi-python:dynamic:Resource"] = {
        parameter
        for resource in (LambdaAcceleratorConfig, ScfFunctionUrl, ScfInstanceConcurrency)
        for parameter in inspect.signature(resource.__init__).parameters
    } - {"self", "name", "opts"}
    return names


def test_every_named_property_exists_in_the_provider_sdk() -> None:
    """Pulumi silently ignores an ``ignore_changes`` path that names no property, so a misspelt one
    (``min_capacity`` vs ``minCapacity`` is fine, ``minCapacities`` is not) would let the stack fight
    the setting's owner without any test noticing. Every property the stacks ignore, the ownership
    table names, or the provider-semantics table cites must be an input of that resource type in the
    installed SDK (pulumi-aws, tencentcloud-iac-pulumi)."""
    from infra.clouds.tencent.provider_semantics import RULES

    names = _input_names()
    named: set[tuple[str, str]] = {(s.resource, s.property) for s in SETTINGS if s.resource}
    named |= {(r.resource, r.property) for r in RULES if r.property != "*"}
    for cloud, mode in sorted(EXAMPLES):
        for resource in _run(cloud, mode).registered:
            named |= {(resource.typ, prop) for prop in resource.ignore_changes}
    for typ, prop in sorted(named):
        assert typ in names, f"{typ}: add its Args class to _input_names"
        assert prop in names[typ], f"{typ} has no input {prop!r}: {sorted(names[typ])}"

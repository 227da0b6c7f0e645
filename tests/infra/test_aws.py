"""The AWS example stack under Pulumi's mocks: the full graph, the inputs that matter, the outputs."""

from __future__ import annotations

import base64
import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from functions.scaler.settings import ScalerSettings
from scaling.forecasting import forecast_profile
from scaling.plan import aws_cron, hourly_schedule
from scaling.policies import PolicyConfig
from scaling.traces import read_trace
from tests.infra.mocks import (
    StackRun,
    build_with_layer,
    example_config,
    example_with,
    parse_example,
    plain,
    run_stack,
)

EXAMPLE = "Pulumi.example-aws.yaml"
FUNCTION = "aws:lambda/function:Function"
ALIAS = "aws:lambda/alias:Alias"
TARGET = "aws:appautoscaling/target:Target"
SCHEDULED = "aws:appautoscaling/scheduledAction:ScheduledAction"
PERMISSION = "aws:lambda/permission:Permission"


@pytest.fixture(scope="module")
def example() -> StackRun:
    return run_stack(example_config(EXAMPLE))


def _config(**changes: Any) -> dict[str, Any]:
    return example_with(EXAMPLE, **changes)


def _named(run: StackRun, typ: str, name: str) -> dict[str, Any]:
    return next(r.inputs for r in run.of_type(typ) if r.name == name)


def _schedule() -> list[int]:
    config = parse_example(example_config(EXAMPLE))
    return hourly_schedule(config.rates_by_hour, config.rule)


def test_full_resource_graph(example: StackRun) -> None:
    expected = Counter(
        {
            "llmfn:aws:InferenceStack": 1,
            "pulumi:providers:aws": 1,
            "aws:iam/role:Role": 2,
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment": 2,
            "aws:iam/rolePolicy:RolePolicy": 1,
            FUNCTION: 2,
            ALIAS: 1,
            "aws:lambda/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig": 1,
            TARGET: 1,
            "aws:appautoscaling/policy:Policy": 1,
            "aws:apigatewayv2/api:Api": 1,
            "aws:apigatewayv2/integration:Integration": 1,
            "aws:apigatewayv2/route:Route": 2,
            "aws:apigatewayv2/stage:Stage": 1,
            PERMISSION: 2,
            "aws:s3/bucket:Bucket": 1,
            "aws:cloudwatch/eventRule:EventRule": 1,
            "aws:cloudwatch/eventTarget:EventTarget": 1,
            "aws:cloudwatch/metricAlarm:MetricAlarm": 2,
        }
    )
    assert Counter(r.typ for r in example.registered) == expected
    assert example.one("pulumi:providers:aws").inputs["region"] == "us-east-1"


def test_image_function_published_with_the_model_revision(example: StackRun) -> None:
    config = example_config(EXAMPLE)
    function = _named(example, FUNCTION, "llmfn-function")
    assert (function["name"], function["packageType"]) == ("qwen3-small-infer", "Image")
    assert function["imageUri"] == config["llmfn:imageUri"]
    assert (function["memorySize"], function["timeout"]) == (10240, 120)
    assert function["ephemeralStorage"] == {"size": 10240}
    assert function["publish"] is True
    # every version Lambda publishes says which revision it serves: what `llmfn promote` looks for
    assert function["description"] == f"llmfn model-revision={config['llmfn:modelRevision']}"
    env = plain(function["environment"])["variables"]
    assert env["LLMFN_MODEL_REVISION"] == config["llmfn:modelRevision"]
    assert env["LLMFN_MODEL_SOURCE"] == "Qwen/Qwen3-0.6B"
    assert function["role"].endswith(":role/llmfn-function-role")


def test_alias_and_provisioned_concurrency(example: StackRun) -> None:
    alias = example.one(ALIAS).inputs
    assert (alias["name"], alias["functionVersion"], alias["functionName"]) == (
        "live",
        example.outputs["version"],
        "qwen3-small-infer",
    )
    assert "routingConfig" not in alias
    # created on the stack's first version; llmfn promote moves it afterwards
    assert example.one(ALIAS).ignore_changes == {"functionVersion", "routingConfig"}
    provisioned = example.one("aws:lambda/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig").inputs
    assert provisioned["qualifier"] == "live" != "$LATEST"
    assert provisioned["provisionedConcurrentExecutions"] == max(1, min(_schedule()))


def test_autoscaling_target_and_tracking_with_the_scaler_owning_the_floor(example: StackRun) -> None:
    schedule = _schedule()
    target = example.one(TARGET)
    assert target.inputs["serviceNamespace"] == "lambda"
    assert target.inputs["scalableDimension"] == "lambda:function:ProvisionedConcurrency"
    assert target.inputs["resourceId"] == "function:qwen3-small-infer:live"
    assert (target.inputs["minCapacity"], target.inputs["maxCapacity"]) == (min(schedule), 30)
    assert target.ignore_changes == {"minCapacity"}  # the scaler moves it; MaxCapacity stays the stack's

    policy = example.one("aws:appautoscaling/policy:Policy").inputs
    assert policy["policyType"] == "TargetTrackingScaling"
    tracking = policy["targetTrackingScalingPolicyConfiguration"]
    assert tracking["targetValue"] == 0.7
    assert (
        tracking["predefinedMetricSpecification"]["predefinedMetricType"]
        == "LambdaProvisionedConcurrencyUtilization"
    )
    assert policy["resourceId"] == "function:qwen3-small-infer:live"
    assert example.of_type(SCHEDULED) == []  # reservedControl = scaler: no second writer


def test_schedule_mode_uses_native_scheduled_actions_and_no_scaler() -> None:
    run = run_stack(_config(reservedControl="schedule"))
    schedule = _schedule()
    actions = {int(r.name[-2:]): r.inputs for r in run.of_type(SCHEDULED)}
    assert set(actions) == {h for h in range(24) if schedule[h] != schedule[h - 1]}
    for hour, action in actions.items():
        assert action["schedule"] == aws_cron(hour, -5)
        assert action["scalableTargetAction"] == {"minCapacity": schedule[hour]}  # never the maximum
        assert action["resourceId"] == "function:qwen3-small-infer:live"
    assert actions[0]["schedule"] == "cron(0 5 * * ? *)"  # local midnight at UTC-5
    assert [r.name for r in run.of_type(FUNCTION)] == ["llmfn-function"]  # no scaler function
    assert run.of_type("aws:cloudwatch/eventRule:EventRule") == []


def test_http_api_to_the_alias(example: StackRun) -> None:
    integration = example.one("aws:apigatewayv2/integration:Integration").inputs
    assert integration["integrationType"] == "AWS_PROXY"
    assert integration["integrationUri"].endswith("function:qwen3-small-infer:live/invocations")
    assert integration["payloadFormatVersion"] == "2.0"
    assert integration["timeoutMilliseconds"] == 30_000  # HTTP APIs stop at 30 s
    routes = {r.inputs["routeKey"]: r.inputs for r in example.of_type("aws:apigatewayv2/route:Route")}
    assert set(routes) == {"ANY /v1/{proxy+}", "GET /healthz"}  # nothing else is public
    assert all(r["target"] == "integrations/llmfn-integration-id" for r in routes.values())
    stage = example.one("aws:apigatewayv2/stage:Stage").inputs
    assert (stage["name"], stage["autoDeploy"]) == ("$default", True)
    invoke = _named(example, PERMISSION, "llmfn-api-invoke")
    assert (invoke["principal"], invoke["qualifier"], invoke["function"]) == (
        "apigateway.amazonaws.com",
        "live",
        "qwen3-small-infer",
    )
    assert invoke["sourceArn"].endswith(":abc123/*/*")


def test_scaler_on_an_eventbridge_schedule(example: StackRun) -> None:
    scaler = _named(example, FUNCTION, "llmfn-scaler")
    assert scaler["name"] == "qwen3-small-scaler"
    assert scaler["imageConfig"] == {"commands": ["functions.scaler.handler.lambda_handler"]}
    # the scaler reads exactly this environment (functions.scaler.settings)
    settings = ScalerSettings.from_env(plain(scaler["environment"])["variables"])
    assert (settings.target.cloud, settings.target.function, settings.target.alias) == (
        "aws",
        "qwen3-small-infer",
        "live",
    )
    assert settings.target.region == "us-east-1"
    assert settings.state_bucket == "qwen3-small-scaler-0001"
    assert (settings.policy, settings.utc_offset_hours) == ("hybrid", -5)
    policy = PolicyConfig.from_mapping(dict(settings.policy_config))
    assert (policy.concurrency_per_instance, policy.min_reserved, policy.max_reserved) == (1, 0, 30)
    assert (policy.hybrid.p95_latency_s, policy.hybrid.headroom) == (4.0, 0.2)
    rule = example.one("aws:cloudwatch/eventRule:EventRule").inputs
    assert rule["scheduleExpression"] == "rate(1 minute)"
    target = example.one("aws:cloudwatch/eventTarget:EventTarget").inputs
    assert target["arn"].endswith(":function:qwen3-small-scaler")
    invoke = _named(example, PERMISSION, "llmfn-scaler-invoke")
    assert invoke["principal"] == "events.amazonaws.com"
    assert invoke["sourceArn"].endswith(":rule:llmfn-scaler-schedule")
    policy = json.loads(example.one("aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    actions = {a for s in policy["Statement"] for a in s["Action"]}
    assert {
        "application-autoscaling:RegisterScalableTarget",
        "application-autoscaling:DescribeScalableTargets",
        "cloudwatch:GetMetricStatistics",
        "s3:PutObject",
    } <= actions
    # defect 4: pre-warm invokes the function (every qualifier of it)
    (invoke_statement,) = [s for s in policy["Statement"] if s["Action"] == ["lambda:InvokeFunction"]]
    assert invoke_statement["Resource"] == [
        "arn:aws:lambda:us-east-1:123456789012:function:qwen3-small-infer",
        "arn:aws:lambda:us-east-1:123456789012:function:qwen3-small-infer:*",
    ]


def test_scaler_may_list_its_bucket_so_a_missing_state_reads_as_absent(example: StackRun) -> None:
    """S3 GetObject (API reference): "If you don't have the s3:ListBucket permission, Amazon S3 returns
    an HTTP status code 403 Access Denied error" for a key that does not exist. The scaler's first tick
    reads a state object that does not exist yet; only a 404 (NoSuchKey) means "start fresh"
    (functions/cloud/state.py), so without s3:ListBucket on the bucket every tick fails."""
    policy = json.loads(example.one("aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    (objects,) = [s for s in policy["Statement"] if "s3:GetObject" in s["Action"]]
    bucket_arn = objects["Resource"].removesuffix("/*")
    assert (
        bucket_arn.startswith("arn:aws:s3:::qwen3-small-scaler-") and objects["Resource"] == bucket_arn + "/*"
    )
    listing = [s for s in policy["Statement"] if "s3:ListBucket" in s["Action"]]
    # ListBucket is a bucket action: its resource is the bucket's ARN, not the objects'
    assert [s["Resource"] for s in listing] == [bucket_arn]


def test_alarms_on_errors_and_p95_duration(example: StackRun) -> None:
    alarms = {r.name: r.inputs for r in example.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    errors, p95 = alarms["llmfn-errors"], alarms["llmfn-p95-duration"]
    dimensions = {"FunctionName": "qwen3-small-infer", "Resource": "qwen3-small-infer:live"}
    assert (errors["metricName"], errors["statistic"], errors["threshold"]) == ("Errors", "Sum", 5)
    assert errors["dimensions"] == dimensions
    assert (p95["metricName"], p95["extendedStatistic"]) == ("Duration", "p95")
    assert p95["threshold"] == 4000.0  # llmfn:p95LatencyS in milliseconds
    assert p95["dimensions"] == dimensions


def test_outputs(example: StackRun) -> None:
    outputs = example.outputs
    assert outputs["endpointUrl"] == "https://abc123.execute-api.us-east-1.amazonaws.com/"
    assert (outputs["functionName"], outputs["aliasName"]) == ("qwen3-small-infer", "live")
    assert outputs["version"] == example.one(ALIAS).inputs["functionVersion"]
    assert outputs["reservedSchedule"] == _schedule()
    assert outputs["scheduleActions"][0] == {"hour": 0, "instances": 1, "cron": "cron(0 5 * * ? *)"}
    # Lambda's provisioned price: 10 GB x instance-hours x 3600 s x $0.0000041667
    expected = 10 * sum(_schedule()) * 3600 * 0.0000041667
    assert outputs["estimatedReservedCostPerDay"] == pytest.approx(expected, abs=1e-4)


def test_zip_package_with_runtime_layer(tmp_path: Path) -> None:
    build_dir = tmp_path / "build"
    manifest = build_with_layer("aws", build_dir)
    run = run_stack(_config(imageUri=None, buildDir=str(build_dir)))
    layer = run.one("aws:lambda/layerVersion:LayerVersion").inputs
    layer_sha = manifest.artifact("runtime_layer").sha256
    assert layer["sourceCodeHash"] == base64.b64encode(bytes.fromhex(layer_sha)).decode()
    assert layer["compatibleRuntimes"] == ["python3.11"]
    function = _named(run, FUNCTION, "llmfn-function")
    assert (function["packageType"], function["runtime"]) == ("Zip", "python3.11")
    assert function["handler"] == "functions.cloud.aws.entry.handler"
    assert function["layers"] == ["arn:aws:lambda:us-east-1:123456789012:layer:qwen3-small-runtime:1"]
    function_sha = manifest.artifact("function").sha256
    assert function["sourceCodeHash"] == base64.b64encode(bytes.fromhex(function_sha)).decode()
    assert _named(run, FUNCTION, "llmfn-scaler")["handler"] == "functions.scaler.handler.lambda_handler"


def test_relative_config_paths_are_the_projects_not_the_programs_cwd(
    tmp_path: Path, traces_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``main: infra/`` makes Pulumi run the program in infra/ (getPwdMain: "if maininfo.IsDir() { pwd
    = main }"): llmfn:buildDir, llmfn:trafficTrace and llmfn:profile written relative, as the README
    does, are still found from the project directory the engine passes (Pulumi.yaml's)."""
    project = tmp_path / "project"
    manifest = build_with_layer("aws", project / "build" / "layers" / "aws")
    trace = traces_dir / "servegen_m-large_per_10min.csv"
    (project / "traces").mkdir()
    shutil.copyfile(trace, project / "traces" / "day.csv")
    (project / "profile.toml").write_text("[cold_start]\nload_s = 2.0\nengine_start_s = 1.5\n")
    (project / "infra").mkdir()
    monkeypatch.chdir(project / "infra")  # where the engine runs the program; nothing of ours is here
    config = _config(
        imageUri=None,
        buildDir="build/layers/aws",
        ratesByHour=None,
        trafficTrace="traces/day.csv",
        profile="profile.toml",
        maxInstances=1000,
    )
    run = run_stack(config, root=project)
    function = _named(run, FUNCTION, "llmfn-function")
    function_sha = manifest.artifact("function").sha256
    assert function["sourceCodeHash"] == base64.b64encode(bytes.fromhex(function_sha)).decode()
    rule = parse_example(
        example_with(EXAMPLE, ratesByHour=None, trafficTrace=str(trace), maxInstances=1000)
    ).rule
    assert run.outputs["reservedSchedule"] == hourly_schedule(
        forecast_profile(read_trace(trace)).rates_by_hour, rule
    )
    scaler = ScalerSettings.from_env(plain(_named(run, FUNCTION, "llmfn-scaler")["environment"])["variables"])
    assert dict(scaler.policy_config)["cold_start_s"] == 3.5  # the profile's 2.0 + 1.5 s


def test_absolute_config_paths_are_kept(tmp_path: Path) -> None:
    build_dir = tmp_path / "build"
    build_with_layer("aws", build_dir)
    config = parse_example(_config(imageUri=None, buildDir=str(build_dir)))
    assert config.build_dir == build_dir


def test_no_reserved_capacity_means_no_provisioned_config() -> None:
    run = run_stack(_config(ratesByHour=[0.0] * 24))
    assert run.of_type("aws:lambda/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig") == []
    assert run.one(TARGET).inputs["minCapacity"] == 0


def test_outputs_are_what_llmfn_promote_reads(example: StackRun, tmp_path: Path) -> None:
    """`pulumi stack output --json` of this stack is enough for `llmfn promote --stack NAME`."""
    import json

    from llmfn.release.stack import resolve_stack

    outputs_file = tmp_path / "prod.json"
    outputs_file.write_text(json.dumps(example.outputs))
    resolved = resolve_stack("prod", outputs_file)
    assert (resolved.target.cloud, resolved.target.region) == ("aws", "us-east-1")
    assert (resolved.target.function, resolved.target.alias) == ("qwen3-small-infer", "live")
    assert resolved.endpoint_url == example.outputs["endpointUrl"]


def test_the_longest_stack_name_still_deploys_the_scaler_bucket() -> None:
    """pulumi-aws s3.Bucket: bucket_prefix "Must be lowercase and less than or equal to 37 characters in
    length" (the mocks refuse a longer one, as the provider does); llmfn:name may be 40 characters."""
    name = "a" * 39 + "z"
    run = run_stack(example_with(EXAMPLE, name=name))
    prefix = run.one("aws:s3/bucket:Bucket").inputs["bucketPrefix"]
    assert len(prefix) <= 37 and prefix.startswith("a" * 20) and prefix.endswith("-scaler-")


@pytest.mark.parametrize(
    ("key", "setting"),
    [("handler", "llmfn:handler"), ("scalerHandler", "llmfn:scalerHandler")],
)
def test_a_handler_the_zip_does_not_hold_is_refused(key: str, setting: str, tmp_path: Path) -> None:
    """The package holds its entry points' imports only (layers/closure.py): a handler outside them
    would fail on Lambda's first invocation, so the deploy stops and says how to build for it."""
    build_dir = tmp_path / "build"
    build_with_layer("aws", build_dir)
    handler = "scaling.simulate.handler"
    with pytest.raises(
        ValueError, match=rf"{setting} = '{handler}': its module is not in the function package"
    ) as raised:
        run_stack(_config(imageUri=None, buildDir=str(build_dir), **{key: handler}))
    assert f"llmfn layer build --cloud aws --handler {handler}" in str(raised.value)

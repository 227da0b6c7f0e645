"""The Tencent Cloud example stack under Pulumi's mocks: the full graph, the inputs that matter, the outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from functions.scaler.settings import ScalerSettings
from infra.config import parse_stack_config
from layers import BuildRequest, build_packages
from scaling.plan import hourly_schedule, scf_cron
from scaling.policies import PolicyConfig
from tests.infra.mocks import (
    REPO_ROOT,
    SCF_VERSION,
    TENCENT_SUBDOMAIN,
    StackRun,
    build_with_layer,
    example_config,
    example_with,
    run_stack,
)

EXAMPLE = "Pulumi.example-tencent.yaml"
FUNCTION = "tencentcloud:Scf/function:Function"
VERSION = "tencentcloud:Scf/functionVersion:FunctionVersion"
ALIAS = "tencentcloud:Scf/functionAlias:FunctionAlias"
PROVISIONED = "tencentcloud:Scf/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig"
SECRET_SIG = "4dabf18193072939515e22adb298388d"  # how the engine marks a secret value in inputs


@pytest.fixture(scope="module")
def example() -> StackRun:
    return run_stack(example_config(EXAMPLE))


def _config(**changes: Any) -> dict[str, Any]:
    return example_with(EXAMPLE, **changes)


def _function(run: StackRun, name: str = "llmfn-function") -> dict[str, Any]:
    return next(r.inputs for r in run.of_type(FUNCTION) if r.name == name)


def test_full_resource_graph(example: StackRun) -> None:
    assert sorted((r.typ, r.name) for r in example.registered) == sorted(
        [
            ("llmfn:tencentcloud:InferenceStack", "llmfn"),
            ("pulumi:providers:tencentcloud", "llmfn-provider"),
            (FUNCTION, "llmfn-function"),
            (VERSION, "llmfn-version"),
            (ALIAS, "llmfn-alias"),
            (PROVISIONED, "llmfn-provisioned"),
            ("tencentcloud:ApiGateway/service:Service", "llmfn-gateway"),
            ("tencentcloud:ApiGateway/api:Api", "llmfn-api"),
            ("tencentcloud:ApiGateway/serviceRelease:ServiceRelease", "llmfn-release"),
            (FUNCTION, "llmfn-scaler"),
        ]
    )
    assert example.one("pulumi:providers:tencentcloud").inputs["region"] == "ap-guangzhou"


def test_image_web_function_on_port_9000_with_the_model_revision(example: StackRun) -> None:
    config = example_config(EXAMPLE)
    function = _function(example)
    assert function["name"] == "qwen3-4b-infer"
    assert function["funcType"] == "HTTP"
    assert (function["memSize"], function["timeout"]) == (16384, 300)
    (image,) = function["imageConfigs"]
    assert image["imagePort"] == 9000
    assert image["imageUri"] == config["llmfn:imageUri"]
    env = function["environment"]
    assert env["LLMFN_MODEL_REVISION"] == config["llmfn:modelRevision"]
    assert env["LLMFN_MODEL_SOURCE"] == "Qwen/Qwen3-4B-Instruct-2507"
    assert (env["LLMFN_HOST"], env["LLMFN_PORT"]) == ("0.0.0.0", "9000")
    assert "LLMFN_API_KEY" not in env
    assert function["tags"]["llmfn-gpu"] == "A10"


def test_version_and_alias(example: StackRun) -> None:
    version = example.one(VERSION).inputs
    assert version["functionName"] == "qwen3-4b-infer"
    config = example_config(EXAMPLE)
    # a new model revision or image changes what the version freezes, so a new version is published
    assert config["llmfn:modelRevision"] in version["description"]
    assert config["llmfn:imageUri"] in version["description"]
    alias = example.one(ALIAS).inputs
    assert (alias["name"], alias["functionVersion"]) == ("live", SCF_VERSION)
    assert "routingConfig" not in alias


def test_provisioned_concurrency_on_the_alias_version_with_schedule_and_tracking(example: StackRun) -> None:
    config = parse_stack_config(example_config(EXAMPLE))
    provisioned = example.one(PROVISIONED).inputs
    assert provisioned["qualifier"] == SCF_VERSION != "$LATEST"
    assert provisioned["provisionedType"] == "ConcurrencyUtilizationTracking"
    assert 0 < provisioned["trackingTarget"] < 1 and provisioned["trackingTarget"] == 0.7
    assert (provisioned["minCapacity"], provisioned["maxCapacity"]) == (1, 20)
    assert provisioned["versionProvisionedConcurrencyNum"] == 0  # SCF's rule under tracking

    schedule = hourly_schedule(config.rates_by_hour, config.rule)
    changes = {h for h in range(24) if schedule[h] != schedule[h - 1]}
    actions = provisioned["triggerActions"]
    assert {int(a["triggerName"][-2:]) for a in actions} == changes  # only where the count changes
    for action in actions:
        hour = int(action["triggerName"][-2:])
        assert len(action["triggerCronConfig"].split()) == 7
        assert action["triggerCronConfig"] == scf_cron(hour, 8)
        assert action["triggerProvisionedConcurrencyNum"] == schedule[hour]
    # local 08:00 at UTC+8 is 00:00 UTC
    assert next(a for a in actions if a["triggerName"] == "llmfn-h08")["triggerCronConfig"] == "0 0 0 * * * *"


def test_gateway_routes_everything_to_the_alias(example: StackRun) -> None:
    api = example.one("tencentcloud:ApiGateway/api:Api").inputs
    assert api["serviceId"] == "llmfn-gateway-id"
    assert (api["serviceConfigType"], api["serviceConfigScfFunctionType"]) == ("SCF", "HTTP")
    assert api["serviceConfigScfFunctionName"] == "qwen3-4b-infer"
    assert api["serviceConfigScfFunctionQualifier"] == "live"
    assert (api["requestConfigPath"], api["requestConfigMethod"]) == ("/", "ANY")
    assert api["serviceConfigTimeout"] == 300  # not the gateway's 5 s default
    release = example.one("tencentcloud:ApiGateway/serviceRelease:ServiceRelease").inputs
    assert (release["serviceId"], release["environmentName"]) == ("llmfn-gateway-id", "release")


def test_scaler_runs_every_minute_on_a_timer(example: StackRun) -> None:
    scaler = _function(example, "llmfn-scaler")
    assert (scaler["name"], scaler["funcType"]) == ("qwen3-4b-scaler", "Event")
    (trigger,) = scaler["triggers"]
    assert trigger["type"] == "timer"
    assert trigger["triggerDesc"] == "0 */1 * * * * *"
    assert scaler["role"] == "llmfn-scaler"
    # the scaler reads exactly this environment (functions.scaler.settings)
    role_keys = {
        "TENCENTCLOUD_SECRETID": "id",
        "TENCENTCLOUD_SECRETKEY": "key",
        "TENCENTCLOUD_SESSIONTOKEN": "t",
    }
    settings = ScalerSettings.from_env({**scaler["environment"], **role_keys})  # SCF injects the role's keys
    assert (settings.target.cloud, settings.target.function, settings.target.alias) == (
        "tencent",
        "qwen3-4b-infer",
        "live",
    )
    assert (settings.target.region, settings.target.namespace) == ("ap-guangzhou", "default")
    assert settings.state_bucket == "llmfn-state-1250000000"
    assert settings.state_endpoint == "https://cos.ap-guangzhou.myqcloud.com"
    assert (settings.policy, settings.utc_offset_hours, settings.window_s) == ("hybrid", 8, 60)
    policy = PolicyConfig.from_mapping(dict(settings.policy_config))
    config = parse_stack_config(example_config(EXAMPLE))
    assert list(policy.hybrid.rates_by_hour or ()) == config.rates_by_hour
    assert (policy.hybrid.p95_latency_s, policy.concurrency_per_instance, policy.max_reserved) == (2.5, 8, 20)


def test_outputs(example: StackRun) -> None:
    config = parse_stack_config(example_config(EXAMPLE))
    outputs = example.outputs
    assert outputs["endpointUrl"] == f"https://{TENCENT_SUBDOMAIN}/release"
    assert (outputs["functionName"], outputs["aliasName"], outputs["version"]) == (
        "qwen3-4b-infer",
        "live",
        "7",
    )
    assert outputs["reservedSchedule"] == hourly_schedule(config.rates_by_hour, config.rule)
    assert [a["hour"] for a in outputs["scheduleActions"]] == [8, 9, 10, 11, 12, 14, 17, 18, 20, 22]
    # 16 GB x (sum of the schedule) instance-hours x 3600 s
    assert outputs["reservedGbSecondsPerDay"] == 16 * sum(outputs["reservedSchedule"]) * 3600
    assert outputs["estimatedReservedCostPerDay"] is None  # no public SCF GPU price: configure one


def test_schedule_only_mode_keeps_the_smallest_count_until_the_first_trigger() -> None:
    run = run_stack(_config(utilizationTarget=None, provisionedPricePerGbS=0.00001))
    provisioned = run.one(PROVISIONED).inputs
    assert provisioned["provisionedType"] == "Default"
    assert provisioned["versionProvisionedConcurrencyNum"] == 1
    assert "trackingTarget" not in provisioned and "minCapacity" not in provisioned
    assert run.outputs["estimatedReservedCostPerDay"] == round(
        run.outputs["reservedGbSecondsPerDay"] * 0.00001, 4
    )


def test_no_reserved_capacity_means_no_provisioned_config() -> None:
    run = run_stack(_config(utilizationTarget=None, ratesByHour=[0.0] * 24))
    assert run.of_type(PROVISIONED) == []
    assert run.outputs["reservedSchedule"] == [0] * 24


def test_canary_weight_on_the_alias() -> None:
    run = run_stack(_config(canaryVersion="3", canaryWeight=0.1))
    (weight,) = run.one(ALIAS).inputs["routingConfig"]["additionalVersionWeights"]
    assert weight == {"version": "3", "weight": 0.1}
    assert 0 <= weight["weight"] <= 1


def test_api_key_reaches_the_function_only_as_a_secret() -> None:
    config = _config()
    config["llmfn:apiKey"] = "sk-test-123"
    run = run_stack(config, secret_keys={"llmfn:apiKey"})
    env = _function(run)["environment"]
    assert SECRET_SIG in env  # the whole environment is marked secret
    assert env["value"]["LLMFN_API_KEY"] == "sk-test-123"
    assert "sk-test-123" not in repr(run.outputs)


def test_zip_package_with_runtime_layer(tmp_path: Path) -> None:
    build_dir = tmp_path / "build"
    manifest = build_with_layer("scf", build_dir)
    run = run_stack(_config(imageUri=None, buildDir=str(build_dir)))
    layer = run.one("tencentcloud:Scf/layer:Layer").inputs
    assert layer["content"]["zipFile"] == str(build_dir / "llmfn-runtime-layer-scf.zip")
    assert manifest.artifact("runtime_layer").sha256 in layer["description"]
    function = _function(run)
    assert function["zipFile"] == str(build_dir / "llmfn-function-scf.zip")
    assert function["layers"] == [{"layerName": "qwen3-4b-runtime", "layerVersion": 2}]
    assert "imageConfigs" not in function
    assert function["environment"]["PYTHONPATH"].startswith("/opt/python")
    assert _function(run, "llmfn-scaler")["handler"] == "scf_scaler.main_handler"


def test_a_build_for_the_other_cloud_is_refused(tmp_path: Path) -> None:
    build_packages(BuildRequest(cloud="aws", out_dir=tmp_path, source_root=REPO_ROOT))
    with pytest.raises(ValueError, match=r"llmfn:buildDir = .* holds a build for 'aws'.*--cloud scf"):
        run_stack(_config(imageUri=None, buildDir=str(tmp_path)))


def test_outputs_are_what_llmfn_promote_reads(
    example: StackRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`pulumi stack output --json` of this stack is enough for `llmfn promote --stack NAME`."""
    import json

    from functions.promote.stack import resolve_stack

    monkeypatch.setenv("TENCENTCLOUD_SECRETID", "AKIDexample")
    monkeypatch.setenv("TENCENTCLOUD_SECRETKEY", "example-key")

    outputs_file = tmp_path / "prod.json"
    outputs_file.write_text(json.dumps(example.outputs))
    resolved = resolve_stack("prod", outputs_file)
    assert (resolved.target.cloud, resolved.target.region) == ("tencent", example.outputs["region"])
    assert (resolved.target.function, resolved.target.alias) == ("qwen3-4b-infer", "live")
    assert resolved.target.namespace == example.outputs["namespace"]
    assert resolved.endpoint_url == example.outputs["endpointUrl"]

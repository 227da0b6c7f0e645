"""The Tencent Cloud example stack under Pulumi's mocks: the full graph, the inputs that matter, the outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from functions.scaler.settings import ScalerSettings
from infra.config import StackConfigError
from scaling.plan import hourly_schedule
from scaling.policies import PolicyConfig
from tests.cloud.scf_emulator import function_description_problem
from tests.infra.mocks import (
    SECRET_SIG,
    TENCENT_SUBDOMAIN,
    StackRun,
    build_with_layer,
    example_config,
    example_with,
    parse_example,
    plain,
    run_stack,
)

EXAMPLE = "Pulumi.example-tencent.yaml"
FUNCTION = "tencentcloud:Scf/function:Function"
VERSION = "tencentcloud:Scf/functionVersion:FunctionVersion"
ALIAS = "tencentcloud:Scf/functionAlias:FunctionAlias"
PROVISIONED = "tencentcloud:Scf/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig"


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
            ("tencentcloud:ApiGateway/service:Service", "llmfn-gateway"),
            ("tencentcloud:ApiGateway/api:Api", "llmfn-api-v1"),
            ("tencentcloud:ApiGateway/api:Api", "llmfn-api-healthz"),
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
    env = plain(function["environment"])
    assert env["LLMFN_MODEL_REVISION"] == config["llmfn:modelRevision"]
    assert env["LLMFN_MODEL_SOURCE"] == "Qwen/Qwen3-4B-Instruct-2507"
    assert (env["LLMFN_HOST"], env["LLMFN_PORT"]) == ("0.0.0.0", "9000")
    assert env["LLMFN_API_KEY"] == example_config(EXAMPLE)["llmfn:apiKey"]
    assert function["tags"]["llmfn-gpu"] == "A10"


def test_version_and_alias(example: StackRun) -> None:
    version = example.one(VERSION)
    assert version.inputs["functionName"] == "qwen3-4b-infer"
    config = example_config(EXAMPLE)
    # a new model revision or image changes what the version freezes, so a new version is published,
    # described as `llmfn promote` finds it
    assert version.inputs["description"].startswith(
        f"llmfn model-revision={config['llmfn:modelRevision']} code="
    )
    assert version.replace_on_changes == {"description"}
    alias = example.one(ALIAS)
    assert (alias.inputs["name"], alias.inputs["functionVersion"]) == ("live", example.outputs["version"])
    assert "routingConfig" not in alias.inputs
    # the provider drops a new function_version on update; promote owns version and weights anyway
    assert alias.ignore_changes == {"functionVersion", "routingConfig"}


def test_function_descriptions_are_what_create_function_accepts(example: StackRun) -> None:
    """SCF's CreateFunction takes a Description of English letters, digits, spaces, commas, newlines,
    periods and Chinese only (SDK model; the mocks refuse anything else, as the emulator does): the
    model source's '/', '-' and ':' must not reach it."""
    descriptions = {r.name: r.inputs["description"] for r in example.of_type(FUNCTION)}
    assert set(descriptions) == {"llmfn-function", "llmfn-scaler"}
    for text in descriptions.values():
        assert function_description_problem(text) is None, text
    assert "Qwen Qwen3 4B Instruct 2507" in descriptions["llmfn-function"]
    cos = run_stack(_config(modelRepo=None, modelRevision=None, modelUri="cos://models-1250000000/qwen/3"))
    assert function_description_problem(_function(cos)["description"]) is None


def test_every_setting_a_version_freezes_publishes_a_new_one(example: StackRun) -> None:
    """SCF serves the alias's version, never $LATEST: a change `pulumi up` makes to the function but
    not to the version's description would update $LATEST only, and no version would ever serve it.
    So the description hashes everything the version freezes: a new timeout, engine setting or
    environment publishes a new version (for `llmfn promote`); the API key (a secret) stays out."""

    def description(run: StackRun) -> str:
        return str(run.one(VERSION).inputs["description"])

    before = description(example)
    for change in ({"timeoutS": 120}, {"concurrencyPerInstance": 4}, {"engine": "transformers"}):
        after = description(run_stack(_config(**change)))
        assert after != before, f"{change} would never be served"
        assert after.startswith(before.split(" code=")[0] + " code="), (
            after
        )  # same revision: promote finds it
    rotated = run_stack(_config(apiKey="another-key-0123456789abcdef"))
    assert description(rotated) == before
    assert example_config(EXAMPLE)["llmfn:apiKey"] not in before


def test_no_provisioned_config_in_the_stack_the_scaler_owns_it(example: StackRun) -> None:
    """SCF keeps provisioned concurrency per version and the alias's version moves with promotions:
    the scaler, which follows the alias, is its one writer (defects 5 and 8)."""
    assert example.of_type(PROVISIONED) == []
    assert parse_example(example_config(EXAMPLE)).reserved_control == "scaler"


def test_gateway_routes_only_v1_and_healthz_to_the_alias(example: StackRun) -> None:
    apis = {
        r.inputs["requestConfigPath"]: r.inputs for r in example.of_type("tencentcloud:ApiGateway/api:Api")
    }
    assert {path: api["requestConfigMethod"] for path, api in apis.items()} == {
        "/v1/": "ANY",
        "=/healthz": "GET",
    }
    for api in apis.values():
        assert api["serviceId"] == "llmfn-gateway-id"
        assert (api["serviceConfigType"], api["serviceConfigScfFunctionType"]) == ("SCF", "HTTP")
        assert api["serviceConfigScfFunctionName"] == "qwen3-4b-infer"
        assert api["serviceConfigScfFunctionQualifier"] == "live"
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
    # defect 7: the provider's default turns public network off; the scaler calls the public
    # endpoints of SCF, Cloud Monitor and COS, so it is on, explicitly
    assert scaler["enablePublicNet"] is True
    assert scaler["imageConfigs"] == _function(example)["imageConfigs"]  # the same image
    # the scaler reads exactly this environment (functions.scaler.settings)
    role_keys = {
        "TENCENTCLOUD_SECRETID": "id",
        "TENCENTCLOUD_SECRETKEY": "key",
        "TENCENTCLOUD_SESSIONTOKEN": "t",
    }
    settings = ScalerSettings.from_env(
        {**plain(scaler["environment"]), **role_keys}
    )  # SCF injects the role's keys
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
    config = parse_example(example_config(EXAMPLE))
    assert list(policy.hybrid.rates_by_hour or ()) == config.rates_by_hour
    assert (policy.hybrid.p95_latency_s, policy.concurrency_per_instance, policy.max_reserved) == (2.5, 8, 7)


def test_outputs(example: StackRun) -> None:
    config = parse_example(example_config(EXAMPLE))
    outputs = example.outputs
    assert outputs["endpointUrl"] == f"https://{TENCENT_SUBDOMAIN}/release"
    assert (outputs["functionName"], outputs["aliasName"]) == ("qwen3-4b-infer", "live")
    assert outputs["version"] == example.one(ALIAS).inputs["functionVersion"]
    assert outputs["reservedSchedule"] == hourly_schedule(config.rates_by_hour, config.rule)
    assert [a["hour"] for a in outputs["scheduleActions"]] == [8, 9, 10, 11, 12, 14, 17, 18, 20, 22]
    # 16 GB x (sum of the schedule) instance-hours x 3600 s
    assert outputs["reservedGbSecondsPerDay"] == 16 * sum(outputs["reservedSchedule"]) * 3600
    assert outputs["estimatedReservedCostPerDay"] is None  # no public SCF GPU price: configure one


def test_configured_price_gives_a_cost() -> None:
    run = run_stack(_config(provisionedPricePerGbS=0.00001))
    assert run.outputs["estimatedReservedCostPerDay"] == round(
        run.outputs["reservedGbSecondsPerDay"] * 0.00001, 4
    )


def test_api_key_reaches_the_function_only_as_a_secret() -> None:
    config = _config()
    config["llmfn:apiKey"] = "sk-test-123"
    run = run_stack(config, secret_keys={"llmfn:apiKey"})
    env = _function(run)["environment"]
    assert SECRET_SIG in env  # the whole environment is marked secret
    assert env["value"]["LLMFN_API_KEY"] == "sk-test-123"
    assert "sk-test-123" not in repr(run.outputs)


def test_zip_packages_are_refused_on_scf(tmp_path: Path) -> None:
    """Defect 3: SCF's newest Python is 3.10; a zip deploy would break at import, so validation refuses it."""
    build_dir = tmp_path / "build"
    build_with_layer("aws", build_dir)  # any build: SCF refuses zips (`llmfn layer build` too)
    with pytest.raises(StackConfigError, match=r"llmfn:buildDir .*Python runtime is 3.10.*llmfn:imageUri"):
        run_stack(_config(imageUri=None, buildDir=str(build_dir)))


def test_outputs_are_what_llmfn_promote_reads(
    example: StackRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`pulumi stack output --json` of this stack is enough for `llmfn promote --stack NAME`."""
    import json

    from llmfn.release.stack import resolve_stack

    monkeypatch.setenv("TENCENTCLOUD_SECRETID", "AKIDexample")
    monkeypatch.setenv("TENCENTCLOUD_SECRETKEY", "example-key")

    outputs_file = tmp_path / "prod.json"
    outputs_file.write_text(json.dumps(example.outputs))
    resolved = resolve_stack("prod", outputs_file)
    assert (resolved.target.cloud, resolved.target.region) == ("tencent", example.outputs["region"])
    assert (resolved.target.function, resolved.target.alias) == ("qwen3-4b-infer", "live")
    assert resolved.target.namespace == example.outputs["namespace"]
    assert resolved.endpoint_url == example.outputs["endpointUrl"]

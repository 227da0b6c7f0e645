"""The Tencent Cloud example stack under Pulumi's mocks: the full graph, the inputs that matter, the outputs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from functions.scaler.settings import ScalerSettings
from infra.clouds.tencent.scf_dynamic import (
    FunctionUrlProvider,
    InstanceConcurrencyProvider,
    ScfCallError,
    call,
    scf_client,
)
from infra.config import StackConfigError
from scaling.plan import hourly_schedule
from scaling.policies import PolicyConfig
from tests.cloud.scf_emulator import ScfEmulator, function_description_problem
from tests.infra.mocks import (
    SECRET_SIG,
    TENCENT_FUNCTION_URL,
    Registered,
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
DYNAMIC = "pulumi-python:dynamic:Resource"
RESERVED = "tencentcloud:Scf/reservedConcurrencyConfig:ReservedConcurrencyConfig"


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
            (DYNAMIC, "llmfn-concurrency"),
            (DYNAMIC, "llmfn-url"),
            (FUNCTION, "llmfn-scaler"),
            (RESERVED, "llmfn-scaler-single-flight"),
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


def _dynamic(run: StackRun, name: str) -> Registered:
    return next(r for r in run.of_type(DYNAMIC) if r.name == name)


def test_endpoint_is_the_alias_function_url_not_api_gateway(example: StackRun) -> None:
    """API gateway creates no new services since 2024-07-01 (doc 628/106651; the mocks refuse them as
    the emulator does): the endpoint is the function URL bound to the alias promote moves, never $LATEST."""
    assert not [r for r in example.registered if r.typ.startswith("tencentcloud:ApiGateway/")]
    url = _dynamic(example, "llmfn-url").inputs
    assert (url["function_name"], url["qualifier"], url["namespace"]) == ("qwen3-4b-infer", "live", "default")
    assert url["region"] == "ap-guangzhou"
    assert example.outputs["endpointUrl"] == TENCENT_FUNCTION_URL
    assert "triggers" not in _function(example)  # a provider http trigger would land on $LATEST


def test_instance_concurrency_is_sent_before_the_version_freezes_it(example: StackRun) -> None:
    """llmfn:concurrencyPerInstance reaches SCF as InstanceConcurrencyConfig.MaxConcurrency, and the
    version is published only after it (the version depends on it; it re-runs for every new version)."""
    config = parse_example(example_config(EXAMPLE))
    concurrency = _dynamic(example, "llmfn-concurrency").inputs
    assert concurrency["max_concurrency"] == config.concurrency_per_instance == 8
    assert concurrency["function_name"] == "qwen3-4b-infer"
    assert concurrency["frozen"] == example.one(VERSION).inputs["description"]
    assert example.one(VERSION).depends_on >= {"llmfn-concurrency"}


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


def test_scaler_runs_single_flight(example: StackRun) -> None:
    """COS has no conditional PUT, so the scaler's state relies on one tick at a time: the scaler's
    reserved concurrency is its own memory (doc 583/39464: the reserved quota is the function's upper
    limit), i.e. one instance, one invocation."""
    reserved = example.one(RESERVED).inputs
    scaler = _function(example, "llmfn-scaler")
    assert (reserved["functionName"], reserved["namespace"]) == (scaler["name"], "default")
    assert reserved["reservedConcurrencyMem"] == scaler["memSize"] == 256


def test_outputs(example: StackRun) -> None:
    config = parse_example(example_config(EXAMPLE))
    outputs = example.outputs
    assert outputs["endpointUrl"] == TENCENT_FUNCTION_URL
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


# ----- the dynamic providers against the SCF emulator (mocks never run them) -----


@pytest.fixture
def scf_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScfEmulator]:
    """The emulator, and the provider's credential environment the dynamic providers read."""
    emulator = ScfEmulator().start()
    monkeypatch.setenv("TENCENTCLOUD_SECRET_ID", emulator.secret_id)
    monkeypatch.setenv("TENCENTCLOUD_SECRET_KEY", emulator.secret_key)
    yield emulator
    emulator.stop()


def _published_with_alias(emulator: ScfEmulator) -> None:
    emulator.add_function("qwen3-4b-infer")
    client = scf_client("ap-guangzhou", emulator.endpoint)
    call(client, "PublishVersion", {"FunctionName": "qwen3-4b-infer", "Description": "v1"})
    call(client, "CreateAlias", {"FunctionName": "qwen3-4b-infer", "Name": "live", "FunctionVersion": "1"})


def _url_props(emulator: ScfEmulator, qualifier: str = "live") -> dict[str, Any]:
    return {
        "function_name": "qwen3-4b-infer",
        "namespace": "default",
        "qualifier": qualifier,
        "region": "ap-guangzhou",
        "endpoint": emulator.endpoint,
        "url": None,
    }


def test_function_url_provider_binds_the_alias_and_deletes_on_destroy(scf_api: ScfEmulator) -> None:
    _published_with_alias(scf_api)
    provider = FunctionUrlProvider()
    created = provider.create(_url_props(scf_api))
    (create,) = [p for a, p in scf_api.calls if a == "CreateTrigger"]
    assert (create["Type"], create["Qualifier"], create["Enable"]) == ("http", "live", "OPEN")
    assert json.loads(create["TriggerDesc"]) == {
        "AuthType": "NONE",
        "NetConfig": {"EnableIntranet": False, "EnableExtranet": True},
    }
    assert created.outs["url"] == scf_api.function_url("qwen3-4b-infer", "live")
    # one URL per alias (doc 583/100227): a second create is refused, so a replacement deletes first
    with pytest.raises(ScfCallError, match=r"ResourceInUse\.Trigger"):
        provider.create(_url_props(scf_api))
    assert provider.diff("id", _url_props(scf_api), _url_props(scf_api, "canary")).delete_before_replace
    provider.delete(created.id, created.outs)
    assert scf_api.function_url("qwen3-4b-infer", "live") is None
    provider.delete(created.id, created.outs)  # already gone: nothing to do
    with pytest.raises(ScfCallError, match=r"ResourceNotFound\.Qualifier"):
        provider.create(_url_props(scf_api, "no-such-alias"))


def test_instance_concurrency_provider_sets_max_concurrency_then_waits_active(scf_api: ScfEmulator) -> None:
    scf_api.add_function("qwen3-4b-infer")
    scf_api.update_s = 0.2  # "Updating" for a while after each configuration change
    props = {
        "function_name": "qwen3-4b-infer",
        "namespace": "default",
        "max_concurrency": 8,
        "region": "ap-guangzhou",
        "frozen": "llmfn model-revision=r1 code=abc",
        "endpoint": scf_api.endpoint,
    }
    InstanceConcurrencyProvider().create(props)
    client = scf_client("ap-guangzhou", scf_api.endpoint)
    got = call(client, "GetFunction", {"FunctionName": "qwen3-4b-infer"})
    assert got["InstanceConcurrencyConfig"] == {"DynamicEnabled": "FALSE", "MaxConcurrency": 8}
    assert got["Status"] == "Active"  # it waited: PublishVersion may follow at once
    published = call(client, "PublishVersion", {"FunctionName": "qwen3-4b-infer", "Description": "v"})
    version = call(
        client, "GetFunction", {"FunctionName": "qwen3-4b-infer", "Qualifier": published["FunctionVersion"]}
    )
    assert version["InstanceConcurrencyConfig"]["MaxConcurrency"] == 8  # the version froze it
    with pytest.raises(ScfCallError, match=r"InvalidParameterValue\.MaxConcurrency"):
        InstanceConcurrencyProvider().create({**props, "max_concurrency": 101})


def test_the_scaler_runs_the_stacks_configured_policy() -> None:
    """``llmfn:policy`` picks the scaler's policy from the registry (default hybrid); its parameters are
    the ones ``scaling.policies.policy_config_for`` builds from the stack's traffic keys."""
    from functions.scaler.run import Scaler
    from scaling.policies import make_policy

    run = run_stack(_config(policy="kpa"))
    scaler = _function(run, "llmfn-scaler")
    env = {**plain(scaler["environment"]), "TENCENTCLOUD_SECRETID": "id", "TENCENTCLOUD_SECRETKEY": "key"}
    settings = ScalerSettings.from_env(env)
    assert settings.policy == "kpa"
    policy = Scaler.from_settings(settings).policy
    assert policy.name == make_policy("kpa").name == "kpa"
    config = parse_example(example_config(EXAMPLE))
    assert policy.config.max_reserved == config.max_instances  # type: ignore[attr-defined]
    assert list(policy.config.hybrid.rates_by_hour or ()) == config.rates_by_hour  # type: ignore[attr-defined]

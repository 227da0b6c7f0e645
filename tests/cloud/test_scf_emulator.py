"""The SCF emulator speaks API 3.0 as the SDK does, and enforces SCF's rules and error codes."""

from __future__ import annotations

import json

import pytest
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.scf.v20180416 import models, scf_client

from tests.cloud.scf_emulator import ScfEmulator


def _client(
    scf: ScfEmulator, secret_id: str | None = None, secret_key: str | None = None
) -> scf_client.ScfClient:
    cred = credential.Credential(secret_id or scf.secret_id, secret_key or scf.secret_key)
    profile = ClientProfile(httpProfile=HttpProfile(endpoint=scf.endpoint, protocol="http"))
    return scf_client.ScfClient(cred, "ap-guangzhou", profile)


def _code(call) -> str:
    with pytest.raises(TencentCloudSDKException) as info:
        call()
    return info.value.get_code()


def _published(scf: ScfEmulator, quota: int = 300) -> scf_client.ScfClient:
    scf.add_function("llm", environment={"A": "1"}, concurrency_quota=quota)
    client = _client(scf)
    client.call_json("PublishVersion", {"FunctionName": "llm", "Description": "first"})
    client.call_json("PublishVersion", {"FunctionName": "llm", "Description": "second"})
    return client


def test_typed_sdk_calls_round_trip_through_the_signed_protocol(scf: ScfEmulator) -> None:
    client = _published(scf)
    request = models.ListVersionByFunctionRequest()
    request.FunctionName = "llm"
    answer = client.ListVersionByFunction(request)
    assert [v.Version for v in answer.Versions] == ["$LATEST", "1", "2"]
    assert [v.Description for v in answer.Versions][1:] == ["first", "second"]

    alias = models.CreateAliasRequest()
    alias.FunctionName, alias.Name, alias.FunctionVersion = "llm", "live", "1"
    client.CreateAlias(alias)
    get = models.GetAliasRequest()
    get.FunctionName, get.Name = "llm", "live"
    assert client.GetAlias(get).FunctionVersion == "1"
    assert [action for action, _ in scf.calls] == [
        "PublishVersion",
        "PublishVersion",
        "ListVersionByFunction",
        "CreateAlias",
        "GetAlias",
    ]


def test_signature_is_verified(scf: ScfEmulator) -> None:
    scf.add_function("llm")
    params = {"FunctionName": "llm"}
    assert (
        _code(lambda: _client(scf, secret_key="wrong").call_json("GetFunction", params))
        == "AuthFailure.SignatureFailure"
    )
    assert (
        _code(lambda: _client(scf, secret_id="AKIDother").call_json("GetFunction", params))
        == "AuthFailure.SecretIdNotFound"
    )
    assert _client(scf).call_json("GetFunction", params)["Response"]["FunctionName"] == "llm"


def test_provisioned_concurrency_rules(scf: ScfEmulator) -> None:
    client = _published(scf, quota=110)

    def put(qualifier: str, number: int) -> None:
        client.call_json(
            "PutProvisionedConcurrencyConfig",
            {"FunctionName": "llm", "Qualifier": qualifier, "VersionProvisionedConcurrencyNum": number},
        )

    assert _code(lambda: put("$LATEST", 1)) == "InvalidParameterValue.Qualifier"
    assert _code(lambda: put("9", 1)) == "ResourceNotFound.Version"
    put("1", 6)
    assert _code(lambda: put("2", 5)) == "FailedOperation.ProvisionedExceedAvailable"  # 6 + 5 > 110 - 100
    put("2", 4)
    answer = client.call_json("GetProvisionedConcurrencyConfig", {"FunctionName": "llm"})["Response"]
    assert answer["UnallocatedConcurrencyNum"] == 0
    assert {a["Qualifier"]: a["AllocatedProvisionedConcurrencyNum"] for a in answer["Allocated"]} == {
        "1": 6,
        "2": 4,
    }


def test_put_provisioned_is_throttled_at_20_per_second(scf: ScfEmulator) -> None:
    client = _published(scf)
    scf.clock = lambda: 1000.0  # every call in the same second

    def put(number: int) -> None:
        client.call_json(
            "PutProvisionedConcurrencyConfig",
            {"FunctionName": "llm", "Qualifier": "1", "VersionProvisionedConcurrencyNum": number},
        )

    for number in range(1, 21):
        put(number)
    assert _code(lambda: put(21)) == "RequestLimitExceeded"
    scf.clock = lambda: 1001.5
    put(21)


def test_provisioned_instances_are_ready_after_the_warmup(scf: ScfEmulator) -> None:
    client = _published(scf)
    now = [0.0]
    scf.clock = lambda: now[0]
    scf.capacity.warmup_s = 10.0
    client.call_json(
        "PutProvisionedConcurrencyConfig",
        {"FunctionName": "llm", "Qualifier": "1", "VersionProvisionedConcurrencyNum": 3},
    )

    def status() -> tuple[int, str]:
        entry = client.call_json(
            "GetProvisionedConcurrencyConfig", {"FunctionName": "llm", "Qualifier": "1"}
        )["Response"]["Allocated"][0]
        return entry["AvailableProvisionedConcurrencyNum"], entry["Status"]

    assert status() == (0, "Doing")
    now[0] = 10.0
    assert status() == (3, "Done")


def test_alias_weights_must_be_in_unit_interval_and_name_existing_versions(scf: ScfEmulator) -> None:
    client = _published(scf)
    client.call_json("CreateAlias", {"FunctionName": "llm", "Name": "live", "FunctionVersion": "1"})

    def route(version: str, weight: float) -> None:
        client.call_json(
            "UpdateAlias",
            {
                "FunctionName": "llm",
                "Name": "live",
                "FunctionVersion": "1",
                "RoutingConfig": {"AdditionalVersionWeights": [{"Version": version, "Weight": weight}]},
            },
        )

    assert _code(lambda: route("2", 1.5)) == "InvalidParameterValue.RoutingConfig"
    assert _code(lambda: route("7", 0.5)) == "ResourceNotFound.Version"
    route("2", 0.25)
    alias = client.call_json("GetAlias", {"FunctionName": "llm", "Name": "live"})["Response"]
    assert alias["RoutingConfig"]["AdditionalVersionWeights"] == [{"Version": "2", "Weight": 0.25}]


def test_injected_faults_reach_the_sdk_as_its_own_errors(scf: ScfEmulator) -> None:
    scf.add_function("llm")
    scf.faults.timeout_delay_s = 0.3
    cred = credential.Credential(scf.secret_id, scf.secret_key)
    profile = ClientProfile(httpProfile=HttpProfile(endpoint=scf.endpoint, protocol="http", reqTimeout=0.1))
    client = scf_client.ScfClient(cred, "ap-guangzhou", profile)
    for kind in ("throttle", "5xx", "timeout"):
        scf.faults.inject("GetFunction", kind)
    params = {"FunctionName": "llm"}
    assert _code(lambda: client.call_json("GetFunction", params)) == "RequestLimitExceeded"
    assert _code(lambda: client.call_json("GetFunction", params)) == "ServerNetworkError"
    assert _code(lambda: client.call_json("GetFunction", params)) == "ClientNetworkError"
    assert client.call_json("GetFunction", params)["Response"]["FunctionName"] == "llm"


def test_api_gateway_creates_no_services(scf: ScfEmulator) -> None:
    """Doc 628/106651: from 2024-07-01 "新、老用户无法再购买或创建资源, 包含实例、服务"."""
    from tencentcloud.common.common_client import CommonClient

    cred = credential.Credential(scf.secret_id, scf.secret_key)
    profile = ClientProfile(httpProfile=HttpProfile(endpoint=scf.endpoint, protocol="http"))
    gateway = CommonClient("apigateway", "2018-08-08", cred, "ap-guangzhou", profile=profile)
    with pytest.raises(TencentCloudSDKException) as info:
        gateway.call_json("CreateService", {"ServiceName": "llmfn", "Protocol": "http&https"})
    assert info.value.get_code() == "UnsupportedOperation"
    assert "无法再购买或创建资源" in info.value.get_message()
    scf.add_function("llm")
    assert (
        _code(
            lambda: _client(scf).call_json(
                "CreateTrigger", {"FunctionName": "llm", "Type": "apigw", "TriggerName": "x"}
            )
        )
        == "UnsupportedOperation"
    )


def test_function_urls_bind_one_per_alias_or_version(scf: ScfEmulator) -> None:
    client = _published(scf)
    client.call_json("CreateAlias", {"FunctionName": "llm", "Name": "live", "FunctionVersion": "1"})
    desc = json.dumps({"AuthType": "NONE", "NetConfig": {"EnableIntranet": False, "EnableExtranet": True}})

    def create(qualifier: str, trigger_desc: str = desc) -> dict:
        params = {"FunctionName": "llm", "TriggerName": "url", "Type": "http", "TriggerDesc": trigger_desc}
        return client.call_json("CreateTrigger", {**params, "Qualifier": qualifier})["Response"]

    info = create("live")["TriggerInfo"]
    assert (info["Qualifier"], info["Type"]) == ("live", "http")
    assert json.loads(info["TriggerDesc"])["Url"]["Extranet"] == scf.function_url("llm", "live")
    create("2")
    assert _code(lambda: create("live")) == "ResourceInUse.Trigger"  # "每一个别名或者版本仅允许创建一个 URL"
    assert _code(lambda: create("nope")) == "ResourceNotFound.Qualifier"
    assert _code(lambda: create("1", json.dumps({"AuthType": "KEY"}))) == "InvalidParameterValue.TriggerDesc"
    listed = client.call_json("ListTriggers", {"FunctionName": "llm"})["Response"]["Triggers"]
    assert sorted(t["Qualifier"] for t in listed) == ["2", "live"]
    delete = {"FunctionName": "llm", "TriggerName": "url", "Type": "http"}
    assert _code(lambda: client.call_json("DeleteTrigger", delete)) == "ResourceNotFound.Trigger"  # $LATEST
    client.call_json("DeleteTrigger", {**delete, "Qualifier": "live"})
    assert scf.function_url("llm", "live") is None


def test_instance_concurrency_is_for_web_functions_within_1_to_100(scf: ScfEmulator) -> None:
    client = _client(scf)
    for name, kind in (("web", "HTTP"), ("event", "Event")):
        client.call_json(
            "CreateFunction",
            {"FunctionName": name, "Type": kind, "Code": {"ImageConfig": {"ImageType": "personal"}}},
        )

    def update(name: str, value: object) -> None:
        config = {"DynamicEnabled": "FALSE", "MaxConcurrency": value}
        client.call_json(
            "UpdateFunctionConfiguration", {"FunctionName": name, "InstanceConcurrencyConfig": config}
        )

    assert _code(lambda: update("event", 4)) == "InvalidParameterValue.InstanceConcurrencyConfig"
    assert _code(lambda: update("web", 0)) == "InvalidParameterValue.MaxConcurrency"
    assert _code(lambda: update("web", 101)) == "InvalidParameterValue.MaxConcurrency"
    update("web", 100)


def test_publish_refused_until_active_and_beyond_the_version_limit(scf: ScfEmulator) -> None:
    client = _published(scf)
    scf.update_s = 3600.0
    client.call_json("UpdateFunctionConfiguration", {"FunctionName": "llm", "Timeout": 30})
    publish = {"FunctionName": "llm", "Description": "third"}
    assert _code(lambda: client.call_json("PublishVersion", publish)) == "FailedOperation.PublishVersion"
    scf.functions[("default", "llm")].updating_until = 0.0
    scf.version_limit = 2
    assert _code(lambda: client.call_json("PublishVersion", publish)) == "LimitExceeded.FunctionVersions"
    client.call_json("CreateAlias", {"FunctionName": "llm", "Name": "live", "FunctionVersion": "2"})
    assert (
        _code(lambda: client.call_json("DeleteFunction", {"FunctionName": "llm", "Qualifier": "2"}))
        == "ResourceInUse.Alias"
    )
    client.call_json("DeleteFunction", {"FunctionName": "llm", "Qualifier": "1"})
    assert client.call_json("PublishVersion", publish)["Response"]["FunctionVersion"] == "3"  # never reused


def test_web_functions_take_no_asynchronous_invocation(scf: ScfEmulator) -> None:
    client = _published(scf)  # add_function: a web (HTTP) function, as the stack deploys
    invoke = {"FunctionName": "llm", "Qualifier": "1", "ClientContext": "{}"}
    assert (
        _code(lambda: client.call_json("Invoke", {**invoke, "InvocationType": "Event"}))
        == "UnsupportedOperation"
    )

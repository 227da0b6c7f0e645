"""Issue 11's defects, each against the stand-in made as strict as the cloud's documentation.

The AWS proxy refuses what botocore's model and the documented cross-field rules refuse; the SCF
emulator answers Cloud Monitor only under the documented dimensions and refuses oversized signed
requests and undocumented runtimes. Each test here failed on the code before the fix.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from functions.cloud.aws.control import AwsEndpoint, LambdaControl
from functions.cloud.aws.metrics import CloudWatchMetrics
from functions.cloud.tencent.control import ScfControl
from llmfn.release.promotion import Promotion, PromotionPlan
from tests.cloud.aws_proxy import AwsProxy
from tests.cloud.aws_rules import RULES, DecodedRequest, check
from tests.cloud.scf_emulator import SIGNED_REQUEST_MAX_BYTES, ScfEmulator, scf_python_path
from tests.cloud.standins import (
    ALIAS,
    ALIAS_MAX_CAPACITY,
    FUNCTION,
    REGION_AWS,
    StandIn,
    aws_stand_in,
    fast_retry,
)


def _minute_ago() -> datetime:
    return datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)


# ----- the AWS proxy: model + documented rules -----
def test_proxy_refuses_statistics_with_extended_statistics_as_aws_does(aws_proxy: AwsProxy) -> None:
    cloudwatch = boto3.client("cloudwatch", region_name=REGION_AWS, endpoint_url=aws_proxy.url)
    end = _minute_ago()
    with pytest.raises(ClientError) as refused:
        cloudwatch.get_metric_statistics(
            Namespace="AWS/Lambda", MetricName="Duration", StartTime=end - timedelta(minutes=5),
            EndTime=end, Period=60, Statistics=["Maximum"], ExtendedStatistics=["p95"],
        )  # fmt: skip
    assert refused.value.response["Error"]["Code"] == "InvalidParameterCombination"
    assert "not both" in refused.value.response["Error"]["Message"]
    # each statistic kind on its own is accepted
    for stats in ({"Statistics": ["Maximum"]}, {"ExtendedStatistics": ["p95"]}):
        cloudwatch.get_metric_statistics(
            Namespace="AWS/Lambda", MetricName="Duration", StartTime=end - timedelta(minutes=5),
            EndTime=end, Period=60, **stats,
        )  # fmt: skip


def test_defect_1_metric_window_and_gate_pass_the_strict_proxy(stand_in: StandIn) -> None:
    """Every scaler tick and promotion gate reads Duration: each call must be one AWS accepts."""
    stand_in.put_minute(ALIAS, _minute_ago(), 120, 0, 2.0, 800)
    metrics = stand_in.target.metrics(fast_retry()).window(ALIAS, _minute_ago() + timedelta(minutes=1), 120)
    assert metrics.invocations == 120 and metrics.p95_duration_s == pytest.approx(0.8)
    if stand_in.aws_proxy is not None:
        assert stand_in.aws_proxy.refused == []


def test_proxy_checks_a_registration_against_the_existing_target(aws_proxy: AwsProxy) -> None:
    """AWS: both capacities "required when registering a new scalable target"; an update changes only
    what it names, and the merged range must still have min <= max (moto checks neither)."""
    scaling = boto3.client("application-autoscaling", region_name=REGION_AWS, endpoint_url=aws_proxy.url)
    target = {
        "ServiceNamespace": "lambda",
        "ResourceId": "function:registered:live",
        "ScalableDimension": "lambda:function:ProvisionedConcurrency",
    }
    with pytest.raises(ClientError) as refused:
        scaling.register_scalable_target(MinCapacity=1, **target)
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "MaxCapacity must be specified when registering a new scalable target" in str(refused.value)
    scaling.register_scalable_target(MinCapacity=1, MaxCapacity=4, **target)
    scaling.register_scalable_target(MinCapacity=3, **target)  # an update: MaxCapacity stays 4
    (found,) = scaling.describe_scalable_targets(
        ServiceNamespace="lambda", ResourceIds=[target["ResourceId"]]
    )["ScalableTargets"]
    assert (found["MinCapacity"], found["MaxCapacity"]) == (3, 4)
    with pytest.raises(ClientError) as above:
        scaling.register_scalable_target(MinCapacity=5, **target)  # above the kept MaxCapacity
    assert "cannot be greater than maximum capacity 4" in str(above.value)
    assert [operation for operation, _ in aws_proxy.refused] == ["RegisterScalableTarget"] * 2


def test_proxy_checks_the_model_and_names_the_parameter(aws_proxy: AwsProxy) -> None:
    scaling = boto3.client("application-autoscaling", region_name=REGION_AWS, endpoint_url=aws_proxy.url)
    with pytest.raises(ClientError) as refused:
        scaling.register_scalable_target(
            ServiceNamespace="lambda", ResourceId="function:f:live",
            ScalableDimension="lambda:function:ProvisionedConcurrency", MinCapacity=5, MaxCapacity=2,
        )  # fmt: skip
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "cannot be greater than maximum" in refused.value.response["Error"]["Message"]
    # enum and range checks botocore's client leaves to the server
    problem = check(
        DecodedRequest(
            "monitoring",
            "GetMetricStatistics",
            {"Namespace": "AWS/Lambda", "MetricName": "Duration", "StartTime": 0, "EndTime": 60,
             "Period": 60, "Statistics": ["Median"]},
            "smithy-rpc-v2-cbor",
        )
    )  # fmt: skip
    assert problem is not None and "Median" in problem.message and "Statistics" in problem.message


def test_every_rule_cites_its_documentation() -> None:
    assert {(r.service, r.operation) for r in RULES} >= {
        ("monitoring", "GetMetricStatistics"),
        ("application-autoscaling", "RegisterScalableTarget"),
    }
    for rule in RULES:
        assert '"' in rule.doc and ("docs.aws.amazon.com" in rule.doc or ".html" in rule.doc), rule


def test_lambda_requests_are_decoded_from_their_rest_paths(aws_proxy: AwsProxy) -> None:
    """The proxy sees Lambda's REST calls as operations with parameters (so rules can apply)."""
    lam = boto3.client("lambda", region_name=REGION_AWS, endpoint_url=aws_proxy.url)
    with pytest.raises(ClientError) as refused:
        lam.put_provisioned_concurrency_config(
            FunctionName="f", Qualifier="$LATEST", ProvisionedConcurrentExecutions=1
        )
    assert refused.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert aws_proxy.refused[-1][0] == "PutProvisionedConcurrencyConfig"


# ----- defect 1, second half: a refused metrics call rolls the canary back -----
def test_a_refused_metrics_call_mid_promotion_rolls_back(stand_in: StandIn) -> None:
    before = stand_in.target.control(fast_retry()).alias()
    operation = "GetMetricStatistics" if stand_in.aws_proxy is not None else "GetMonitorData"
    # refused beyond the retries: every attempt of the first gate's metrics call fails
    stand_in.faults.inject(operation, "5xx", times=50)
    retry = fast_retry()
    report = Promotion(
        control=stand_in.target.control(retry),
        metrics=stand_in.target.metrics(retry),
        plan=PromotionPlan(model_revision="rev-2", interval_s=0, poll_s=0.005, warm_timeout_s=5),
    ).run()
    assert report.status == "rolled-back"
    assert "cloud call failed" in report.reason
    control = stand_in.target.control(fast_retry())
    assert control.alias() == before  # the canary is not left at 10 %
    assert control.capacity("2").requested == 0


# ----- defect 5 (AWS): the scaler moves only the floor of the stack's target -----
def test_aws_scaler_moves_min_capacity_only_and_never_pins_max(moto_reset: str, aws_proxy: AwsProxy) -> None:
    control = aws_stand_in(moto_reset, aws_proxy).target.control(fast_retry())
    assert isinstance(control, LambdaControl)
    control.set_capacity(ALIAS, 4)
    assert control.floor() == (4, ALIAS_MAX_CAPACITY)
    control.set_capacity(ALIAS, ALIAS_MAX_CAPACITY + 50)  # clamped to the stack's maximum
    assert control.floor() == (ALIAS_MAX_CAPACITY, ALIAS_MAX_CAPACITY)
    control.set_capacity(ALIAS, 0)
    assert control.floor() == (0, ALIAS_MAX_CAPACITY)
    assert "DeregisterScalableTarget" not in aws_proxy.operations  # the stack's target stays
    registered = [r.params for r in aws_proxy.requests if r.operation == "RegisterScalableTarget"]
    ours = [p for p in registered if p["ResourceId"] == f"function:{FUNCTION}:{ALIAS}"][1:]  # after setup
    assert ours and all("MaxCapacity" not in p for p in ours)  # MaxCapacity is the stack's alone


def test_aws_scaler_without_the_stacks_target_says_so(aws_proxy: AwsProxy) -> None:
    control = LambdaControl(AwsEndpoint(REGION_AWS, aws_proxy.url, 0.3), "nofn", ALIAS, fast_retry())
    with pytest.raises(Exception, match="deploy the stack first"):
        control.set_capacity(ALIAS, 2)


# ----- defect 6: Cloud Monitor's alias dimension -----
def test_scf_metrics_of_the_alias_are_read_under_the_alias_dimension(scf: ScfEmulator) -> None:
    from functions.cloud.tencent.control import TencentEndpoint
    from functions.cloud.tencent.metrics import CloudMonitorMetrics

    scf.add_function(FUNCTION)
    endpoint = TencentEndpoint("ap-guangzhou", scf.secret_id, scf.secret_key, scf.endpoint, "http", 0.3)
    control = ScfControl(endpoint, FUNCTION, ALIAS, retry=fast_retry())
    version = control.publish_version("v1")
    control._call("CreateAlias", Name=ALIAS, FunctionVersion=version)
    minute = _minute_ago()
    scf.put_metric(FUNCTION, ALIAS, "Invocation", int(minute.timestamp()) + 30, 42)
    scf.put_metric(FUNCTION, version, "Invocation", int(minute.timestamp()) + 30, 7)
    metrics = CloudMonitorMetrics(endpoint, FUNCTION, retry=fast_retry())
    end = minute + timedelta(minutes=1)
    assert metrics.window(ALIAS, end, 60).invocations == 42
    assert metrics.window(version, end, 60).invocations == 7
    last = next(params for action, params in scf.calls if action == "GetMonitorData")
    names = {d["Name"]: d["Value"] for d in last["Instances"][0]["Dimensions"]}
    assert names == {"functionName": FUNCTION, "alias": ALIAS, "namespace": "default"}


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"Namespace": "QCE/SCF"}, "namespace"),
        ({"MetricName": "Latency"}, "metric Latency"),
        ({"Period": 10}, "period"),
        ({"Instances": [{"Dimensions": [{"Name": "functionName", "Value": "f"},
                                        {"Name": "namespace", "Value": "default"}]}]}, "one of version / alias"),
        ({"Instances": [{"Dimensions": [{"Name": "functionName", "Value": "f"}, {"Name": "qualifier", "Value": "1"},
                                        {"Name": "namespace", "Value": "default"}]}]}, "dimensions"),
    ],
)  # fmt: skip
def test_scf_emulator_refuses_undocumented_monitor_queries(
    scf: ScfEmulator, change: dict[str, Any], fragment: str
) -> None:
    from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

    from functions.cloud.tencent.control import TencentEndpoint

    client = TencentEndpoint("ap-guangzhou", scf.secret_id, scf.secret_key, scf.endpoint, "http").client(
        "monitor", "2018-07-24"
    )
    end = _minute_ago()
    params = {
        "Namespace": "QCE/SCF_V2", "MetricName": "Invocation", "Period": 60,
        "StartTime": (end - timedelta(minutes=1)).isoformat(), "EndTime": end.isoformat(),
        "Instances": [{"Dimensions": [{"Name": "functionName", "Value": "f"}, {"Name": "version", "Value": "1"},
                                      {"Name": "namespace", "Value": "default"}]}],
    } | change  # fmt: skip
    with pytest.raises(TencentCloudSDKException) as refused:
        client.call_json("GetMonitorData", params)
    assert refused.value.get_code() == "InvalidParameterValue"
    assert fragment in refused.value.get_message()


# ----- defect 9: the deprecated InvokeResult is not the success flag -----
def test_scf_invoke_success_does_not_read_the_deprecated_invoke_result(scf: ScfEmulator) -> None:
    from functions.cloud.tencent.control import TencentEndpoint

    fn = scf.add_function(FUNCTION)
    endpoint = TencentEndpoint("ap-guangzhou", scf.secret_id, scf.secret_key, scf.endpoint, "http", 0.3)
    control = ScfControl(endpoint, FUNCTION, ALIAS, retry=fast_retry())
    version = control.publish_version("v1")
    # the emulator omits Result.InvokeResult: the SDK model says "该参数不再维护" (no longer maintained)
    assert control.invoke(version, {"x": 1}).ok
    fn.failing_versions.add(version)
    failed = control.invoke(version, {"x": 1})
    assert not failed.ok and '"ok": false' in failed.body


# ----- the SCF emulator's documented limits -----
def test_scf_emulator_refuses_a_signed_request_over_10_mb(scf: ScfEmulator) -> None:
    from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

    from functions.cloud.tencent.control import TencentEndpoint

    client = TencentEndpoint("ap-guangzhou", scf.secret_id, scf.secret_key, scf.endpoint, "http", 10).client(
        "scf", "2018-04-16"
    )
    zip_b64 = base64.b64encode(b"\0" * (SIGNED_REQUEST_MAX_BYTES * 3 // 4 + 1024)).decode()
    with pytest.raises(TencentCloudSDKException) as refused:
        client.call_json(
            "CreateFunction", {"FunctionName": "big", "Runtime": "Python3.10", "Code": {"ZipFile": zip_b64}}
        )
    assert refused.value.get_code() == "RequestSizeLimitExceeded"


def test_scf_emulator_knows_the_runtime_list_and_layer_paths(scf: ScfEmulator) -> None:
    from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

    from functions.cloud.tencent.control import TencentEndpoint

    client = TencentEndpoint("ap-guangzhou", scf.secret_id, scf.secret_key, scf.endpoint, "http").client(
        "scf", "2018-04-16"
    )
    with pytest.raises(TencentCloudSDKException) as refused:
        client.call_json("CreateFunction", {"FunctionName": "py311", "Runtime": "Python3.11"})
    assert refused.value.get_code() == "InvalidParameterValue.Runtime"
    client.call_json("CreateFunction", {"FunctionName": "py310", "Runtime": "Python3.10"})
    # Description: letters, digits, spaces, commas, newlines, periods and Chinese only (SDK model)
    with pytest.raises(TencentCloudSDKException) as described:
        client.call_json("CreateFunction", {"FunctionName": "d1", "Description": "llmfn: Qwen/Qwen3-4B"})
    assert described.value.get_code() == "InvalidParameterValue.Description"
    client.call_json(
        "CreateFunction", {"FunctionName": "d2", "Description": "llmfn inference, Qwen Qwen3 4B."}
    )
    # a layer's python/ dir is under /opt/python: not on SCF's default path
    assert "/opt/python" not in scf_python_path({})
    assert scf_python_path({"PYTHONPATH": "/opt/python"})[0] == "/opt/python"


def test_cloudwatch_window_reads_p95_from_one_call_and_maximum_from_another(aws_proxy: AwsProxy) -> None:
    metrics = CloudWatchMetrics(AwsEndpoint(REGION_AWS, aws_proxy.url, 0.3), FUNCTION, ALIAS, fast_retry())
    metrics.window(ALIAS, _minute_ago(), 60)
    assert aws_proxy.operations.count("GetMetricStatistics") >= 5
    assert aws_proxy.refused == []


def test_scf_emulator_checks_tracking_bounds_as_the_sdk_model_documents(scf: ScfEmulator) -> None:
    from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

    from functions.cloud.tencent.control import TencentEndpoint

    scf.add_function(FUNCTION)
    endpoint = TencentEndpoint("ap-guangzhou", scf.secret_id, scf.secret_key, scf.endpoint, "http", 0.3)
    version = ScfControl(endpoint, FUNCTION, ALIAS, retry=fast_retry()).publish_version("v1")
    client = endpoint.client("scf", "2018-04-16")
    base = {"FunctionName": FUNCTION, "Qualifier": version, "VersionProvisionedConcurrencyNum": 0,
            "ProvisionedType": "ConcurrencyUtilizationTracking"}  # fmt: skip
    for bad, code in (
        ({"TrackingTarget": 1.0, "MinCapacity": 1, "MaxCapacity": 2}, "InvalidParameterValue.TrackingTarget"),
        ({"TrackingTarget": 0.7, "MinCapacity": 0, "MaxCapacity": 2}, "InvalidParameterValue.MinCapacity"),
    ):
        with pytest.raises(TencentCloudSDKException) as refused:
            client.call_json("PutProvisionedConcurrencyConfig", base | bad)
        assert refused.value.get_code() == code
    client.call_json(
        "PutProvisionedConcurrencyConfig", base | {"TrackingTarget": 0.7, "MinCapacity": 1, "MaxCapacity": 2}
    )

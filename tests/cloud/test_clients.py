"""The per-cloud actuators and metric sources against both stand-ins, faults included."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

from functions.cloud.connect import CloudTarget
from functions.cloud.retry import RetryPolicy
from functions.cloud.types import CloudError
from tests.cloud.standins import ALIAS, INITIAL_CAPACITY, StandIn, fast_retry


def test_control_round_trip(stand_in: StandIn) -> None:
    control = stand_in.target.control(fast_retry())
    assert control.alias().primary == "1"
    assert control.alias().weights == {}
    control.set_environment({"LLMFN_MODEL_REVISION": "rev-2"})
    version = control.publish_version("llmfn model-revision=rev-2")
    assert control.versions() == {"1": "llmfn model-revision=rev-1", version: "llmfn model-revision=rev-2"}
    assert control.capacity("1").requested == INITIAL_CAPACITY and control.capacity("1").warm
    assert control.capacity(version).requested == 0

    control.set_capacity(version, 3)
    deadline = time.monotonic() + 5
    while not control.capacity(version).warm and time.monotonic() < deadline:
        time.sleep(0.01)
    assert control.capacity(version).ready == 3

    control.set_routing("1", {version: 0.1})
    assert control.alias().weights == {version: 0.1}
    control.set_routing("1", {})
    assert control.alias().weights == {}
    control.set_capacity(version, 0)
    assert control.capacity(version).requested == 0
    assert control.invoke(version, {"ping": 1}).ok


def test_throttling_5xx_and_timeouts_are_retried(stand_in: StandIn) -> None:
    retry = fast_retry()
    control = stand_in.target.control(retry)
    operation = "UpdateAlias"
    for kind in ("throttle", "5xx", "timeout"):
        stand_in.faults.inject(operation, kind)
    control.set_routing("1", {})
    assert len(retry.retried) == 3
    assert stand_in.faults.pending() == 0


def test_errors_that_are_not_transient_are_not_retried(stand_in: StandIn) -> None:
    retry = fast_retry()
    control = stand_in.target.control(retry)
    with pytest.raises(CloudError) as info:
        control.set_routing("99", {})
    assert retry.retried == []
    assert "UpdateAlias" in str(info.value)


def test_retries_give_up_after_the_configured_attempts(stand_in: StandIn) -> None:
    retry = RetryPolicy(attempts=2, initial_s=0.001, max_s=0.001, jitter_s=0.0)
    stand_in.faults.inject("GetAlias", "5xx", times=2)
    with pytest.raises(CloudError):
        stand_in.target.control(retry).alias()
    assert len(retry.retried) == 1


def test_metric_window_sums_counts_and_reads_concurrency(stand_in: StandIn) -> None:
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    for minute, (calls, errors, conc, ms) in enumerate([(60, 0, 2.0, 300), (120, 6, 4.0, 500)]):
        stand_in.put_minute(ALIAS, end - timedelta(minutes=2 - minute), calls, errors, conc, ms)
    metrics = stand_in.target.metrics(fast_retry()).window(ALIAS, end, 120)
    assert metrics.invocations == 180
    assert metrics.arrival_rate_rps == pytest.approx(1.5)
    assert metrics.error_rate == pytest.approx(6 / 180)
    assert metrics.mean_concurrency == pytest.approx(3.0)
    assert metrics.max_concurrency == pytest.approx(4.0)
    assert metrics.p95_duration_s == pytest.approx(0.5)


@pytest.mark.parametrize("stand_in", ["tencent"], indirect=True)
def test_scf_publish_waits_for_the_update_to_deploy(stand_in: StandIn) -> None:
    scf = stand_in.scf
    assert scf is not None
    scf.update_s = 3600.0
    retry = RetryPolicy(attempts=3, initial_s=0.001, max_s=0.001, jitter_s=0.0)
    control = stand_in.target.control(retry)
    control.set_environment({"LLMFN_MODEL_REVISION": "rev-2"})
    # SCF refuses PublishVersion while the function is not Active (FailedOperation.PublishVersion) ...
    with pytest.raises(TencentCloudSDKException) as refused:
        control._scf.call_json("PublishVersion", {"FunctionName": "llm", "Description": "raw"})
    assert refused.value.get_code() == "FailedOperation.PublishVersion"
    # ... so the control polls GetFunction until Active first, and gives up with the status
    polls: list[float] = []
    control.active_timeout_s, control.active_poll_s, control.sleep = 0.0, 0.5, polls.append
    with pytest.raises(CloudError, match="is Updating, not Active"):
        control.publish_version("too early")
    assert not [a for a, p in scf.calls if a == "PublishVersion" and p.get("Description") == "too early"]

    def deployed(seconds: float) -> None:  # the update deploys while the control waits
        polls.append(seconds)
        scf.functions[("default", "llm")].updating_until = 0.0

    control.active_timeout_s, control.sleep = 60.0, deployed
    assert control.publish_version("now") == "2"
    assert polls[-1] == 0.5


def test_every_cos_client_sends_checksums_only_when_required(moto_reset: str) -> None:
    """botocore 1.36+ adds a CRC32 to every PutObject (aws-chunked bodies with a trailing checksum when
    streamed), which COS does not fully support: preload's cos:// store and the scaler's state client
    are both built by preload.objectstore.cos_client with checksums "when_required"."""
    import boto3

    from preload.objectstore import ObjectStore
    from tests.cloud.cos_standin import CosStandIn

    boto3.client("s3", region_name="us-east-1", endpoint_url=moto_reset).create_bucket(Bucket="models-1250")
    cos = CosStandIn(moto_reset).start()
    try:
        plain_boto3 = boto3.client("s3", region_name="ap-guangzhou", endpoint_url=cos.url)
        plain_boto3.put_object(Bucket="models-1250", Key="default.json", Body=b"{}")
        assert cos.checksum_headers, "the stand-in must see botocore's default checksums"
        cos.checksum_headers.clear()

        store = ObjectStore("cos://models-1250/qwen", cos.url, connections=2)
        store.client.put_object(Bucket="models-1250", Key="qwen/config.json", Body=b'{"a": 1}')
        assert (
            store.client.get_object(Bucket="models-1250", Key="qwen/config.json")["Body"].read()
            == b'{"a": 1}'
        )
        target = CloudTarget("tencent", "llm", "live", "ap-guangzhou", secret_id="id", secret_key="key")
        state = target.s3_client(cos.url)
        state.put_object(Bucket="models-1250", Key="state.json", Body=b"{}")
        assert cos.checksum_headers == []
        for client in (store.client, state):
            config = client.meta.config
            assert (config.request_checksum_calculation, config.response_checksum_validation) == (
                "when_required",
                "when_required",
            )
    finally:
        cos.stop()

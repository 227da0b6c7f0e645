"""Lambda Managed Instances against the AWS stand-in: its documented rules, the accelerator resource
the stack uses (boto3 through the stand-in), and the scaler moving ``MinExecutionEnvironments``."""

from __future__ import annotations

import math
import time
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, WaiterError

from functions.cloud.aws.managed_instances import ManagedInstancesControl
from functions.cloud.connect import CloudTarget, TargetError
from functions.cloud.types import Capacity
from functions.scaler.run import Scaler
from functions.scaler.settings import ScalerSettings
from infra.clouds.aws.gpu.accelerator import AcceleratorConfigProvider
from llmfn.release.promotion import parse_description
from scaling.policies import Observation, PolicyConfig, make_policy
from tests.cloud.aws_proxy import AwsProxy
from tests.cloud.standins import ALIAS, REGION_AWS, STATE_BUCKET, StandIn, fast_retry
from tests.cloud.test_scaler import start_minute
from tests.release.test_promotion import inference_endpoint, promotion, publish_canary_metrics  # noqa: F401

FUNCTION = "llm-gpu"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/llmfn-serve@sha256:" + "ab" * 32
MAX_ENVIRONMENTS = 8
CONCURRENCY = 8  # requests one execution environment serves (PerExecutionEnvironmentMaxConcurrency)


def _lambda(proxy: AwsProxy) -> Any:
    return boto3.client("lambda", region_name=REGION_AWS, endpoint_url=proxy.url)


def _role(proxy: AwsProxy) -> str:
    iam = boto3.client("iam", region_name=REGION_AWS, endpoint_url=proxy.url)
    return iam.create_role(RoleName="gpu-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]


def _capacity_provider(proxy: AwsProxy, role: str) -> str:
    answer = _lambda(proxy).create_capacity_provider(
        CapacityProviderName="llmfn-gpu",
        VpcConfig={"SubnetIds": ["subnet-0123456789abcdef0"], "SecurityGroupIds": ["sg-0123456789abcdef0"]},
        PermissionsConfig={"CapacityProviderOperatorRoleArn": role},
        InstanceRequirements={"Architectures": ["x86_64"], "AllowedInstanceTypes": ["g6.xlarge"]},
    )
    return answer["CapacityProvider"]["CapacityProviderArn"]


def _gpu_function(proxy: AwsProxy, **overrides: Any) -> dict[str, Any]:
    role = _role(proxy)
    arn = _capacity_provider(proxy, role)
    params: dict[str, Any] = {
        "FunctionName": FUNCTION,
        "Role": role,
        "PackageType": "Image",
        "Code": {"ImageUri": IMAGE},
        "Architectures": ["x86_64"],
        "MemorySize": 8192,
        "CapacityProviderConfig": {
            "LambdaManagedInstancesCapacityProviderConfig": {
                "CapacityProviderArn": arn,
                "PerExecutionEnvironmentMaxConcurrency": CONCURRENCY,
            }
        },
    }
    params.update(overrides)
    return _lambda(proxy).create_function(**params)


def _error(raised: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return raised.value.response["Error"]["Code"], raised.value.response["Error"]["Message"]


def test_accelerator_resource_sets_the_config_and_publishes(aws_proxy: AwsProxy) -> None:
    _gpu_function(aws_proxy)
    props = {"function_name": FUNCTION, "accelerator_memory_gb": 24, "region": REGION_AWS,
             "endpoint_url": aws_proxy.url, "code_ref": IMAGE, "frozen_inputs": "h0"}  # fmt: skip
    created = AcceleratorConfigProvider().create(props)
    version = created.outs["version"]
    assert created.id == f"{FUNCTION}:{version}"
    frozen = aws_proxy.managed_instances.versions[FUNCTION][version]
    assert frozen["AcceleratorConfig"] == {"AcceleratorMemorySize": 24}
    # a new image (or memory) is an update: configured again and published as a new version
    assert AcceleratorConfigProvider().diff("id", props, props | {"code_ref": IMAGE[:-2] + "cd"}).changes
    updated = AcceleratorConfigProvider().update("id", props, props | {"accelerator_memory_gb": 48})
    assert int(updated.outs["version"]) == int(version) + 1
    assert aws_proxy.managed_instances.versions[FUNCTION][updated.outs["version"]]["AcceleratorConfig"] == {
        "AcceleratorMemorySize": 48
    }


def test_a_version_that_cannot_start_fails_the_deploy(aws_proxy: AwsProxy) -> None:
    """The accelerator resource waits for the published version to be Active: a Failed one (no GPU
    instance could be launched) fails ``pulumi up`` rather than becoming the alias's target."""
    _gpu_function(aws_proxy)
    aws_proxy.managed_instances.fail_next_publish.add(FUNCTION)
    props = {"function_name": FUNCTION, "accelerator_memory_gb": 24, "region": REGION_AWS,
             "endpoint_url": aws_proxy.url, "code_ref": IMAGE, "frozen_inputs": "h0"}  # fmt: skip
    with pytest.raises(WaiterError, match="PublishedVersionActive"):
        AcceleratorConfigProvider().create(props)


def test_the_stacks_version_is_found_by_llmfn_promote(aws_proxy: AwsProxy) -> None:
    """The accelerator resource publishes with the function's own description (the stack's
    ``llmfn model-revision=REV``), which is how ``llmfn promote`` finds the version ``pulumi up`` made."""
    _gpu_function(aws_proxy, Description="llmfn model-revision=" + "a" * 40)
    props = {"function_name": FUNCTION, "accelerator_memory_gb": 24, "region": REGION_AWS,
             "endpoint_url": aws_proxy.url, "code_ref": IMAGE, "frozen_inputs": "h0"}  # fmt: skip
    version = AcceleratorConfigProvider().create(props).outs["version"]
    control = _gpu_stand_in(aws_proxy).target.control(fast_retry())
    assert parse_description(control.versions()[version]) == ("a" * 40, None)


def test_accelerator_memory_outside_the_documented_sizes_is_refused(aws_proxy: AwsProxy) -> None:
    _gpu_function(aws_proxy)
    props = {"function_name": FUNCTION, "accelerator_memory_gb": 32, "region": REGION_AWS,
             "endpoint_url": aws_proxy.url, "code_ref": IMAGE}  # fmt: skip
    with pytest.raises(ClientError) as raised:
        AcceleratorConfigProvider().create(props)
    assert _error(raised) == (
        "InvalidParameterValueException",
        "AcceleratorMemorySize must be one of 3, 6, 12, 16, 24, 48",
    )


def test_accelerator_needs_a_capacity_provider(aws_proxy: AwsProxy) -> None:
    with pytest.raises(ClientError) as raised:
        _lambda(aws_proxy).create_function(
            FunctionName=FUNCTION, Role=_role(aws_proxy), PackageType="Image", Code={"ImageUri": IMAGE},
            AcceleratorConfig={"AcceleratorMemorySize": 24},
        )  # fmt: skip
    code, message = _error(raised)
    assert code == "InvalidParameterValueException"
    assert "must also have a capacity provider configuration" in message


def test_accelerator_needs_x86_64(aws_proxy: AwsProxy) -> None:
    with pytest.raises(ClientError) as raised:
        _gpu_function(aws_proxy, Architectures=["arm64"], AcceleratorConfig={"AcceleratorMemorySize": 24})
    code, message = _error(raised)
    assert code == "InvalidParameterValueException" and "Image package type on x86_64" in message


def test_memory_per_vcpu_is_2_4_or_8(aws_proxy: AwsProxy) -> None:
    role = _role(aws_proxy)
    managed = {"CapacityProviderArn": _capacity_provider(aws_proxy, role),
               "ExecutionEnvironmentMemoryGiBPerVCpu": 3.0}  # fmt: skip
    with pytest.raises(ClientError) as raised:
        _lambda(aws_proxy).create_function(
            FunctionName=FUNCTION, Role=role, PackageType="Image", Code={"ImageUri": IMAGE},
            CapacityProviderConfig={"LambdaManagedInstancesCapacityProviderConfig": managed},
        )  # fmt: skip
    assert _error(raised) == (
        "InvalidParameterValueException",
        "ExecutionEnvironmentMemoryGiBPerVCpu must be 2, 4 or 8 GiB per vCPU",
    )


def test_a_capacity_provider_is_given_at_creation_only(aws_proxy: AwsProxy) -> None:
    """A CPU function cannot be moved onto Managed Instances in place: the compute type is fixed when
    the function is created."""
    lam = _lambda(aws_proxy)
    role = _role(aws_proxy)
    arn = _capacity_provider(aws_proxy, role)
    lam.create_function(FunctionName="plain", Role=role, PackageType="Image", Code={"ImageUri": IMAGE})
    with pytest.raises(ClientError) as raised:
        lam.update_function_configuration(
            FunctionName="plain",
            CapacityProviderConfig={
                "LambdaManagedInstancesCapacityProviderConfig": {"CapacityProviderArn": arn}
            },
        )
    assert _error(raised) == (
        "InvalidParameterValueException",
        "CapacityProviderConfig can only be set when the function is created",
    )


def test_botocore_model_limits_are_enforced(aws_proxy: AwsProxy) -> None:
    managed = {"CapacityProviderArn": "arn:aws:lambda:us-east-1:123456789012:capacity-provider:x",
               "PerExecutionEnvironmentMaxConcurrency": 1601}  # fmt: skip
    with pytest.raises(ClientError) as raised:
        _gpu_function(
            aws_proxy, CapacityProviderConfig={"LambdaManagedInstancesCapacityProviderConfig": managed}
        )
    code, message = _error(raised)
    assert (
        code == "ValidationException"
        and "PerExecutionEnvironmentMaxConcurrency" in message
        and "1600" in message
    )


def test_function_memory_range_depends_on_the_compute_type(aws_proxy: AwsProxy) -> None:
    """Standard Lambda: 128-10240 MB; Lambda Managed Instances: at least 2048 MB, up to botocore's 32768."""
    lam, role = _lambda(aws_proxy), _role(aws_proxy)
    managed = {"LambdaManagedInstancesCapacityProviderConfig": {
        "CapacityProviderArn": _capacity_provider(aws_proxy, role)}}  # fmt: skip
    image = {"Role": role, "PackageType": "Image", "Code": {"ImageUri": IMAGE}}
    big = lam.create_function(
        FunctionName="big-gpu", MemorySize=32768, CapacityProviderConfig=managed, **image
    )
    assert big["MemorySize"] == 32768
    with pytest.raises(ClientError) as raised:
        lam.create_function(
            FunctionName="small-gpu", MemorySize=1024, CapacityProviderConfig=managed, **image
        )
    assert _error(raised) == (
        "InvalidParameterValueException",
        "MemorySize 1024 MB is below 2048 MB for a Lambda Managed Instances function",
    )
    with pytest.raises(ClientError) as raised:
        lam.create_function(FunctionName="big-cpu", MemorySize=10241, **image)
    assert _error(raised) == (
        "InvalidParameterValueException",
        "MemorySize 10241 MB is above 10240 MB for a function without a capacity provider",
    )
    lam.create_function(FunctionName="cpu", MemorySize=10240, **image)
    with pytest.raises(ClientError) as raised:
        lam.update_function_configuration(FunctionName="cpu", MemorySize=12288)
    assert _error(raised) == (
        "InvalidParameterValueException",
        "MemorySize 12288 MB is above 10240 MB for a function without a capacity provider",
    )


def _published_gpu_function(proxy: AwsProxy, floor: int) -> str:
    _gpu_function(proxy)
    version = _lambda(proxy).publish_version(FunctionName=FUNCTION)["Version"]
    _lambda(proxy).create_alias(FunctionName=FUNCTION, Name=ALIAS, FunctionVersion=version)
    _lambda(proxy).put_function_scaling_config(  # what the stack's FunctionScalingConfig creates
        FunctionName=FUNCTION, Qualifier=version,
        FunctionScalingConfig={"MinExecutionEnvironments": floor, "MaxExecutionEnvironments": MAX_ENVIRONMENTS},
    )  # fmt: skip
    return version


def test_scaling_config_takes_a_version_never_an_alias(aws_proxy: AwsProxy) -> None:
    version = _published_gpu_function(aws_proxy, floor=1)
    lam = _lambda(aws_proxy)
    with pytest.raises(ClientError) as raised:
        lam.put_function_scaling_config(FunctionName=FUNCTION, Qualifier=ALIAS,
                                        FunctionScalingConfig={"MinExecutionEnvironments": 1})  # fmt: skip
    code, message = _error(raised)
    assert code == "ValidationException" and "regular expression pattern" in message
    with pytest.raises(ClientError) as raised:
        lam.put_function_scaling_config(FunctionName=FUNCTION, Qualifier=version,
                                        FunctionScalingConfig={"MinExecutionEnvironments": 9,
                                                               "MaxExecutionEnvironments": 8})  # fmt: skip
    assert _error(raised)[0] == "InvalidParameterValueException"
    with pytest.raises(ClientError) as raised:
        lam.put_function_scaling_config(FunctionName=FUNCTION, Qualifier=version,
                                        FunctionScalingConfig={"MaxExecutionEnvironments": 15001})  # fmt: skip
    assert "15000" in _error(raised)[1]
    assert _settled_config(aws_proxy, version) == {
        "MinExecutionEnvironments": 1,
        "MaxExecutionEnvironments": 8,
    }


def _settled_config(proxy: AwsProxy, version: str) -> dict[str, Any]:
    """The version's scaling config once settled: Lambda then answers only the applied config."""
    time.sleep(proxy.managed_instances.apply_s)
    answer = _lambda(proxy).get_function_scaling_config(FunctionName=FUNCTION, Qualifier=version)
    assert "RequestedFunctionScalingConfig" not in answer  # cleared once the change took effect
    return answer["AppliedFunctionScalingConfig"]


def test_a_settled_config_is_read_from_the_applied_one(aws_proxy: AwsProxy) -> None:
    """Once settled only AppliedFunctionScalingConfig is answered: the floor still keeps the stack's
    ceiling (reading only the requested config would cap the function at its floor)."""
    version = _published_gpu_function(aws_proxy, floor=1)
    control = _gpu_stand_in(aws_proxy).target.control(fast_retry())
    time.sleep(aws_proxy.managed_instances.apply_s)
    assert control.capacity(version) == Capacity(requested=1, ready=1)
    control.set_capacity(version, 3)
    assert _settled_config(aws_proxy, version) == {
        "MinExecutionEnvironments": 3,
        "MaxExecutionEnvironments": MAX_ENVIRONMENTS,
    }
    puts = aws_proxy.operations.count("PutFunctionScalingConfig")
    control.set_capacity(version, 3)  # already there: nothing sent
    assert aws_proxy.operations.count("PutFunctionScalingConfig") == puts


def test_deleting_the_config_resets_the_version(aws_proxy: AwsProxy) -> None:
    """Pulumi's FunctionScalingConfig deletes by a Put without a config (no Delete API)."""
    version = _published_gpu_function(aws_proxy, floor=2)
    _lambda(aws_proxy).put_function_scaling_config(FunctionName=FUNCTION, Qualifier=version)
    assert _settled_config(aws_proxy, version) == {}
    assert aws_proxy.managed_instances.floor(FUNCTION, version) is None


def test_scaling_config_only_on_managed_instances_functions(aws_proxy: AwsProxy) -> None:
    lam = _lambda(aws_proxy)
    lam.create_function(
        FunctionName="plain", Role=_role(aws_proxy), PackageType="Image", Code={"ImageUri": IMAGE}
    )
    version = lam.publish_version(FunctionName="plain")["Version"]
    with pytest.raises(ClientError) as raised:
        lam.put_function_scaling_config(FunctionName="plain", Qualifier=version,
                                        FunctionScalingConfig={"MinExecutionEnvironments": 1})  # fmt: skip
    assert "Lambda Managed Instances" in _error(raised)[1]


def test_reserved_capacity_kind_is_checked() -> None:
    with pytest.raises(TargetError, match="LLMFN_RESERVED_CAPACITY"):
        CloudTarget("aws", FUNCTION, ALIAS, REGION_AWS, reserved_capacity="gpus")  # type: ignore[arg-type]
    with pytest.raises(TargetError, match="aws only"):
        CloudTarget("tencent", FUNCTION, ALIAS, "ap-guangzhou", secret_id="a", secret_key="b",
                    reserved_capacity="execution-environments")  # fmt: skip


POLICY_CONFIG: dict[str, Any] = {
    "concurrency_per_instance": CONCURRENCY,
    "max_reserved": MAX_ENVIRONMENTS,
    "hybrid": {"rates_by_hour": [2.0] * 24, "p95_latency_s": 2.5, "headroom": 0.2, "correction_after_s": 120},
}
# Per minute: invocations, mean = max concurrency (requests in flight), Duration (ms).
SERIES = [(120, 4.0, 2000), (1800, 40.0, 2600), (2400, 50.0, 2800), (1800, 44.0, 2700), (120, 4.0, 1900)]


def _scaler_env(proxy: AwsProxy) -> dict[str, str]:
    """The GPU stack's scaler environment against the stand-in (its state bucket created)."""
    boto3.client("s3", region_name=REGION_AWS, endpoint_url=proxy.url).create_bucket(Bucket=STATE_BUCKET)
    return {
        "LLMFN_CLOUD": "aws", "LLMFN_FUNCTION": FUNCTION, "LLMFN_ALIAS": ALIAS, "LLMFN_REGION": REGION_AWS,
        "LLMFN_CLOUD_ENDPOINT": proxy.url, "LLMFN_STATE_BUCKET": STATE_BUCKET,
        "LLMFN_STATE_ENDPOINT": proxy.url, "LLMFN_RESERVED_CAPACITY": "execution-environments",
        "LLMFN_POLICY_CONFIG": __import__("json").dumps(POLICY_CONFIG),
    }  # fmt: skip


def test_scaler_moves_min_execution_environments(aws_proxy: AwsProxy) -> None:
    version = _published_gpu_function(aws_proxy, floor=1)
    settings = ScalerSettings.from_env(_scaler_env(aws_proxy))
    run = Scaler.from_settings(settings, fast_retry())
    assert isinstance(run.control, ManagedInstancesControl)

    stand_in = StandIn(
        "aws", settings.target, aws_proxy.faults, aws_proxy.url, aws_proxy.faults, aws_proxy=aws_proxy
    )
    t0 = start_minute(len(SERIES) + 1)
    for i, (calls, concurrency, duration_ms) in enumerate(SERIES):
        stand_in.put_minute(ALIAS, t0 + timedelta(minutes=i), calls, 0, concurrency, duration_ms)

    policy = make_policy("hybrid", PolicyConfig.from_mapping(POLICY_CONFIG))
    state, reserved, floors, expected = policy.initial_state(), 1, [], []
    for i, (calls, concurrency, duration_ms) in enumerate(SERIES):
        outcome = run.run_once(t0 + timedelta(minutes=i + 1, seconds=5))
        assert outcome.action == "scaled", outcome
        floors.append(aws_proxy.managed_instances.floor(FUNCTION, version))
        tick_end = (t0 + timedelta(minutes=i + 1)).timestamp()
        obs = Observation(
            t_s=tick_end, interval_s=60.0, hour_of_day=int(tick_end // 3600) % 24, arrival_rate_rps=calls / 60,
            in_flight=concurrency, reserved_instances=reserved,
            on_demand_instances=max(0, math.ceil(concurrency / CONCURRENCY) - reserved),
            reserved_utilisation=min(1.0, concurrency / (reserved * CONCURRENCY)) if reserved else 0.0,
            p95_latency_s=duration_ms / 1000,
        )  # fmt: skip
        decision, state = policy.decide(obs, state)
        expected.append(asdict(decision))
        reserved = decision.reserved
        assert outcome.decision == expected[-1]
    assert floors == [d["reserved"] for d in expected]
    assert len(set(floors)) >= 2  # the floor moved with the load
    assert aws_proxy.managed_instances.refused == []
    assert _settled_config(aws_proxy, version)["MaxExecutionEnvironments"] == MAX_ENVIRONMENTS  # the stack's


def test_promote_on_a_gpu_stack_moves_execution_environments(tmp_path: Any) -> None:
    from llmfn.release.stack import resolve_stack

    outputs = {"cloud": "aws", "region": REGION_AWS, "functionName": FUNCTION, "aliasName": ALIAS,
               "endpointUrl": "https://abc.execute-api.us-east-1.amazonaws.com/",
               "reservedCapacity": "execution-environments"}  # fmt: skip
    path = tmp_path / "gpu.json"
    path.write_text(__import__("json").dumps(outputs))
    target = resolve_stack("gpu", path).target
    assert target.reserved_capacity == "execution-environments"
    assert isinstance(target.control(fast_retry()), ManagedInstancesControl)


def _gpu_stand_in(proxy: AwsProxy) -> StandIn:
    target = CloudTarget("aws", FUNCTION, ALIAS, REGION_AWS, endpoint=proxy.url, timeout_s=2.0,
                         reserved_capacity="execution-environments")  # fmt: skip
    return StandIn("aws", target, proxy.faults, proxy.url, proxy.faults, aws_proxy=proxy)


def test_promotion_moves_the_floor_to_the_new_version(aws_proxy: AwsProxy, inference_endpoint: str) -> None:  # noqa: F811
    old = _published_gpu_function(aws_proxy, floor=2)
    stand_in = _gpu_stand_in(aws_proxy)
    publish_canary_metrics(stand_in)
    report = promotion(stand_in, inference_endpoint).run()
    assert report.status == "promoted", report.reason
    new = report.new_version
    gpu = aws_proxy.managed_instances
    assert gpu.versions[FUNCTION][new][
        "CapacityProviderConfig"
    ]  # the new version runs on the capacity provider
    assert (gpu.floor(FUNCTION, new), gpu.floor(FUNCTION, old)) == (2, 0)  # floor moved, old one released
    assert (
        gpu.scaling[(FUNCTION, new)]["requested"]["MaxExecutionEnvironments"] == MAX_ENVIRONMENTS
    )  # the stack's
    assert gpu.refused == []


def test_throttled_and_lost_floor_changes_are_retried(aws_proxy: AwsProxy) -> None:
    version = _published_gpu_function(aws_proxy, floor=1)
    control = _gpu_stand_in(aws_proxy).target.control(fast_retry())
    aws_proxy.faults.inject("PutFunctionScalingConfig", "throttle")
    aws_proxy.faults.inject("GetFunctionScalingConfig", "5xx")
    control.set_capacity(version, 3)
    assert aws_proxy.managed_instances.floor(FUNCTION, version) == 3
    assert aws_proxy.faults.pending() == 0
    assert (
        aws_proxy.operations.count("PutFunctionScalingConfig") == 3
    )  # the stack's, the throttled one, the retry


def test_the_floor_never_moves_the_stacks_ceiling(aws_proxy: AwsProxy) -> None:
    version = _published_gpu_function(aws_proxy, floor=1)
    control = _gpu_stand_in(aws_proxy).target.control(fast_retry())
    control.set_capacity(version, MAX_ENVIRONMENTS + 5)
    requested = aws_proxy.managed_instances.scaling[(FUNCTION, version)]["requested"]
    assert requested == {
        "MinExecutionEnvironments": MAX_ENVIRONMENTS,
        "MaxExecutionEnvironments": MAX_ENVIRONMENTS,
    }


# ----- floors never leak; versions never pile up (issue 20, item 1) -----
def _publish(proxy: AwsProxy, floor: int | None = None) -> str:
    """One more published version of the GPU function (with a floor, as the old stack gave every one).
    Something changes first: Lambda publishes nothing new for an unchanged function (nor does moto)."""
    lam = _lambda(proxy)
    lam.update_function_configuration(FunctionName=FUNCTION, Description=f"change {time.monotonic_ns()}")
    version = str(lam.publish_version(FunctionName=FUNCTION)["Version"])
    if floor is not None:
        _lambda(proxy).put_function_scaling_config(
            FunctionName=FUNCTION, Qualifier=version,
            FunctionScalingConfig={"MinExecutionEnvironments": floor, "MaxExecutionEnvironments": MAX_ENVIRONMENTS},
        )  # fmt: skip
    return version


def _canary_minute(stand_in: StandIn, version: str, errors: float = 0.0) -> None:
    minute = datetime.now(UTC) - timedelta(seconds=120)
    stand_in.put_minute(version, minute, invocations=100, errors=errors, concurrency=1, duration_ms=400.0)


def test_a_capacity_provider_holds_at_most_100_versions(aws_proxy: AwsProxy) -> None:
    _gpu_function(aws_proxy)
    for _ in range(100):
        _publish(aws_proxy)
    with pytest.raises(ClientError) as raised:
        _publish(aws_proxy)
    assert _error(raised)[0] == "FunctionVersionsPerCapacityProviderLimitExceededException"
    _lambda(aws_proxy).delete_function(FunctionName=FUNCTION, Qualifier="1")  # a deleted one frees its slot
    assert len(aws_proxy.managed_instances.versions[FUNCTION]) == 99


def test_promotion_leaves_floors_only_on_the_alias_and_deletes_older_versions(
    aws_proxy: AwsProxy,
    inference_endpoint: str,  # noqa: F811
) -> None:
    """Version 1 (older than the alias's), 2 (the alias's) and 3 (published by a later ``pulumi up``,
    never promoted) all hold floors; promoting a new revision leaves a floor on the new version only
    and deletes version 1, which is older than the rollback target (2)."""
    _gpu_function(aws_proxy)
    old = _publish(aws_proxy, floor=1)
    primary = _publish(aws_proxy, floor=2)
    _lambda(aws_proxy).create_alias(FunctionName=FUNCTION, Name=ALIAS, FunctionVersion=primary)
    stray = _publish(aws_proxy, floor=1)
    stand_in = _gpu_stand_in(aws_proxy)
    _canary_minute(stand_in, str(int(stray) + 1))
    report = promotion(stand_in, inference_endpoint).run()
    assert report.status == "promoted", report.reason
    gpu = aws_proxy.managed_instances
    assert gpu.floors(FUNCTION) == {report.new_version: 2}
    assert sorted(gpu.versions[FUNCTION], key=int) == [primary, stray, report.new_version]
    assert report.released == {"floors_released": [stray], "deleted": [old]}
    assert gpu.refused == []


def test_a_rollback_leaves_floors_only_on_the_alias(aws_proxy: AwsProxy, inference_endpoint: str) -> None:  # noqa: F811
    _gpu_function(aws_proxy)
    old = _publish(aws_proxy, floor=1)
    primary = _publish(aws_proxy, floor=2)
    _lambda(aws_proxy).create_alias(FunctionName=FUNCTION, Name=ALIAS, FunctionVersion=primary)
    stand_in = _gpu_stand_in(aws_proxy)
    _canary_minute(stand_in, str(int(primary) + 1), errors=50)  # the canary fails its first gate
    report = promotion(stand_in, inference_endpoint).run()
    assert report.status == "rolled-back"
    gpu = aws_proxy.managed_instances
    assert gpu.floors(FUNCTION) == {primary: 2}
    assert old not in gpu.versions[FUNCTION] and report.new_version in gpu.versions[FUNCTION]


# ----- publish: resumed, keyed on what a version freezes (items 8, 9) -----
def _props(proxy: AwsProxy, **changes: Any) -> dict[str, Any]:
    return {"function_name": FUNCTION, "accelerator_memory_gb": 24, "region": REGION_AWS,
            "endpoint_url": proxy.url, "code_ref": IMAGE, "frozen_inputs": "h0", **changes}  # fmt: skip


def test_an_interrupted_publish_is_resumed_not_repeated(aws_proxy: AwsProxy) -> None:
    """``pulumi up`` killed after PublishVersion (while the three environments start) leaves a version
    Pulumi never recorded; the next run's create finds it by its key and publishes nothing."""
    _gpu_function(aws_proxy, Description="llmfn model-revision=" + "a" * 40)
    first = AcceleratorConfigProvider().create(_props(aws_proxy)).outs["version"]
    publishes = aws_proxy.operations.count("PublishVersion")
    again = AcceleratorConfigProvider().create(_props(aws_proxy)).outs["version"]
    assert again == first and aws_proxy.operations.count("PublishVersion") == publishes
    control = _gpu_stand_in(aws_proxy).target.control(fast_retry())
    assert parse_description(control.versions()[first]) == ("a" * 40, None)  # llmfn promote still finds it


def test_only_a_new_image_or_frozen_input_publishes(aws_proxy: AwsProxy) -> None:
    """The key is the image digest plus the hash of what a version freezes, never LastModified (which
    the resource's own UpdateFunctionConfiguration moves): same inputs, no change, nothing sent; a new
    image publishes without another UpdateFunctionConfiguration when the accelerator size is set."""
    _gpu_function(aws_proxy)
    provider = AcceleratorConfigProvider()
    props = _props(aws_proxy)
    first = provider.create(props).outs
    assert not provider.diff("id", first, props).changes  # `pulumi refresh` moved LastModified: no input
    lam = _lambda(aws_proxy)
    new_image = IMAGE[:-2] + "cd"
    lam.update_function_code(FunctionName=FUNCTION, ImageUri=new_image)  # what Pulumi's Function does first
    updates = aws_proxy.operations.count("UpdateFunctionConfiguration")
    assert provider.diff("id", first, _props(aws_proxy, code_ref=new_image)).changes
    second = provider.update("id", first, _props(aws_proxy, code_ref=new_image)).outs["version"]
    assert int(second) == int(first["version"]) + 1
    assert aws_proxy.operations.count("UpdateFunctionConfiguration") == updates  # size already 24 GiB
    assert aws_proxy.managed_instances.versions[FUNCTION][second]["AcceleratorConfig"] == {
        "AcceleratorMemorySize": 24
    }


# ----- the GPU stack's first day, against the stand-in -----
def _deploy_version(proxy: AwsProxy, image: str, frozen: str) -> str:
    """What `pulumi up` does to the function after its image changed: the accelerator resource
    (publish, wait until Active) and the version's FunctionScalingConfig with its starting floor."""
    from infra.clouds.aws.gpu.managed import initial_floor

    version = (
        AcceleratorConfigProvider()
        .create(_props(proxy, code_ref=image, frozen_inputs=frozen))
        .outs["version"]
    )
    state = _lambda(proxy).get_function_configuration(FunctionName=FUNCTION, Qualifier=version)["State"]
    assert state == "Active"
    try:
        alias_version = _lambda(proxy).get_alias(FunctionName=FUNCTION, Name=ALIAS)["FunctionVersion"]
    except ClientError:
        _lambda(proxy).create_alias(
            FunctionName=FUNCTION, Name=ALIAS, FunctionVersion=version
        )  # first deploy
        alias_version = version
    _lambda(proxy).put_function_scaling_config(
        FunctionName=FUNCTION, Qualifier=version,
        FunctionScalingConfig={"MinExecutionEnvironments": initial_floor(1, alias_version, version),
                               "MaxExecutionEnvironments": MAX_ENVIRONMENTS},
    )  # fmt: skip
    return version


def test_the_gpu_stacks_first_day(aws_proxy: AwsProxy, inference_endpoint: str) -> None:  # noqa: F811
    """Deploy, a chat request through the alias, a scaler tick, a second deploy with a new image digest,
    a canary promotion, a failed one rolled back, destroy: afterwards only the alias's versions hold
    floors and no version older than the rollback target remains; after destroy nothing remains."""
    from functions.image.forward import make_handler
    from tests.functions.test_entry_points import http_api_v2_event

    gpu = aws_proxy.managed_instances
    lam = _lambda(aws_proxy)
    _gpu_function(aws_proxy, Description="llmfn model-revision=rev-1")
    first = _deploy_version(aws_proxy, IMAGE, "h0")
    assert gpu.floors(FUNCTION) == {first: 1}  # the alias's version: the schedule's floor

    # one chat request through the alias: rejected until an environment is ready, then answered by it
    control = _gpu_stand_in(aws_proxy).target.control(fast_retry())
    chat = http_api_v2_event("POST", "/v1/chat/completions",
                             __import__("json").dumps({"model": "tiny", "messages": [{"role": "user", "content": "hi"}]}))  # fmt: skip
    with pytest.raises(ClientError) as raised:
        lam.invoke(FunctionName=FUNCTION, Qualifier=ALIAS, Payload=__import__("json").dumps(chat))
    assert _error(raised)[0] == "TooManyRequestsException"
    gpu.environment_ready(FUNCTION, make_handler(inference_endpoint))  # its /readyz is 200
    answer = control.invoke(ALIAS, chat)
    reply = __import__("json").loads(answer.body)
    assert answer.ok and reply["statusCode"] == 200, answer.body
    assert __import__("json").loads(reply["body"])["object"] == "chat.completion"

    # a scaler tick moves the alias's floor
    scaler = Scaler.from_settings(ScalerSettings.from_env(_scaler_env(aws_proxy)), fast_retry())
    stand_in = _gpu_stand_in(aws_proxy)
    t0 = start_minute(len(SERIES) + 1)
    floors = []
    for i, (calls, concurrency, duration_ms) in enumerate(SERIES):
        stand_in.put_minute(ALIAS, t0 + timedelta(minutes=i), calls, 0, concurrency, duration_ms)
        assert scaler.run_once(t0 + timedelta(minutes=i + 1, seconds=5)).action == "scaled"
        floors.append(gpu.floor(FUNCTION, first))
    assert max(floors) > 1  # the scaler moved the alias's floor with the load
    scaled = floors[-1]

    # a second deploy with a new image digest: a new version, no floor (the alias still serves `first`)
    new_image = IMAGE[:-2] + "cd"
    lam.update_function_code(FunctionName=FUNCTION, ImageUri=new_image)
    second = _deploy_version(aws_proxy, new_image, "h0")
    assert int(second) == int(first) + 1
    assert gpu.floor(FUNCTION, second) == 0 and gpu.floor(FUNCTION, first) == scaled

    # llmfn promote (canary steps) of what the stack published, then a failed promotion rolled back
    _canary_minute(stand_in, second)
    promoted = promotion(stand_in, inference_endpoint, model_revision="rev-1", steps=(10, 50, 100)).run()
    assert (promoted.status, promoted.new_version, promoted.previous_version) == ("promoted", second, first)
    assert [step["percent"] for step in promoted.steps] == [10, 50, 100]
    _canary_minute(stand_in, str(int(second) + 1), errors=50)
    rolled = promotion(stand_in, inference_endpoint, model_revision="rev-3").run()
    assert (rolled.status, rolled.previous_version) == ("rolled-back", second)
    assert control.alias().primary == second and not control.alias().weights

    # only the alias's versions hold floors; nothing older than the rollback target remains
    assert set(gpu.floors(FUNCTION)) == {second}
    assert min(map(int, gpu.versions[FUNCTION])) == int(second)
    not_ready = ("Invoke", f"No execution environment of {FUNCTION} is ready to take invocations")
    assert gpu.refused and set(gpu.refused) == {
        not_ready
    }  # only the request before the environment (and botocore's retries of it)

    # destroy: the stack's resources go (function with its versions and alias, then the capacity provider)
    lam.delete_function(FunctionName=FUNCTION)
    lam.delete_capacity_provider(CapacityProviderName="llmfn-gpu")
    assert gpu.versions.get(FUNCTION) is None and gpu.floors(FUNCTION) == {}
    assert gpu.capacity_providers == {}

"""The AWS GPU example stack (Lambda Managed Instances) under Pulumi's mocks, and its config rules."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pulumi_aws
import pytest

from functions.scaler.settings import ScalerSettings
from infra.clouds.aws.gpu import managed as gpu_aws
from infra.clouds.aws.gpu.accelerator import AcceleratorConfigProvider
from infra.config import StackConfigError
from tests.infra.mocks import (
    ACCOUNT,
    ECR_PASSWORD,
    IMAGE_DIGEST,
    REPO_ROOT,
    StackRun,
    example_config,
    example_with,
    parse_example,
    plain,
    published_version,
    run_stack,
)

EXAMPLE = "Pulumi.example-aws-gpu.yaml"
FUNCTION = "aws:lambda/function:Function"
SCALING = "aws:lambda/functionScalingConfig:FunctionScalingConfig"
ACCELERATOR = "pulumi-python:dynamic:Resource"
REPOSITORY_URL = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/qwen3-4b-gpu-serve"


@pytest.fixture(scope="module")
def example() -> StackRun:
    return run_stack(example_config(EXAMPLE))


def _named(run: StackRun, typ: str, name: str) -> dict[str, Any]:
    return next(r.inputs for r in run.of_type(typ) if r.name == name)


def test_gpu_graph_has_managed_instances_and_no_provisioned_concurrency(example: StackRun) -> None:
    counts = Counter(r.typ for r in example.registered)
    assert counts["aws:lambda/capacityProvider:CapacityProvider"] == 1
    assert counts[SCALING] == 1
    assert counts[ACCELERATOR] == 1
    assert counts["aws:ecr/repository:Repository"] == 2  # the GPU image's and the scaler's
    assert counts["docker-build:index:Image"] == 2
    # one controller of the floor: no provisioned concurrency, no Application Auto Scaling
    for typ in (
        "aws:lambda/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig",
        "aws:appautoscaling/target:Target",
        "aws:appautoscaling/scheduledAction:ScheduledAction",
        "aws:appautoscaling/policy:Policy",
    ):
        assert counts[typ] == 0, typ


def test_capacity_provider_with_operator_role_vpc_and_gpu_instances(example: StackRun) -> None:
    provider = example.one("aws:lambda/capacityProvider:CapacityProvider").inputs
    assert provider["vpcConfig"] == {
        "subnetIds": ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"],
        "securityGroupIds": ["sg-0123456789abcdef0"],
    }
    assert provider["instanceRequirements"] == [
        {"architectures": ["x86_64"], "allowedInstanceTypes": ["g6.xlarge", "g6.2xlarge"]}
    ]
    assert provider["capacityProviderScalingConfigs"] == [{"scalingMode": "Auto", "maxVcpuCount": 64}]
    assert provider["permissionsConfig"]["capacityProviderOperatorRoleArn"].endswith(
        ":role/llmfn-operator-role"
    )
    attached = _named(
        example, "aws:iam/rolePolicyAttachment:RolePolicyAttachment", "llmfn-operator-role-policy"
    )
    assert attached["policyArn"] == "arn:aws:iam::aws:policy/AWSLambdaManagedEC2ResourceOperator"


def test_gpu_utilisation_target_scales_instances_on_gpu_use() -> None:
    run = run_stack(example_with(EXAMPLE, gpu=_gpu(gpuUtilizationTarget=60)))
    provider = run.one("aws:lambda/capacityProvider:CapacityProvider").inputs
    assert provider["capacityProviderScalingConfigs"] == [
        {
            "scalingMode": "Manual",
            "maxVcpuCount": 64,
            "scalingPolicies": [
                {"predefinedMetricType": "LambdaCapacityProviderAverageGPUUtilization", "targetValue": 60}
            ],
        }
    ]


def test_image_function_on_the_capacity_provider(example: StackRun) -> None:
    function = _named(example, FUNCTION, "llmfn-function")
    assert (function["packageType"], function["architectures"]) == ("Image", ["x86_64"])
    assert function["imageUri"] == f"{REPOSITORY_URL}@{IMAGE_DIGEST}"  # the pushed digest, not the tag
    assert function["publish"] is False  # published by the accelerator resource, with AcceleratorConfig
    managed = function["capacityProviderConfig"]["lambdaManagedInstancesCapacityProviderConfig"]
    assert managed == {
        "capacityProviderArn": f"arn:aws:lambda:us-east-1:{ACCOUNT}:capacity-provider:qwen3-4b-gpu-gpu",
        "perExecutionEnvironmentMaxConcurrency": 8,
        "executionEnvironmentMemoryGibPerVcpu": 4,
    }
    env = plain(function["environment"])["variables"]
    assert (env["LLMFN_ENGINE"], env["LLMFN_MAX_CONCURRENCY"]) == ("vllm", "8")


def test_accelerator_publishes_the_version_the_alias_and_floor_use(example: StackRun) -> None:
    accelerator = example.one(ACCELERATOR).inputs
    assert (accelerator["function_name"], accelerator["accelerator_memory_gb"]) == ("qwen3-4b-gpu-infer", 24)
    assert accelerator["code_ref"] == f"{REPOSITORY_URL}@{IMAGE_DIGEST}"  # a new image republishes
    version = published_version(example.one(ACCELERATOR).inputs)  # what the dynamic resource published
    alias = example.one("aws:lambda/alias:Alias").inputs
    assert alias["functionVersion"] == version
    floor = example.one(SCALING).inputs
    schedule = parse_example(example_config(EXAMPLE)).reserved_schedule
    assert floor["qualifier"] == version  # a version: scaling configs take no alias
    assert floor["functionScalingConfig"] == {
        "minExecutionEnvironments": min(schedule),
        "maxExecutionEnvironments": 8,
    }
    assert example.outputs["version"] == version
    # the floor's cost at the instance price plus Lambda's management fee (scaling.providers "lambda-gpu")
    assert example.outputs["reservedEnvironmentHoursPerDay"] == sum(schedule)
    assert example.outputs["reservedCapacity"] == "execution-environments"  # read by llmfn promote --stack
    assert example.outputs["estimatedReservedCostPerDay"] == pytest.approx(
        sum(schedule) * 0.8048 * 1.15, abs=1e-3
    )


def test_llmfn_plan_prints_the_floor_cost_the_stack_exports(example: StackRun, tmp_path: Path) -> None:
    """`llmfn plan --provider lambda-gpu` on the example's rule and rates agrees with the stack's outputs."""
    config = parse_example(example_config(EXAMPLE))
    rates = tmp_path / "rates.json"
    rates.write_text(json.dumps(config.hourly_rates))
    flags = {
        "--p95": config.p95_latency_s,
        "--concurrency": config.concurrency_per_instance,
        "--headroom": config.headroom,
        "--min": config.min_instances,
        "--max": config.max_instances,
    }
    args = [arg for flag, value in flags.items() for arg in (flag, str(value))]
    exe = Path(sys.executable).with_name("llmfn")
    out = subprocess.run(
        [str(exe), "plan", "--rate-profile", str(rates), *args, "--provider", "lambda-gpu", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    plan = json.loads(out.stdout)
    assert plan["reserved_by_hour"] == example.outputs["reservedSchedule"]
    assert plan["reserved_environment_hours_per_day"] == example.outputs["reservedEnvironmentHoursPerDay"]
    assert plan["estimated_reserved_cost_per_day"] == example.outputs["estimatedReservedCostPerDay"]
    assert plan["estimated_reserved_cost_per_day"] > 0


@pytest.mark.parametrize(
    "change", [{"memoryMb": 10240}, {"modelRevision": "f" * 40}, {"timeoutS": 600}], ids=str
)
def test_any_change_of_the_function_publishes_a_new_version(
    example: StackRun, change: dict[str, Any]
) -> None:
    """With publish=False only the accelerator resource publishes: a configuration change (not only a new
    image) must reach a new version, or it never reaches the alias."""
    again = run_stack(example_config(EXAMPLE)).one(ACCELERATOR).inputs
    before = example.one(ACCELERATOR).inputs
    assert again["frozen_inputs"] == before["frozen_inputs"]  # same program: no new version
    changed = run_stack(example_with(EXAMPLE, **change))
    after = changed.one(ACCELERATOR).inputs
    assert after["code_ref"] == before["code_ref"]  # same image
    assert after["frozen_inputs"] != before["frozen_inputs"]
    diff = AcceleratorConfigProvider().diff("id", plain_props(before), plain_props(after))
    assert diff.changes and not diff.replaces  # an update: configured again and published
    assert published_version(after) != published_version(before)
    assert changed.one(SCALING).inputs["qualifier"] == published_version(after)


def plain_props(inputs: dict[str, Any]) -> dict[str, Any]:
    return {k: plain(v) for k, v in inputs.items() if k != "__provider"}


def test_the_scaler_owns_the_floor(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []
    original = pulumi_aws.lambda_.FunctionScalingConfig

    class Recording(original):  # type: ignore[misc, valid-type]
        def __init__(self, name: str, *args: Any, opts: Any = None, **kwargs: Any) -> None:
            seen.append(opts)
            super().__init__(name, *args, opts=opts, **kwargs)

    monkeypatch.setattr(gpu_aws.lambda_, "FunctionScalingConfig", Recording)
    run = run_stack(example_config(EXAMPLE))
    assert [o.ignore_changes for o in seen] == [["functionScalingConfig.minExecutionEnvironments"]]
    # a new version replaces the resource: the old version (still the alias's) keeps the scaler's floor
    assert [o.retain_on_delete for o in seen] == [True]
    scaler = _named(run, FUNCTION, "llmfn-scaler")
    env = plain(scaler["environment"])["variables"]
    assert env["LLMFN_RESERVED_CAPACITY"] == "execution-environments"
    assert ScalerSettings.from_env(env).target.reserved_capacity == "execution-environments"
    policy = json.loads(run.one("aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    floor_actions = {"lambda:PutFunctionScalingConfig", "lambda:GetFunctionScalingConfig"}
    (statement,) = [s for s in policy["Statement"] if floor_actions & set(s["Action"])]
    assert set(statement["Action"]) == floor_actions
    function_arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:qwen3-4b-gpu-infer"
    assert statement["Resource"] == [function_arn, f"{function_arn}:*"]  # its versions, nothing else


def test_image_pushed_to_the_stacks_ecr_repository(example: StackRun) -> None:
    repository = _named(example, "aws:ecr/repository:Repository", "llmfn-repository")
    assert repository["name"] == "qwen3-4b-gpu-serve"
    image = _named(example, "docker-build:index:Image", "llmfn-image")
    assert image["push"] is True
    assert image["platforms"] == ["linux/amd64"]
    assert (image["target"], image["dockerfile"], image["context"]) == (
        "gpu",
        {"location": str(REPO_ROOT / "functions" / "image" / "Dockerfile")},
        {"location": str(REPO_ROOT)},
    )
    assert image["tags"] == [f"{REPOSITORY_URL}:0.1.0"]
    registries = image["registries"]
    registries = registries.get("value", registries)  # a secret password wraps the list
    assert registries == [
        {"address": f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com", "username": "AWS", "password": ECR_PASSWORD}
    ]


def test_image_paths_are_the_projects_not_the_programs_cwd(monkeypatch: pytest.MonkeyPatch) -> None:
    """``main: infra/`` makes Pulumi run the program in infra/: the Dockerfile and the build context
    must still be found from the project directory (Pulumi.yaml's)."""
    monkeypatch.chdir(REPO_ROOT / "infra")
    image = _named(run_stack(example_config(EXAMPLE)), "docker-build:index:Image", "llmfn-image")
    assert Path(image["dockerfile"]["location"]).is_file()
    assert Path(image["context"]["location"], "functions", "image", "Dockerfile.dockerignore").is_file()


def test_the_scaler_runs_its_own_slim_image(example: StackRun) -> None:
    """Standard Lambda takes images up to 10 GB: the scaler gets the Dockerfile's ``scaler`` target in
    a repository of its own, never the CUDA + vLLM image."""
    scaler_image = _named(example, "docker-build:index:Image", "llmfn-scaler-image")
    assert scaler_image["target"] == "scaler" and scaler_image["tags"][0].endswith(
        "-scaler-serve:0.1.0-scaler"
    )
    scaler = _named(example, FUNCTION, "llmfn-scaler")
    function = _named(example, FUNCTION, "llmfn-function")
    assert scaler["packageType"] == "Image" and scaler["imageUri"] != function["imageUri"]
    assert scaler["imageUri"].split("@")[0].endswith("qwen3-4b-gpu-scaler-serve")


def test_given_image_uri_needs_a_scaler_image() -> None:
    uri = f"{REPOSITORY_URL}@{IMAGE_DIGEST}"
    with pytest.raises(Exception, match=r"llmfn:gpu\.scalerImageUri is required"):
        run_stack(example_with(EXAMPLE, image=None, imageUri=uri))


def test_given_image_uri_builds_nothing() -> None:
    uri = f"{REPOSITORY_URL}@{IMAGE_DIGEST}"
    scaler_uri = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/scaler@{IMAGE_DIGEST}"
    run = run_stack(example_with(EXAMPLE, image=None, imageUri=uri, gpu=_gpu(scalerImageUri=scaler_uri)))
    assert _named(run, FUNCTION, "llmfn-scaler")["imageUri"] == scaler_uri
    assert not run.of_type("docker-build:index:Image") and not run.of_type("aws:ecr/repository:Repository")
    assert _named(run, FUNCTION, "llmfn-function")["imageUri"] == uri


def _gpu(**changes: Any) -> dict[str, Any]:
    gpu = dict(example_config(EXAMPLE)["llmfn:gpu"])
    gpu.update(changes)
    return {k: v for k, v in gpu.items() if v is not None}


BAD_GPU_CONFIGS = {
    "zip package": (
        example_with(EXAMPLE, image=None, buildDir="build/aws"),
        ["llmfn:buildDir", "package type Image, not Zip"],
    ),
    "arm64": (example_with(EXAMPLE, gpu=_gpu(architecture="arm64")), ["llmfn:gpu.architecture", "x86_64"]),
    "accelerator memory": (
        example_with(EXAMPLE, gpu=_gpu(acceleratorMemoryGb=32)),
        ["llmfn:gpu.acceleratorMemoryGb = 32", "3, 6, 12, 16, 24, 48"],
    ),
    "no subnets": (example_with(EXAMPLE, gpu=_gpu(subnetIds=None)), ["llmfn:gpu.subnetIds is required"]),
    "bad security group": (
        example_with(EXAMPLE, gpu=_gpu(securityGroupIds=["default"])),
        ["llmfn:gpu.securityGroupIds", "sg-"],
    ),
    "memory per vcpu": (
        example_with(EXAMPLE, gpu=_gpu(memoryGibPerVcpu=16)),
        ["llmfn:gpu.memoryGibPerVcpu = 16", "one of 2, 4, 8"],
    ),
    # inside botocore's 2-8 bounds, but "The supported memory-to-CPU ratios are 2GB, 4GB, or 8GB per CPU"
    "memory per vcpu ratio": (
        example_with(EXAMPLE, gpu=_gpu(memoryGibPerVcpu=3)),
        ["llmfn:gpu.memoryGibPerVcpu = 3", "one of 2, 4, 8"],
    ),
    "vcpu ceiling": (
        example_with(EXAMPLE, gpu=_gpu(maxVcpuCount=1)),
        ["llmfn:gpu.maxVcpuCount = 1", "between 2 and 15000"],
    ),
    "gpu utilisation target": (
        example_with(EXAMPLE, gpu=_gpu(gpuUtilizationTarget=0)),
        ["llmfn:gpu.gpuUtilizationTarget = 0", "percentage"],
    ),
    "unknown gpu key": (
        example_with(EXAMPLE, gpu=_gpu(gpuCount=2)),
        ["llmfn:gpu.gpuCount is not a known key", "acceleratorMemoryGb"],
    ),
    # nothing would move the floor: the GPU path has no scheduled actions, and no scaler without 'scaler'
    "scheduled floor": (
        example_with(EXAMPLE, reservedControl="schedule"),
        ["llmfn:reservedControl = 'schedule' with llmfn:gpu", "set 'scaler'"],
    ),
    "concurrency above 1600": (
        example_with(EXAMPLE, concurrencyPerInstance=1601),
        ["llmfn:concurrencyPerInstance", "1600"],
    ),
    "image tag": (
        example_with(EXAMPLE, image={"tag": "-bad"}),
        ["llmfn:image.tag = '-bad'", "docker tag"],
    ),
    "image and uri": (
        example_with(EXAMPLE, imageUri=f"{REPOSITORY_URL}:1"),
        ["exactly one package", "llmfn:image"],
    ),
    # "The minimum supported function size is 2GB and 1 vCPU." (Best practices for Lambda Managed Instances)
    "memory below managed instances' 2 GB": (
        example_with(EXAMPLE, memoryMb=1024),
        ["llmfn:memoryMb = 1024", "Lambda Managed Instances (llmfn:gpu) allows 2048-32768 MB"],
    ),
    # botocore's MemorySize max 32768; pulumi-aws "Valid value between 128 MB to 32,768 MB (32 GB)"
    "memory above 32 GB": (
        example_with(EXAMPLE, memoryMb=32769),
        ["llmfn:memoryMb = 32769", "2048-32768 MB"],
    ),
}


def test_managed_instances_take_memory_above_standard_lambdas_10240_mb() -> None:
    """A GPU function may have up to 32768 MB (a standard one stops at 10240: tests/infra/test_config)."""
    run = run_stack(example_with(EXAMPLE, memoryMb=32768))
    function = next(r for r in run.of_type(FUNCTION) if r.name == "llmfn-function")
    assert function.inputs["memorySize"] == 32768


@pytest.mark.parametrize("case", sorted(BAD_GPU_CONFIGS))
def test_bad_gpu_config_is_refused_by_name(case: str) -> None:
    config, fragments = BAD_GPU_CONFIGS[case]
    with pytest.raises(StackConfigError) as raised:
        parse_example(config)
    for fragment in fragments:
        assert fragment in str(raised.value), (fragment, str(raised.value))


def test_the_dynamic_provider_host_can_load_the_accelerator_provider(tmp_path: Any) -> None:
    """Pulumi stores the provider as dill bytes in the state; its host (``python -m pulumi.dynamic``, a
    separate process) loads them for every diff, update and delete. dill pickles a class of an
    importable module by reference, so the host must import ``infra.clouds.aws.gpu.accelerator`` from the
    installed llmfn package, from any working directory, with no program running."""
    import base64
    import subprocess
    import sys

    from pulumi.dynamic.dynamic import serialize_provider
    from pulumi.runtime._serialization import _serialize

    serialized, _ = _serialize(True, serialize_provider, AcceleratorConfigProvider())
    load = (
        "import base64, sys, dill; p = dill.loads(base64.b64decode(sys.argv[1])); "
        "print(type(p).__module__, type(p).__name__, p.diff('i', {}, {'function_name': 'f'}).changes)"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-c", load, serialized], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["infra.clouds.aws.gpu.accelerator", "AcceleratorConfigProvider", "True"]
    assert b"infra.clouds.aws.gpu.accelerator" in base64.b64decode(
        serialized
    )  # by reference: keep the module


def test_a_version_the_alias_does_not_serve_starts_without_a_floor(monkeypatch: pytest.MonkeyPatch) -> None:
    """A later `pulumi up` publishes a version while the alias (``llmfn promote``'s, ignore_changes)
    still serves the old one: its MinExecutionEnvironments starts at 0, or it bills GPU instances
    nobody calls until a promotion. The first deploy's version is the alias's: it gets the schedule's
    smallest count (test_accelerator_publishes_the_version_the_alias_and_floor_use)."""
    from tests.infra import mocks

    computed = mocks._computed

    def alias_kept_on_version_1(args: Any) -> dict[str, Any]:
        outputs = computed(args)
        if args.typ == "aws:lambda/alias:Alias":
            outputs["functionVersion"] = "1"  # what ignore_changes keeps from the first deploy
        return outputs

    monkeypatch.setattr(mocks, "_computed", alias_kept_on_version_1)
    run = run_stack(example_config(EXAMPLE))
    floor = run.one(SCALING).inputs
    assert floor["qualifier"] != "1"
    assert floor["functionScalingConfig"]["minExecutionEnvironments"] == 0
    assert floor["functionScalingConfig"]["maxExecutionEnvironments"] == 8


def test_publishing_waits_at_least_30_minutes() -> None:
    """Three execution environments on new GPU instances plus a 10 GB image pull: botocore's own
    PublishedVersionActive waiter allows 26 minutes, terraform-provider-aws's LMI tests 30."""
    from infra.clouds.aws.gpu.accelerator import PUBLISH_WAIT_S, WAIT_DELAY_S, _waiter_config

    config = _waiter_config(PUBLISH_WAIT_S, WAIT_DELAY_S)
    assert config["Delay"] * config["MaxAttempts"] >= 30 * 60

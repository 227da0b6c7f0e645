"""AWS GPU functions on Lambda Managed Instances: capacity provider, function, accelerator, floor.

Resources: the capacity provider's operator role (trusts ``lambda.amazonaws.com``, AWS managed policy
``AWSLambdaManagedEC2ResourceOperator``); ``lambda_.CapacityProvider`` (VPC subnets and security
groups, x86_64, the allowed GPU instance types; scaling mode Auto, or Manual tracking average GPU
utilisation when ``gpuUtilizationTarget`` is given, with a vCPU ceiling when given);
the image function on x86_64 with ``capacity_provider_config`` (capacity provider ARN,
``PerExecutionEnvironmentMaxConcurrency`` = ``llmfn:concurrencyPerInstance``: one execution
environment serves that many requests at once); :class:`infra.clouds.aws.gpu.accelerator.LambdaAcceleratorConfig`
(``AcceleratorConfig`` and the published version); ``lambda_.FunctionScalingConfig`` on that version.

Capacity model: the reserved floor is ``MinExecutionEnvironments`` (not provisioned concurrency).
Scaling configs exist per published version ("This configuration applies to both $LATEST.PUBLISHED and
numeric function versions", AWS SAM FunctionScalingConfig; botocore's ``PublishedFunctionQualifier``
pattern is ``$LATEST.PUBLISHED|[0-9]+``), not per alias. The stack creates it with the smallest
scheduled count and ``MaxExecutionEnvironments`` = ``llmfn:maxInstances``; afterwards the scaler owns
``MinExecutionEnvironments`` (``ignore_changes``), so exactly one writer moves the floor. There is no
Application Auto Scaling target or scheduled action here: the hybrid schedule reaches the floor through
the scaler, which reads it from its policy config.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
from pulumi_aws import iam, lambda_

from core.contract import ENV_FUNCTION_TIMEOUT_S
from core.errors import InputError
from infra.clouds.aws.gpu.accelerator import LambdaAcceleratorConfig, frozen_inputs_hash
from infra.config import StackConfig

SCALER_TARGET = "scaler"  # functions/image/Dockerfile's slim stage: no torch, no vLLM
OPERATOR_POLICY = "arn:aws:iam::aws:policy/AWSLambdaManagedEC2ResourceOperator"
ARCHITECTURE = "x86_64"  # "Lambda supports accelerator configuration only for ... x86_64" (AWS SAM)
SCALING_MODE = "Auto"
# botocore's CapacityProviderPredefinedMetricType; pulumi-aws 7.51.1's docs list only the CPU metric,
# so this opt-in (llmfn:gpu.gpuUtilizationTarget) is unverified against the provider's validation
GPU_UTILIZATION_METRIC = "LambdaCapacityProviderAverageGPUUtilization"
FLOOR_FIELD = "functionScalingConfig.minExecutionEnvironments"  # the scaler's; Pulumi ignores it
_LAMBDA_TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)


def capacity_provider(
    name: str, config: StackConfig, child: pulumi.ResourceOptions
) -> lambda_.CapacityProvider:
    """The capacity provider the GPU function runs on, with its operator role."""
    gpu = config.aws_gpu
    assert gpu is not None
    role = iam.Role(f"{name}-operator-role", assume_role_policy=_LAMBDA_TRUST, opts=child)
    attachment = iam.RolePolicyAttachment(
        f"{name}-operator-role-policy", role=role.name, policy_arn=OPERATOR_POLICY, opts=child
    )
    scaling: list[dict[str, Any]] = []  # none: Lambda's default, scaling mode Auto
    if gpu.gpu_utilization_target is not None:  # the pattern of CDK's GPU capacity provider example
        scaling.append({"scaling_mode": "Manual", "scaling_policies": [
            {"predefined_metric_type": GPU_UTILIZATION_METRIC, "target_value": gpu.gpu_utilization_target}
        ]})  # fmt: skip
    elif gpu.max_vcpu_count is not None:
        # no scaling policies: "Only required if scaling_mode is set to Manual" (pulumi-aws), and the
        # API takes 1-10 of them when given (CapacityProviderScalingConfig.ScalingPolicies)
        scaling.append({"scaling_mode": SCALING_MODE})
    if scaling and gpu.max_vcpu_count is not None:
        scaling[0]["max_vcpu_count"] = gpu.max_vcpu_count
    return lambda_.CapacityProvider(
        f"{name}-capacity-provider",
        name=f"{config.name}-gpu",
        vpc_config={"subnet_ids": gpu.subnet_ids, "security_group_ids": gpu.security_group_ids},
        permissions_config={"capacity_provider_operator_role_arn": role.arn},
        instance_requirements=[
            {"architectures": [ARCHITECTURE], "allowed_instance_types": gpu.instance_types}
        ],
        capacity_provider_scaling_configs=scaling,
        opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[attachment])),
    )


def check_account(config: StackConfig) -> None:
    """Fail ``pulumi preview`` / ``up`` with every account precondition an API can tell is missing
    (infra/clouds/aws/gpu/preflight.py), unless ``llmfn:gpu.preflight`` is false; never under Pulumi's mocks."""
    from pulumi.runtime.mocks import MockMonitor
    from pulumi.runtime.settings import SETTINGS

    gpu = config.aws_gpu
    assert gpu is not None
    if not gpu.preflight or isinstance(SETTINGS.monitor, MockMonitor):
        return
    from infra.clouds.aws.gpu.preflight import preflight_problems

    problems = preflight_problems(gpu, config.region)
    if problems:
        raise InputError(
            "the AWS account is not ready for a Lambda Managed Instances GPU function:\n- "
            + "\n- ".join(problems)
            + "\n(set llmfn:gpu.preflight: false to skip these checks; infra/README.md, GPU checklist)",
            field="llmfn:gpu",
        )


def function_environment(config: StackConfig) -> dict[str, str]:
    """What the image's entry reads on Managed Instances: the function timeout, which sets the init
    limit it waits for the model within (functions/image/entry.py)."""
    return {ENV_FUNCTION_TIMEOUT_S: str(config.timeout_s)}


def managed_instances_config(config: StackConfig, provider: lambda_.CapacityProvider) -> dict[str, Any]:
    """``Function.capacity_provider_config``: the provider, requests per environment, GiB per vCPU."""
    gpu = config.aws_gpu
    assert gpu is not None
    managed: dict[str, Any] = {
        "capacity_provider_arn": provider.arn,
        "per_execution_environment_max_concurrency": config.concurrency_per_instance,
    }
    if gpu.memory_gib_per_vcpu is not None:
        managed["execution_environment_memory_gib_per_vcpu"] = gpu.memory_gib_per_vcpu
    return {"lambda_managed_instances_capacity_provider_config": managed}


def accelerated_version(
    name: str,
    config: StackConfig,
    function: lambda_.Function,
    image_uri: pulumi.Input[str],
    frozen: pulumi.Input[dict[str, Any]],
    child: pulumi.ResourceOptions,
) -> pulumi.Output[str]:
    """Set ``AcceleratorConfig`` and publish: the version the alias and the floor use. ``frozen``: the
    function's arguments a published version freezes (its configuration); their hash, with the image
    reference, decides when a new version is published (infra/README.md, "GPU versions")."""
    gpu = config.aws_gpu
    assert gpu is not None
    accelerator = LambdaAcceleratorConfig(
        f"{name}-accelerator",
        function_name=function.name,
        accelerator_memory_gb=gpu.accelerator_memory_gb,
        region=config.region,
        code_ref=image_uri,
        frozen_inputs=pulumi.Output.from_input(frozen).apply(frozen_inputs_hash),
        opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[function])),
    )
    return accelerator.version


def initial_floor(scheduled_min: int, alias_version: str | None, version: str) -> int:
    """``MinExecutionEnvironments`` a version starts with: the schedule's smallest count when the alias
    serves it (a first deploy), else 0. A version ``pulumi up`` publishes later is not the alias's (the
    alias is ``llmfn promote``'s): a floor there would bill GPU instances for a version nobody calls
    until a promotion (or the scaler, once the alias routes to it) gives it one."""
    return scheduled_min if alias_version == version else 0


def execution_environment_floor(
    name: str,
    config: StackConfig,
    function: lambda_.Function,
    version: pulumi.Input[str],
    alias: lambda_.Alias,
    child: pulumi.ResourceOptions,
) -> lambda_.FunctionScalingConfig:
    """``MinExecutionEnvironments`` (the reserved floor, the scaler's after creation; see
    :func:`initial_floor`) and the ceiling."""
    floor = pulumi.Output.all(alias.function_version, version).apply(
        lambda both: initial_floor(min(config.reserved_schedule), both[0], both[1])
    )
    return lambda_.FunctionScalingConfig(
        f"{name}-execution-environments",
        function_name=function.name,
        qualifier=version,
        function_scaling_config={
            "min_execution_environments": floor,
            "max_execution_environments": config.max_instances,
        },
        # retain_on_delete: a new version replaces this resource (qualifier "forces a new resource",
        # pulumi-aws); deleting the old one would Put an empty config on the version the alias still
        # serves ("Delete resets the scaling configuration by calling PutFunctionScalingConfig with nil
        # config", terraform-provider-aws) and take its floor from the scaler, the floor's one writer.
        opts=pulumi.ResourceOptions.merge(
            child, pulumi.ResourceOptions(ignore_changes=[FLOOR_FIELD], retain_on_delete=True)
        ),
    )


def scaler_code(name: str, config: StackConfig, child: pulumi.ResourceOptions) -> dict[str, Any]:
    """The scaler's own image: it runs on standard Lambda, whose container images are limited to 10 GB
    uncompressed ("The maximum size of a container image is 10 GB", Lambda quotas), which a CUDA +
    vLLM image passes. ``llmfn:gpu.scalerImageUri`` when given, else built from the Dockerfile's
    ``scaler`` target and pushed to a repository of its own."""
    gpu = config.aws_gpu
    assert gpu is not None
    if gpu.scaler_image_uri is not None:
        return {"package_type": "Image", "image_uri": gpu.scaler_image_uri}
    if config.image_build is None:
        raise InputError(
            "llmfn:gpu.scalerImageUri is required with llmfn:imageUri and llmfn:reservedControl = 'scaler': "
            "the scaler runs on standard Lambda (images up to 10 GB), not from the GPU image; build it with "
            "`llmfn image build --target scaler` or let the stack build both (llmfn:image)",
            field="llmfn:gpu.scalerImageUri",
        )
    from infra.clouds.aws.registry import ecr_image

    build = config.image_build.model_copy(
        update={"target": SCALER_TARGET, "tag": f"{config.image_build.tag}-scaler"}
    )
    return {
        "package_type": "Image",
        "image_uri": ecr_image(f"{name}-scaler", f"{config.name}-scaler", build, child),
    }

"""``llmfn:gpu`` on AWS: a Lambda Managed Instances GPU function, validated once with the doc's rules.

On Tencent Cloud ``llmfn:gpu`` is a GPU type string (SCF enables GPU per account); on AWS it is a map::

    llmfn:gpu:
      acceleratorMemoryGb: 24            # AcceleratorConfig.AcceleratorMemorySize (GiB)
      instanceTypes: [g6.xlarge]         # the capacity provider's allowed instance types
      subnetIds: [subnet-0abc...]        # the capacity provider's VPC
      securityGroupIds: [sg-0abc...]
      maxVcpuCount: 64                   # optional: the capacity provider's vCPU ceiling
      memoryGibPerVcpu: 4                # optional: ExecutionEnvironmentMemoryGiBPerVCpu (2, 4 or 8)
      gpuUtilizationTarget: 60           # optional: scale instances on GPU utilisation (Manual mode)

Rules, each with the sentence it comes from:

- "AcceleratorMemorySize ... Valid values: 3, 6, 12, 16, 24, 48." (Lambda API reference, AcceleratorConfig)
- "To use AcceleratorConfig, the function must also specify CapacityProviderConfig. Lambda supports
  accelerator configuration only for functions that use the Image package type and the x86_64
  architecture." (AWS SAM, AcceleratorConfig)
- "The supported memory-to-CPU ratios are 2GB, 4GB, or 8GB per CPU." (AWS SAM, CapacityProviderConfig,
  ExecutionEnvironmentMemoryGiBPerVCpu; botocore's model only bounds it to 2-8);
  ``PerExecutionEnvironmentMaxConcurrency``: min 1, max 1600 (botocore's lambda service model).
- "You can specify only one of allowed_instance_types or excluded_instance_types" (pulumi-aws 7.51.1,
  CapacityProviderInstanceRequirement): llmfn only allows types.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.errors import InputError
from infra.submap import camel, parse_submap

ACCELERATOR_MEMORY_SIZES_GB = (3, 6, 12, 16, 24, 48)
MAX_CONCURRENCY_PER_ENVIRONMENT = 1600  # PerExecutionEnvironmentMaxConcurrency max (botocore)
MEMORY_GIB_PER_VCPU = (2.0, 4.0, 8.0)  # "supported memory-to-CPU ratios are 2GB, 4GB, or 8GB per CPU" (SAM)
MAX_VCPU_RANGE = (2, 15000)  # CapacityProviderScalingConfig.MaxVCpuCount: "Valid Range: ... 2 ... 15000"
GPU_KEY = "llmfn:gpu"

_INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
_SUBNET = re.compile(r"^subnet-[0-9a-f]{8,17}$")
_SECURITY_GROUP = re.compile(r"^sg-[0-9a-f]{8,17}$")


_WHAT = (
    "on aws, acceleratorMemoryGb, instanceTypes, subnetIds, securityGroupIds and optional maxVcpuCount, "
    "memoryGibPerVcpu, gpuUtilizationTarget (Lambda Managed Instances)"
)


class AwsGpuConfig(BaseModel):
    """A GPU function on Lambda Managed Instances: accelerator memory (GiB), instances and VPC."""

    model_config = ConfigDict(alias_generator=camel, populate_by_name=True, extra="forbid", frozen=True)

    accelerator_memory_gb: int = Field(description="GiB of accelerator memory per execution environment.")
    instance_types: list[str] = Field(description="EC2 instance types the capacity provider may launch.")
    subnet_ids: list[str]
    security_group_ids: list[str]
    architecture: Literal["x86_64", "arm64"] = "x86_64"
    max_vcpu_count: int | None = Field(None, description="vCPU ceiling of the capacity provider.")
    memory_gib_per_vcpu: float | None = Field(None, description="Execution environment GiB per vCPU.")
    gpu_utilization_target: float | None = Field(
        None, description="Percent: the capacity provider tracks average GPU utilisation (Manual mode)."
    )
    preflight: bool = Field(
        True,
        description="Check the account's preconditions before deploying (infra/clouds/aws/gpu/preflight.py).",
    )
    scaler_image_uri: str | None = Field(
        None,
        description="The scaler's own image (Dockerfile target scaler) when llmfn:imageUri is given; "
        "with llmfn:image the stack builds it. Standard Lambda takes images up to 10 GB: not the GPU one.",
    )

    @field_validator("accelerator_memory_gb")
    @classmethod
    def _accelerator_memory(cls, value: int) -> int:
        if value not in ACCELERATOR_MEMORY_SIZES_GB:
            allowed = ", ".join(map(str, ACCELERATOR_MEMORY_SIZES_GB))
            raise InputError(f"AcceleratorMemorySize must be one of {allowed} GiB")
        return value

    @field_validator("architecture")
    @classmethod
    def _architecture(cls, value: str) -> str:
        if value != "x86_64":
            raise InputError(
                "Lambda supports accelerator configuration only for the x86_64 architecture; set x86_64"
            )
        return value

    @field_validator("instance_types")
    @classmethod
    def _instance_types(cls, value: list[str]) -> list[str]:
        if not value or not all(_INSTANCE_TYPE.match(t) for t in value):
            raise InputError("must list EC2 instance types with GPUs, e.g. [g6.xlarge, g6.2xlarge]")
        return value

    @field_validator("subnet_ids")
    @classmethod
    def _subnets(cls, value: list[str]) -> list[str]:
        if not value or not all(_SUBNET.match(s) for s in value):
            raise InputError("must list the capacity provider's subnet ids (subnet-...), at least one")
        return value

    @field_validator("security_group_ids")
    @classmethod
    def _security_groups(cls, value: list[str]) -> list[str]:
        if not value or not all(_SECURITY_GROUP.match(s) for s in value):
            raise InputError("must list security group ids (sg-...), at least one")
        return value

    @field_validator("max_vcpu_count")
    @classmethod
    def _max_vcpu(cls, value: int | None) -> int | None:
        low, high = MAX_VCPU_RANGE
        if value is not None and not low <= value <= high:
            raise InputError(f"MaxVCpuCount must be between {low} and {high} vCPUs")
        return value

    @field_validator("gpu_utilization_target")
    @classmethod
    def _gpu_target(cls, value: float | None) -> float | None:
        if value is not None and not 0 < value <= 100:
            raise InputError("must be a percentage in (0, 100] (TargetTrackingScalingPolicy.TargetValue)")
        return value

    @field_validator("memory_gib_per_vcpu")
    @classmethod
    def _memory_per_vcpu(cls, value: float | None) -> float | None:
        if value is not None and value not in MEMORY_GIB_PER_VCPU:
            allowed = ", ".join(f"{ratio:g}" for ratio in MEMORY_GIB_PER_VCPU)
            raise InputError(f"ExecutionEnvironmentMemoryGiBPerVCpu must be one of {allowed} (GiB per vCPU)")
        return value


def parse_aws_gpu(raw: Any) -> tuple[AwsGpuConfig | None, list[str]]:
    """``llmfn:gpu`` on AWS as a config, or the problems naming each bad sub-key (``llmfn:gpu.key``)."""
    return parse_submap(AwsGpuConfig, raw, GPU_KEY, _WHAT)

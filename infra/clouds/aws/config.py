"""AWS's stack-config rules (``llmfn:cloud = aws``): Lambda's limits on names, packages, shapes and the
GPU functions of Lambda Managed Instances (``llmfn:gpu``, ``infra.clouds.aws.gpu.config``).

Each limit carries the sentence of the document it comes from; the common rules are ``infra.config``'s.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING

from core.contract import ENV_API_KEY, LAMBDA_SCALER_HANDLER
from infra import cloud_names
from infra.clouds import CloudRules
from infra.clouds.aws.gpu.config import AwsGpuConfig, parse_aws_gpu
from infra.environment import model_environment

if TYPE_CHECKING:
    from infra.config import StackConfig
    from infra.image import ImageBuild

# Lambda's price for provisioned concurrency, us-east-1 x86 (USD per GB-s), as in docs/sources.md.
AWS_PROVISIONED_PRICE_PER_GB_S = 0.0000041667
# Lambda function memory (MemorySize, MB) by compute type. Standard: "You can configure memory between
# 128 MB and 10,240 MB in 1-MB increments" (Lambda Developer Guide, configuration-memory). Managed
# Instances (llmfn:gpu): "The minimum supported function size is 2GB and 1 vCPU" (Best practices for
# Lambda Managed Instances); botocore's MemorySize shape allows up to 32768, and pulumi-aws documents
# "Valid value between 128 MB to 32,768 MB (32 GB)" (the Managed Instances' upper bound).
LAMBDA_MEMORY_MB = (128, 10240)
LAMBDA_MANAGED_INSTANCES_MEMORY_MB = (2048, 32768)
# "Environment variables: 4 KB, for all environment variables associated with the function, in
# aggregate" (Lambda quotas, "Function configuration, deployment, and execution"); Lambda measures the
# variables as a JSON string ("... exceeded the 4KB limit. String measured: {...}").
LAMBDA_ENVIRONMENT_BYTES = 4096
# Publishing a Lambda Managed Instances version "starts three execution environments before marking
# the version ACTIVE" (Lambda Managed Instances, "Function versions"): the capacity provider's vCPU
# ceiling must hold three of its smallest instances.
LMI_ENVIRONMENTS_AT_PUBLISH = 3


class AwsRules(CloudRules):
    """Lambda's rules (standard functions and Managed Instances)."""

    default_scaler_handler = LAMBDA_SCALER_HANDLER  # functions.scaler.handler's Lambda entry point
    list_price_per_gb_s = AWS_PROVISIONED_PRICE_PER_GB_S

    def region_problem(self, region: str) -> str | None:
        return cloud_names.aws_region_problem(region)

    def state_bucket_problem(self, bucket: str) -> str | None:
        return cloud_names.s3_bucket_problem(bucket)

    def name_problems(self, config: StackConfig) -> list[str]:
        problems = []
        if config.scaler_state_bucket is None:
            # the stack creates the scaler's state bucket as "<name>-scaler-<random>" (infra/clouds/aws/component.py)
            problem = cloud_names.s3_prefix_problem(config.name)
            if problem:
                problems.append(
                    f"llmfn:name = {config.name!r} {problem}; the scaler's state bucket is named after it"
                )
        handlers = {"llmfn:handler": config.handler, "llmfn:scalerHandler": config.scaler_handler}
        for key, handler in handlers.items():
            problem = None if handler is None else cloud_names.lambda_handler_problem(handler)
            if problem:
                problems.append(f"{key} = {handler!r} {problem}")
        return problems

    def image_uri_problem(self, image_uri: str, region: str) -> str | None:
        return cloud_names.ecr_image_problem(image_uri, region)

    def environment_problems(self, config: StackConfig) -> list[str]:
        """Lambda's 4 KB limit on the inference function's environment, the API key included."""
        if config.api_key is None:
            return []
        variables = {**model_environment(config), ENV_API_KEY: config.api_key.get_secret_value()}
        size = len(json.dumps(variables, separators=(",", ":")).encode())
        if size <= LAMBDA_ENVIRONMENT_BYTES:
            return []
        key_bytes = len(config.api_key.get_secret_value().encode())
        return [
            f"llmfn:apiKey = <secret> ({key_bytes} bytes) makes the function's environment variables "
            f"{size} bytes; Lambda allows {LAMBDA_ENVIRONMENT_BYTES} bytes (4 KB) in aggregate: use a key of "
            f"at most {key_bytes - (size - LAMBDA_ENVIRONMENT_BYTES)} bytes"
        ]

    def image_problems(self, config: StackConfig, build: ImageBuild | None, problems: list[str]) -> list[str]:
        if build is not None and build.registry_server is not None:
            return [
                "llmfn:image.registryServer is for tencentcloud; with llmfn:cloud = aws the stack creates an ECR "
                "repository"
            ]
        return problems

    def shape_problems(self, config: StackConfig) -> list[str]:
        problems = self._memory_problems(config)
        if config.gpu is not None:
            problems.extend(self._gpu_problems(config))
        elif config.concurrency_per_instance != 1:
            problems.append(
                f"llmfn:concurrencyPerInstance = {config.concurrency_per_instance}: a Lambda instance "
                "serves exactly 1 request at a time; set 1"
            )
        if not 512 <= config.ephemeral_storage_mb <= 10240:
            problems.append(
                f"llmfn:ephemeralStorageMb = {config.ephemeral_storage_mb}: Lambda allows 512-10240 MB"
            )
        return problems

    def gpu_config(self, config: StackConfig) -> AwsGpuConfig | None:
        """The Lambda Managed Instances GPU settings (``llmfn:gpu``), None without a GPU."""
        return None if config.gpu is None else parse_aws_gpu(config.gpu)[0]

    @staticmethod
    def _memory_problems(config: StackConfig) -> list[str]:
        """Lambda's memory range for this stack's compute type (standard, or Managed Instances with
        llmfn:gpu): see LAMBDA_MEMORY_MB and LAMBDA_MANAGED_INSTANCES_MEMORY_MB for the sources."""
        if config.gpu is None:
            (low, high), kind = LAMBDA_MEMORY_MB, "a standard Lambda function (no llmfn:gpu)"
        else:
            (low, high), kind = LAMBDA_MANAGED_INSTANCES_MEMORY_MB, "Lambda Managed Instances (llmfn:gpu)"
        if low <= config.memory_mb <= high:
            return []
        return [f"llmfn:memoryMb = {config.memory_mb}: {kind} allows {low}-{high} MB"]

    @classmethod
    def _gpu_problems(cls, config: StackConfig) -> list[str]:
        """A GPU function on Lambda Managed Instances: "Lambda supports accelerator configuration only
        for functions that use the Image package type and the x86_64 architecture" (AWS SAM)."""
        problems = parse_aws_gpu(config.gpu)[1]
        if config.reserved_control == "schedule":  # no scheduled actions exist for MinExecutionEnvironments
            problems.append(
                "llmfn:reservedControl = 'schedule' with llmfn:gpu on aws: the floor of a GPU function "
                "(MinExecutionEnvironments) has no Application Auto Scaling target to schedule; the scaler "
                "moves it: set 'scaler'"
            )
        if config.build_dir is not None:
            problems.append(
                f"llmfn:buildDir = {str(config.build_dir)!r}: a GPU function (llmfn:gpu) on Lambda must be a "
                "container image (package type Image, not Zip): set llmfn:imageUri or llmfn:image"
            )
        gpu = parse_aws_gpu(config.gpu)[0]
        return problems + ([] if gpu is None else cls._vcpu_problems(config, gpu))

    @staticmethod
    def _vcpu_problems(config: StackConfig, gpu: AwsGpuConfig) -> list[str]:
        """``maxVcpuCount`` against the three environments a publish starts and against maxInstances."""
        if gpu.max_vcpu_count is None:
            return []
        sizes = {t: cloud_names.instance_vcpus(t) for t in gpu.instance_types}
        known = [v for v in sizes.values() if v is not None]
        if not known:
            return []
        smallest = min(known)
        smallest_type = min((t for t, v in sizes.items() if v == smallest))
        problems = []
        publish = LMI_ENVIRONMENTS_AT_PUBLISH * smallest
        if gpu.max_vcpu_count < publish:
            problems.append(
                f"llmfn:gpu.maxVcpuCount = {gpu.max_vcpu_count}: publishing a version starts "
                f"{LMI_ENVIRONMENTS_AT_PUBLISH} execution environments, which need at least "
                f"{LMI_ENVIRONMENTS_AT_PUBLISH} x {smallest} = {publish} vCPUs of llmfn:gpu.instanceTypes' "
                f"smallest ({smallest_type}): the version could never become active"
            )
        # an environment of memoryMb gets memoryMb / memoryGibPerVcpu vCPUs (ExecutionEnvironment-
        # MemoryGiBPerVCpu, 2 GiB per vCPU unless set): maxInstances of them need at least that many
        per_environment = max(1, math.ceil(config.memory_mb / 1024 / (gpu.memory_gib_per_vcpu or 2.0)))
        scale = config.max_instances * per_environment
        if gpu.max_vcpu_count < scale:
            problems.append(
                f"llmfn:gpu.maxVcpuCount = {gpu.max_vcpu_count} with llmfn:maxInstances = "
                f"{config.max_instances}: {config.max_instances} execution environments of {config.memory_mb} MB "
                f"need at least {scale} vCPUs ({per_environment} each); raise maxVcpuCount or lower maxInstances"
            )
        return problems


RULES = AwsRules()

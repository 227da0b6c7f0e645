"""The stack configuration schema: every ``llmfn:*`` key, validated once before any resource is built.

Keys are the names users type in ``pulumi config set llmfn:<key> <value>`` (camelCase); structured
values (lists, maps) are given with ``--path`` or as JSON, as Pulumi stores them. A bad value raises
:class:`StackConfigError` naming the key as typed, the value and what is allowed.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Mapping
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from core.contract import ENV_API_KEY, LAMBDA_INFERENCE_HANDLER, LAMBDA_SCALER_HANDLER, SCF_PORT, StackCloud
from core.errors import InputError
from core.revision import revision_problem
from core.secrets import ApiKey
from infra import cloud_names
from infra.environment import model_environment
from infra.gpu.config import MAX_CONCURRENCY_PER_ENVIRONMENT, AwsGpuConfig, parse_aws_gpu
from infra.image import ImageBuild, parse_image_build, project_path
from scaling.bounds import bounds_problem
from scaling.plan import (
    HOURS_PER_DAY,
    ReservedRule,
    ScheduleChange,
    hourly_schedule,
    lmi_floor_schedule,
    schedule_changes,
)
from scaling.policies import RUNNABLE_POLICY_NAMES

CONFIG_NAMESPACE = "llmfn"
SECRET_KEYS = frozenset({"apiKey"})

# Lambda's price for provisioned concurrency, us-east-1 x86 (USD per GB-s), as in docs/sources.md;
# SCF publishes no GPU price, so a Tencent stack reports a cost only when a price is configured.
AWS_PROVISIONED_PRICE_PER_GB_S = 0.0000041667

# Entry points in the packages of functions/ (overridable per stack, e.g. for a custom image).
DEFAULT_LAMBDA_HANDLER = LAMBDA_INFERENCE_HANDLER
# AWS only: on SCF the scaler is the image itself, run with LLMFN_ROLE=scaler (functions.entry.scf_web).
DEFAULT_SCALER_HANDLERS = {"aws": LAMBDA_SCALER_HANDLER}
SCF_IMAGE_PORT = SCF_PORT
MAX_TIMEOUT_S = 900  # both SCF and Lambda stop a request at 900 s
MAX_INSTANCES = 10_000  # above every account's concurrency quota on either cloud
MAX_MODEL_URI_CHARS = 200  # + "llmfn model-revision=" stays within Lambda's 256-character Description
MAX_RATE_RPS = 1e6  # far above any function quota; larger values are typos (and overflow the plan)
# Lambda function memory (MemorySize, MB) by compute type. Standard: "You can configure memory between
# 128 MB and 10,240 MB in 1-MB increments" (Lambda Developer Guide, configuration-memory). Managed
# Instances (llmfn:gpu): "The minimum supported function size is 2GB and 1 vCPU" (Best practices for
# Lambda Managed Instances); botocore's MemorySize shape allows up to 32768, and pulumi-aws documents
# "Valid value between 128 MB to 32,768 MB (32 GB)" (the Managed Instances' upper bound).
LAMBDA_MEMORY_MB = (128, 10240)
LAMBDA_MANAGED_INSTANCES_MEMORY_MB = (2048, 32768)
# SCF MemorySize of an ordinary function: "可选范围 64、128MB-3072MB，并且以 128MB 为阶梯" (tencentcloud scf
# v20180416 models, CreateFunctionRequest.MemorySize). GPU functions (enabled per account) take larger
# sizes; SCF publishes no API range for them, so llmfn keeps multiples of 128 MB up to 65536 there.
SCF_MEMORY_MB = (128, 3072)
SCF_SMALLEST_MEMORY_MB = 64
SCF_GPU_MEMORY_MB = (128, 65536)
# "Environment variables: 4 KB, for all environment variables associated with the function, in
# aggregate" (Lambda quotas, "Function configuration, deployment, and execution"); Lambda measures the
# variables as a JSON string ("... exceeded the 4KB limit. String measured: {...}").
LAMBDA_ENVIRONMENT_BYTES = 4096
# The region's function concurrency quota, MB: provisioned concurrency draws on it; "128,000 MB" in large
# regions (SCF "配额限制", document 583/11637); raisable by a ticket, hence llmfn:concurrencyQuotaMb.
SCF_CONCURRENCY_QUOTA_MB = 128_000
# Publishing a Lambda Managed Instances version "starts three execution environments before marking
# the version ACTIVE" (Lambda Managed Instances, "Function versions"): the capacity provider's vCPU
# ceiling must hold three of its smallest instances.
LMI_ENVIRONMENTS_AT_PUBLISH = 3
# SCF's /tmp: "/tmp 目录 ... 512MB" (SCF "配额限制", document 583/11637); the image's Hub cache
# (HF_HOME=/tmp/huggingface, functions/image/Dockerfile) lives there.
SCF_TMP_MB = 512

# Full matches (re.fullmatch): a `$` anchor also matches before a trailing newline ("qwen3\n").
_HUB_REPO = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*")
_NAME = re.compile(r"[a-z][a-z0-9-]{0,38}[a-z0-9]")
_REGION = re.compile(r"[a-z]{2,}(-[a-z0-9]+)+")
# Names with one rule each, whatever the cloud (infra.cloud_names cites each rule's document).
_NAME_RULES = {
    "namespace": cloud_names.scf_namespace_problem,
    "scaler_role": cloud_names.cam_role_problem,
    "registry_id": cloud_names.tcr_instance_problem,
}
_MODEL_URI = re.compile(r"(?P<scheme>s3|cos)://(?P<bucket>[^/]+)/(?P<key>.+)", re.DOTALL)


class StackConfigError(InputError):
    """The stack configuration is invalid; the message names each bad key, its value and what is allowed."""


def config_key(field_name: str) -> str:
    """The ``llmfn:camelCase`` key users type for a schema field (``memory_mb`` -> ``llmfn:memoryMb``)."""
    head, *rest = field_name.split("_")
    return f"{CONFIG_NAMESPACE}:{head}{''.join(part.capitalize() for part in rest)}"


def _camel(field_name: str) -> str:
    return config_key(field_name).split(":", 1)[1]


class StackConfig(BaseModel):
    """One stack's deployment. Units in names: ``_mb`` MiB, ``_s`` seconds, ``_rps`` requests/second."""

    model_config = ConfigDict(alias_generator=_camel, populate_by_name=True, extra="forbid", frozen=True)

    cloud: StackCloud
    region: str = Field(description="Cloud region, e.g. ap-guangzhou or us-east-1.")
    name: str = Field("llmfn", description="Prefix of every resource name: lowercase, digits, '-'.")
    namespace: str = Field("default", description="SCF namespace (Tencent only).")

    # Model source: a Hub repo pinned to a commit, or an S3 / COS URI.
    model_repo: str | None = None
    model_revision: str | None = None
    model_uri: str | None = None
    model_size_mb: int | None = Field(None, description="The checkpoint's size (MB), as the Hub lists it.")
    engine: Literal["transformers", "vllm"] = "transformers"

    # Package: a container image, or the zips built by `llmfn layer build` (a build directory).
    image_uri: str | None = None
    image: dict[str, Any] | None = Field(None, description="Build and push the image (infra.image).")
    image_type: Literal["personal", "enterprise"] = "personal"
    registry_id: str | None = None
    build_dir: Path | None = None
    handler: str = DEFAULT_LAMBDA_HANDLER
    scaler_handler: str | None = Field(None, description="Default: functions.scaler.handler's entry point.")

    # Instance shape.
    memory_mb: int
    gpu: str | dict[str, Any] | None = Field(
        None,
        description="SCF: GPU type (enabled per account). AWS: Lambda Managed Instances (infra.gpu.config).",
    )
    timeout_s: int = 300
    ephemeral_storage_mb: int = 10240
    concurrency_per_instance: int = 1

    # The policy the scaler runs (a name of scaling.policies' registry) and the traffic it plans with.
    policy: str = "hybrid"
    p95_latency_s: float
    rates_by_hour: list[float] | None = None
    traffic_trace: Path | None = Field(None, description="A trace file whose hourly profile is the traffic.")
    utc_offset_hours: int = 0
    headroom: float = 0.2
    # Bounds on the reserved count: PolicyConfig's / ReservedRule's min_reserved / max_reserved; the
    # field names give the user-facing keys llmfn:minInstances / llmfn:maxInstances.
    min_instances: int = 0
    max_instances: int = 50
    utilization_target: float | None = None
    profile: Path | None = Field(
        None,
        description="A deployment profile (JSON/TOML, as `llmfn simulate --profile`): its instance "
        "concurrency and cold start are what the stack plans with.",
    )

    # Who moves the reserved floor: "scaler" (the scaler function, every minute) or "schedule" (native
    # scheduled actions, AWS only). Never both on one target: see infra/README.md, "One owner per setting".
    reserved_control: Literal["scaler", "schedule"] = "scaler"
    # Serve /v1/* without an API key (the function then accepts any caller): must be said explicitly.
    public: bool = False

    provisioned_price_per_gb_s: float | None = None
    error_alarm_threshold: int = 5
    scaler_state_bucket: str | None = None
    scaler_role: str | None = Field(None, description="SCF: CAM role the scaler runs as (its API keys).")
    api_key: ApiKey | None = None  # core.secrets: the one API-key rule
    # SCF only: the region's function concurrency quota (MB) when Tencent has raised it for the account.
    concurrency_quota_mb: int = SCF_CONCURRENCY_QUOTA_MB

    @field_validator("region")
    @classmethod
    def _region(cls, value: str, info: ValidationInfo) -> str:
        if not _REGION.fullmatch(value):
            raise InputError("must be a region id such as ap-guangzhou or us-east-1")
        cloud = info.data.get("cloud")
        if cloud is None:  # llmfn:cloud is refused on its own
            return value
        problem = (
            cloud_names.aws_region_problem(value) if cloud == "aws" else cloud_names.scf_region_problem(value)
        )
        if problem:
            raise InputError(problem)
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise InputError(
                "must be 2-40 characters: lowercase letters, digits and '-', starting with a letter"
            )
        return value

    @field_validator(*_NAME_RULES)
    @classmethod
    def _cloud_name(cls, value: str | None, info: ValidationInfo) -> str | None:
        """Names with one documented rule each (see _NAME_RULES)."""
        problem = None if value is None else _NAME_RULES[str(info.field_name)](value)
        if problem:
            raise InputError(problem)
        return value

    @field_validator("scaler_state_bucket")
    @classmethod
    def _state_bucket(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return value
        cloud = info.data.get("cloud")
        problem = (
            cloud_names.cos_bucket_problem(value)
            if cloud == "tencentcloud"
            else cloud_names.s3_bucket_problem(value)
        )
        if problem:
            raise InputError(problem)
        return value

    @field_validator("policy")
    @classmethod
    def _policy(cls, value: str) -> str:
        if value not in RUNNABLE_POLICY_NAMES:
            raise InputError(f"must be one of: {', '.join(RUNNABLE_POLICY_NAMES)} (the scaler's policies)")
        return value

    @field_validator("concurrency_quota_mb")
    @classmethod
    def _quota(cls, value: int) -> int:
        if value < SCF_CONCURRENCY_QUOTA_MB:
            raise InputError(
                f"must be at least {SCF_CONCURRENCY_QUOTA_MB:,} MB (SCF's default quota; set it only when "
                "Tencent raised your region's function concurrency quota)"
            )
        return value

    @field_validator("model_repo")
    @classmethod
    def _model_repo(cls, value: str | None) -> str | None:
        if value is not None and not _HUB_REPO.fullmatch(value):
            raise InputError("must be a Hugging Face repo id 'owner/name', e.g. Qwen/Qwen3-4B-Instruct-2507")
        return value

    @field_validator("model_revision")
    @classmethod
    def _model_revision(cls, value: str | None) -> str | None:
        problem = None if value is None else revision_problem(value, commit=True)
        if problem:
            raise InputError(problem)
        return value

    @field_validator("model_uri")
    @classmethod
    def _model_uri(cls, value: str | None) -> str | None:
        found = None if value is None else _MODEL_URI.fullmatch(value)
        if value is not None and (found is None or any(ch.isspace() for ch in value)):
            raise InputError("must be s3://bucket/prefix or cos://bucket-appid/prefix")
        if found is not None:
            bucket = found["bucket"]
            problem = (
                cloud_names.s3_bucket_problem(bucket)
                if found["scheme"] == "s3"
                else cloud_names.cos_bucket_problem(bucket)
            )
            if problem:
                raise InputError(f"bucket {bucket!r} {problem}")
        if value is not None and len(value) > MAX_MODEL_URI_CHARS:
            raise InputError(
                f"must be at most {MAX_MODEL_URI_CHARS} characters (it names the published versions, "
                "whose description Lambda caps at 256)"
            )
        return value

    @field_validator("build_dir", "traffic_trace", "profile")
    @classmethod
    def _project_relative(cls, value: Path | None) -> Path | None:
        """A relative path is the project directory's (where Pulumi.yaml is), as ``llmfn:image``'s
        paths are: Pulumi runs the program in infra/ (infra.image.project_path)."""
        return None if value is None else Path(project_path(str(value)))

    @field_validator("timeout_s")
    @classmethod
    def _timeout(cls, value: int) -> int:
        if not 1 <= value <= MAX_TIMEOUT_S:
            raise InputError("must be between 1 and 900 seconds (both SCF and Lambda stop at 900 s)")
        return value

    @field_validator("concurrency_per_instance")
    @classmethod
    def _concurrency(cls, value: int) -> int:
        if not 1 <= value <= MAX_CONCURRENCY_PER_ENVIRONMENT:
            raise InputError(
                f"must be between 1 and {MAX_CONCURRENCY_PER_ENVIRONMENT} concurrent requests per instance"
            )
        return value

    @field_validator("p95_latency_s")
    @classmethod
    def _p95(cls, value: float) -> float:
        if not (0 < value <= MAX_TIMEOUT_S and math.isfinite(value)):
            raise InputError(
                f"must be a number of seconds in (0, {MAX_TIMEOUT_S}] (the P95 time in system; "
                "no function runs longer)"
            )
        return value

    @field_validator("rates_by_hour")
    @classmethod
    def _rates(cls, value: list[float] | None) -> list[float] | None:
        if value is None:
            return value
        if len(value) != HOURS_PER_DAY:
            raise InputError(f"must list exactly 24 hourly rates (req/s, hour 0 first), got {len(value)}")
        if not all(0 <= r <= MAX_RATE_RPS and math.isfinite(r) for r in value):
            raise InputError(
                f"every hourly rate must be a number of requests per second in [0, {MAX_RATE_RPS:g}]"
            )
        return value

    @field_validator("utc_offset_hours")
    @classmethod
    def _offset(cls, value: int) -> int:
        if not -12 <= value <= 14:
            raise InputError("must be an offset from UTC between -12 and 14 hours")
        return value

    @field_validator("headroom")
    @classmethod
    def _headroom(cls, value: float) -> float:
        if not (0 <= value <= 10 and math.isfinite(value)):
            raise InputError("must be a fraction between 0 and 10 (0.2 = 20 % over Little's law)")
        return value

    @field_validator("utilization_target")
    @classmethod
    def _utilization(cls, value: float | None) -> float | None:
        if value is not None and not 0 < value < 1:
            raise InputError("must be strictly between 0 and 1 (0.7 = keep 70 % of reserved capacity busy)")
        return value

    @field_validator("provisioned_price_per_gb_s")
    @classmethod
    def _price(cls, value: float | None) -> float | None:
        if value is not None and not (value >= 0 and math.isfinite(value)):
            raise InputError("must be a price >= 0 per GB-second")
        return value

    @field_validator("error_alarm_threshold")
    @classmethod
    def _errors(cls, value: int) -> int:
        if value < 1:
            raise InputError("must be at least 1 error per minute")
        return value

    @model_validator(mode="after")
    def _cross_checks(self) -> StackConfig:
        problems = (
            self._source_problems()
            + self._name_problems()
            + self._package_problems()
            + self._shape_problems()
            + self._scaling_problems()
        )
        if problems:
            raise InputError("; ".join(problems))
        return self

    def _name_problems(self) -> list[str]:
        """Names the clouds refuse at deploy although each field's own shape is fine."""
        problems = []
        if self.cloud == "aws" and self.scaler_state_bucket is None:
            # the stack creates the scaler's state bucket as "<name>-scaler-<random>" (infra/aws.py)
            problem = cloud_names.s3_prefix_problem(self.name)
            if problem:
                problems.append(
                    f"llmfn:name = {self.name!r} {problem}; the scaler's state bucket is named after it"
                )
        if self.cloud == "aws":
            handlers = {"llmfn:handler": self.handler, "llmfn:scalerHandler": self.scaler_handler}
            for key, handler in handlers.items():
                problem = None if handler is None else cloud_names.lambda_handler_problem(handler)
                if problem:
                    problems.append(f"{key} = {handler!r} {problem}")
        return problems

    def _image_uri_problems(self) -> list[str]:
        if self.image_uri is None:
            return []
        problem = (
            cloud_names.ecr_image_problem(self.image_uri, self.region)
            if self.cloud == "aws"
            else cloud_names.scf_image_problem(self.image_uri)
        )
        return [f"llmfn:imageUri = {self.image_uri!r} {problem}"] if problem else []

    def _environment_problems(self) -> list[str]:
        """Lambda's 4 KB limit on the inference function's environment, the API key included."""
        if self.cloud != "aws" or self.api_key is None:
            return []
        variables = {**model_environment(self), ENV_API_KEY: self.api_key.get_secret_value()}
        size = len(json.dumps(variables, separators=(",", ":")).encode())
        if size <= LAMBDA_ENVIRONMENT_BYTES:
            return []
        key_bytes = len(self.api_key.get_secret_value().encode())
        return [
            f"llmfn:apiKey = <secret> ({key_bytes} bytes) makes the function's environment variables "
            f"{size} bytes; Lambda allows {LAMBDA_ENVIRONMENT_BYTES} bytes (4 KB) in aggregate: use a key of "
            f"at most {key_bytes - (size - LAMBDA_ENVIRONMENT_BYTES)} bytes"
        ]

    def _source_problems(self) -> list[str]:
        if self.model_size_mb is not None and self.model_size_mb < 1:
            return [f"llmfn:modelSizeMb = {self.model_size_mb}: must be the checkpoint's size, at least 1 MB"]
        if (
            self.cloud == "tencentcloud"
            and self.model_repo is not None
            and self.model_size_mb is not None
            and self.model_size_mb > SCF_TMP_MB
        ):
            return [
                f"llmfn:modelSizeMb = {self.model_size_mb} with llmfn:modelRepo on tencentcloud: a Hub "
                f"download lands in /tmp, which SCF caps at {SCF_TMP_MB} MB; put the checkpoint in COS and set "
                "llmfn:modelUri = cos://<bucket>-<appid>/<prefix> (preload streams it into memory), or mount "
                "CFS"
            ]
        if self.model_uri is not None:
            if self.model_repo is not None or self.model_revision is not None:
                return [
                    "llmfn:modelUri excludes llmfn:modelRepo / llmfn:modelRevision: give one model source"
                ]
            return []
        if self.model_repo is None or self.model_revision is None:
            return [
                "a model source is required: llmfn:modelRepo with llmfn:modelRevision (a commit sha), "
                "or llmfn:modelUri"
            ]
        return []

    def _package_problems(self) -> list[str]:
        problems = self._image_uri_problems() + self._environment_problems()
        return problems + self._package_choice_problems()

    def _package_choice_problems(self) -> list[str]:
        if self.cloud == "tencentcloud" and self.build_dir is not None:
            return [
                f"llmfn:buildDir = {str(self.build_dir)!r} with llmfn:cloud = tencentcloud: SCF's newest Python runtime is 3.10 and llmfn "
                "needs >= 3.11, so zip packages cannot run there; deploy an image (llmfn:imageUri), which "
                "also runs the scaler"
            ]
        if sum(x is not None for x in (self.image_uri, self.image, self.build_dir)) != 1:
            return [
                "give exactly one package: llmfn:imageUri (a container image), llmfn:image (build and push "
                "one) or llmfn:buildDir (the output directory of `llmfn layer build`)"
            ]
        if self.image is not None:
            problems = parse_image_build(self.image, self.cloud, self.name)[1]
            if self.cloud == "tencentcloud" and (self.image_type != "enterprise" or self.registry_id is None):
                problems.append(
                    "llmfn:image with llmfn:cloud = tencentcloud pushes to a TCR Enterprise instance the stack adds a namespace "
                    "to: set llmfn:imageType = enterprise and llmfn:registryId (the instance id)"
                )
            if problems:
                return problems
        if self.cloud == "tencentcloud" and self.image_type == "enterprise" and self.registry_id is None:
            return ["llmfn:registryId is required with llmfn:imageType = 'enterprise' (a TCR instance id)"]
        return []

    def _shape_problems(self) -> list[str]:
        problems = []
        if self.cloud == "aws":
            problems.extend(self._lambda_memory_problems())
            if self.gpu is not None:
                problems.extend(self._aws_gpu_problems())
            elif self.concurrency_per_instance != 1:
                problems.append(
                    f"llmfn:concurrencyPerInstance = {self.concurrency_per_instance}: a Lambda instance "
                    "serves exactly 1 request at a time; set 1"
                )
            if not 512 <= self.ephemeral_storage_mb <= 10240:
                problems.append(
                    f"llmfn:ephemeralStorageMb = {self.ephemeral_storage_mb}: Lambda allows 512-10240 MB"
                )
        else:
            problems.extend(self._scf_memory_problems())
            if self.concurrency_per_instance > 100:
                problems.append(
                    f"llmfn:concurrencyPerInstance = {self.concurrency_per_instance}: SCF allows 1-100"
                )
            if self.gpu is not None and not isinstance(self.gpu, str):
                problems.append(
                    f"llmfn:gpu = {self.gpu!r}: with llmfn:cloud = tencentcloud it is the GPU type, e.g. A10 (a string)"
                )
        return problems

    def _scf_memory_problems(self) -> list[str]:
        """SCF's memory sizes for this function's kind: ordinary (no llmfn:gpu) or GPU; see
        SCF_MEMORY_MB and SCF_GPU_MEMORY_MB for the sources."""
        if self.gpu is None:
            (low, high), kind = SCF_MEMORY_MB, "an ordinary SCF function (no llmfn:gpu)"
            if self.memory_mb == SCF_SMALLEST_MEMORY_MB or (
                self.memory_mb % 128 == 0 and low <= self.memory_mb <= high
            ):
                return []
            return [
                f"llmfn:memoryMb = {self.memory_mb}: {kind} allows 64 or {low}-{high} MB in steps of 128 MB "
                "(larger sizes need a GPU function: set llmfn:gpu, once Tencent enabled GPU for the account)"
            ]
        low, high = SCF_GPU_MEMORY_MB
        if self.memory_mb % 128 == 0 and low <= self.memory_mb <= high:
            return []
        return [
            f"llmfn:memoryMb = {self.memory_mb}: a GPU SCF function (llmfn:gpu) needs a multiple of 128 MB, "
            f"{low}-{high}"
        ]

    def _lambda_memory_problems(self) -> list[str]:
        """Lambda's memory range for this stack's compute type (standard, or Managed Instances with
        llmfn:gpu): see LAMBDA_MEMORY_MB and LAMBDA_MANAGED_INSTANCES_MEMORY_MB for the sources."""
        if self.gpu is None:
            (low, high), kind = LAMBDA_MEMORY_MB, "a standard Lambda function (no llmfn:gpu)"
        else:
            (low, high), kind = LAMBDA_MANAGED_INSTANCES_MEMORY_MB, "Lambda Managed Instances (llmfn:gpu)"
        if low <= self.memory_mb <= high:
            return []
        return [f"llmfn:memoryMb = {self.memory_mb}: {kind} allows {low}-{high} MB"]

    def _aws_gpu_problems(self) -> list[str]:
        """A GPU function on Lambda Managed Instances: "Lambda supports accelerator configuration only
        for functions that use the Image package type and the x86_64 architecture" (AWS SAM)."""
        problems = parse_aws_gpu(self.gpu)[1]
        if self.reserved_control == "schedule":  # no scheduled actions exist for MinExecutionEnvironments
            problems.append(
                "llmfn:reservedControl = 'schedule' with llmfn:gpu on aws: the floor of a GPU function "
                "(MinExecutionEnvironments) has no Application Auto Scaling target to schedule; the scaler "
                "moves it: set 'scaler'"
            )
        if self.build_dir is not None:
            problems.append(
                f"llmfn:buildDir = {str(self.build_dir)!r}: a GPU function (llmfn:gpu) on Lambda must be a "
                "container image (package type Image, not Zip): set llmfn:imageUri or llmfn:image"
            )
        gpu = parse_aws_gpu(self.gpu)[0]
        return problems + ([] if gpu is None else self._vcpu_problems(gpu))

    def _vcpu_problems(self, gpu: AwsGpuConfig) -> list[str]:
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
        per_environment = max(1, math.ceil(self.memory_mb / 1024 / (gpu.memory_gib_per_vcpu or 2.0)))
        scale = self.max_instances * per_environment
        if gpu.max_vcpu_count < scale:
            problems.append(
                f"llmfn:gpu.maxVcpuCount = {gpu.max_vcpu_count} with llmfn:maxInstances = "
                f"{self.max_instances}: {self.max_instances} execution environments of {self.memory_mb} MB "
                f"need at least {scale} vCPUs ({per_environment} each); raise maxVcpuCount or lower maxInstances"
            )
        return problems

    def _scaling_problems(self) -> list[str]:
        problems = []
        if (self.rates_by_hour is None) == (self.traffic_trace is None):
            problems.append(
                "give exactly one traffic profile: llmfn:ratesByHour (24 req/s values, hour 0 first) or "
                "llmfn:trafficTrace (a trace file, see `llmfn simulate`)"
            )
        if bounds_problem(self.min_instances, self.max_instances) or self.max_instances > MAX_INSTANCES:
            problems.append(
                f"llmfn:minInstances = {self.min_instances}, llmfn:maxInstances = {self.max_instances}: "
                f"need 0 <= minInstances <= maxInstances <= {MAX_INSTANCES}"
            )
        if self.cloud == "tencentcloud":
            problems.extend(self._scf_quota_problems())
        if self.cloud == "tencentcloud" and self.scaler_state_bucket is None:
            problems.append(
                "llmfn:scalerStateBucket is required with llmfn:cloud = tencentcloud: a COS bucket (name-appid) for the "
                "scaler's state"
            )
        if self.cloud == "tencentcloud" and self.scaler_role is None:
            # SCF hands a function API keys (TENCENTCLOUD_SECRETID / _SECRETKEY / _SESSIONTOKEN, read by
            # functions.cloud.connect) only for its run role: without one every scaler tick is unsigned
            problems.append(
                "llmfn:scalerRole is required on tencentcloud: the CAM role the scaler runs as (SCF gives a "
                "function API keys only through its role; it needs SCF, Cloud Monitor read and COS on "
                "llmfn:scalerStateBucket)"
            )
        if self.cloud == "tencentcloud" and self.scaler_handler is not None:
            problems.append(
                f"llmfn:scalerHandler = {self.scaler_handler!r}: with llmfn:cloud = tencentcloud the scaler is the image "
                "itself (run with LLMFN_ROLE=scaler); remove llmfn:scalerHandler"
            )
        if self.cloud == "tencentcloud" and self.reserved_control == "schedule":
            problems.append(
                "llmfn:reservedControl = 'schedule' is AWS only: SCF keeps provisioned concurrency per "
                "version and every field of the provider's config forces a replacement, so with llmfn:cloud = tencentcloud "
                "the scaler owns it and follows the alias's version; set 'scaler'"
            )
        if self.cloud == "tencentcloud" and self.utilization_target is not None:
            problems.append(
                f"llmfn:utilizationTarget = {self.utilization_target}: with llmfn:cloud = tencentcloud the scaler owns the "
                "version's provisioned config, and SCF does not document utilisation tracking mixed with a "
                "config another writer sets; remove llmfn:utilizationTarget"
            )
        if self.api_key is None and not self.public:
            problems.append(
                "no API key: set one with `pulumi config set --secret llmfn:apiKey <key>`, or serve "
                "without one on purpose with `pulumi config set llmfn:public true`"
            )
        return problems

    def _scf_quota_problems(self) -> list[str]:
        """Provisioned instances draw on the region's function concurrency quota (MB)."""
        needed = self.max_instances * self.memory_mb
        if needed <= self.concurrency_quota_mb:
            return []
        fits = self.concurrency_quota_mb // self.memory_mb
        return [
            f"llmfn:maxInstances = {self.max_instances} x llmfn:memoryMb = {self.memory_mb} is {needed:,} MB, "
            f"above the region's function concurrency quota llmfn:concurrencyQuotaMb = "
            f"{self.concurrency_quota_mb:,} MB (SCF's default is {SCF_CONCURRENCY_QUOTA_MB:,} MB, shared "
            f"by every function of the region): set maxInstances <= {fits}, or set "
            "llmfn:concurrencyQuotaMb once Tencent raised the quota"
        ]

    @cached_property
    def hourly_rates(self) -> list[float]:
        """Mean arrival rate (req/s) per hour of day, hour 0 first: configured, or the trace's profile
        exactly as ``llmfn plan --trace`` makes it (a next-day forecast by the backtest's winner for
        traces of three days or more, else the mean rate per hour of day).

        Raises FileNotFoundError / ValueError when the trace cannot be read.
        """
        if self.rates_by_hour is not None:
            return self.rates_by_hour
        from scaling.forecasting import forecast_profile
        from scaling.traces import read_trace

        assert self.traffic_trace is not None
        return list(forecast_profile(read_trace(self.traffic_trace)).rates_by_hour)

    @cached_property
    def burst_rates_by_hour(self) -> list[float] | None:
        """Each hour's highest 5-minute rate of the traffic trace (req/s; the LMI floor's doubling
        term, as ``llmfn plan --trace``), None with configured rates."""
        if self.traffic_trace is None:
            return None
        from scaling.forecasting import burst_rates_by_hour
        from scaling.traces import read_trace

        return burst_rates_by_hour(read_trace(self.traffic_trace))

    @cached_property
    def aws_gpu(self) -> AwsGpuConfig | None:
        """The Lambda Managed Instances GPU settings (``llmfn:gpu`` on AWS), None elsewhere."""
        if self.cloud != "aws" or self.gpu is None:
            return None
        return parse_aws_gpu(self.gpu)[0]

    @cached_property
    def image_build(self) -> ImageBuild | None:
        """How the stack builds and pushes the function image (``llmfn:image``), None when not asked."""
        return None if self.image is None else parse_image_build(self.image, self.cloud)[0]

    @cached_property
    def profile_cold_start_s(self) -> float | None:
        """The profile's cold start, seconds (None without a profile or without a cold start in it)."""
        if self.profile is None:
            return None
        from scaling.profile import read_profile

        cold = read_profile(self.profile).cold_start
        return None if cold is None else cold.total_s

    @property
    def rule(self) -> ReservedRule:
        """The hybrid rule's parameters for :func:`scaling.plan.hourly_schedule`."""
        return ReservedRule(
            p95_latency_s=self.p95_latency_s,
            concurrency_per_instance=self.concurrency_per_instance,
            headroom=self.headroom,
            min_reserved=self.min_instances,
            max_reserved=self.max_instances,
        )

    @property
    def reserved_schedule(self) -> list[int]:
        """Reserved instances for each hour of day (profile time zone), hour 0 first; on Lambda GPU the
        MinExecutionEnvironments floor, ``scaling.plan.lmi_floor_schedule`` (as the scaler's)."""
        if self.aws_gpu is not None:
            return lmi_floor_schedule(self.hourly_rates, self.rule, self.burst_rates_by_hour)
        return hourly_schedule(self.hourly_rates, self.rule)

    @property
    def schedule_changes(self) -> list[ScheduleChange]:
        """The hours at which the reserved count changes (what becomes crons)."""
        return schedule_changes(self.reserved_schedule)

    @property
    def function_name(self) -> str:
        """The inference function's name."""
        return f"{self.name}-infer"

    @property
    def scaler_name(self) -> str:
        """The scaler function's name."""
        return f"{self.name}-scaler"

    @property
    def scaler_entry_point(self) -> str:
        """The scaler's handler: configured, else this cloud's entry point in functions.scaler.handler."""
        return self.scaler_handler or DEFAULT_SCALER_HANDLERS.get(self.cloud, "")

    @property
    def model_source(self) -> str:
        """Where the function loads weights from: a Hub repo id or an S3 / COS URI."""
        return self.model_uri if self.model_uri is not None else str(self.model_repo)

    @property
    def price_per_gb_s(self) -> float | None:
        """Provisioned price per GB-s: configured, else Lambda's list price on AWS, else unknown."""
        if self.provisioned_price_per_gb_s is not None:
            return self.provisioned_price_per_gb_s
        return AWS_PROVISIONED_PRICE_PER_GB_S if self.cloud == "aws" else None


def _parse_value(raw: Any) -> Any:
    """Pulumi hands every value over as a string; structured ones (lists, maps) as JSON."""
    if isinstance(raw, str) and raw.strip()[:1] in ("[", "{"):
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw
    return raw


def _describe(exc: ValidationError, values: Mapping[str, Any]) -> str:
    parts = []
    for err in exc.errors():
        message = err["msg"].removeprefix("Value error, ")
        if not err["loc"]:
            parts.append(message)
            continue
        key = f"{CONFIG_NAMESPACE}:{err['loc'][0]}"
        if err["type"] == "missing":
            parts.append(f"{key} is required: set it with `pulumi config set {key} <value>`")
            continue
        shown = (
            "<secret>"
            if err["loc"][0] in SECRET_KEYS
            else repr(values.get(str(err["loc"][0]), err.get("input")))
        )
        parts.append(f"{key} = {shown}: {message}")
    return "invalid stack configuration: " + "; ".join(parts)


def _with_profile(config: StackConfig, values: dict[str, Any], prefix: str) -> StackConfig:
    """Read ``llmfn:profile`` now; its instance concurrency fills ``llmfn:concurrencyPerInstance``."""
    from scaling.profile import read_profile

    try:
        profile = read_profile(config.profile)  # type: ignore[arg-type]
        config.profile_cold_start_s  # noqa: B018
    except (OSError, ValueError) as exc:
        raise StackConfigError(
            f"invalid stack configuration: {prefix}profile = {values.get('profile')!r}: {exc}"
        ) from None
    if profile.concurrency is None:
        return config
    given = values.get("concurrencyPerInstance")
    if given is not None and int(given) != profile.concurrency:
        raise StackConfigError(
            f"invalid stack configuration: {prefix}concurrencyPerInstance = {given!r} but {prefix}profile "
            f"sets instance.concurrency = {profile.concurrency}: keep one"
        )
    try:
        return StackConfig.model_validate({**values, "concurrencyPerInstance": profile.concurrency})
    except ValidationError as exc:
        raise StackConfigError(_describe(exc, values)) from None


def parse_stack_config(raw_config: Mapping[str, Any], secret_keys: Collection[str] = ()) -> StackConfig:
    """Validate ``{"llmfn:key": value}`` (keys of other namespaces are ignored) into a StackConfig.

    ``secret_keys`` are the full keys Pulumi holds encrypted; ``llmfn:apiKey`` must be one of them.
    Raises StackConfigError naming every bad key.
    """
    prefix = f"{CONFIG_NAMESPACE}:"
    values = {k.removeprefix(prefix): _parse_value(v) for k, v in raw_config.items() if k.startswith(prefix)}
    known = {_camel(name) for name in StackConfig.model_fields}
    unknown = sorted(set(values) - known)
    if unknown:
        raise StackConfigError(
            "invalid stack configuration: unknown key(s) "
            + ", ".join(prefix + k for k in unknown)
            + "; known keys: "
            + ", ".join(prefix + k for k in sorted(known))
        )
    for key in SECRET_KEYS:
        if key in values and prefix + key not in secret_keys:
            raise StackConfigError(
                f"invalid stack configuration: {prefix}{key} is stored in plain text; set it with "
                f"`pulumi config set --secret {prefix}{key} <value>`"
            )
    try:
        config = StackConfig.model_validate(values)
    except ValidationError as exc:
        raise StackConfigError(_describe(exc, values)) from None
    if config.profile is not None:
        config = _with_profile(config, values, prefix)
    try:
        config.hourly_rates  # noqa: B018  # read the trace now, before any resource exists
    except (OSError, ValueError) as exc:
        raise StackConfigError(
            f"invalid stack configuration: {prefix}trafficTrace = {values.get('trafficTrace')!r}: {exc}"
        ) from None
    return config

"""Tencent Cloud's stack-config rules (``llmfn:cloud = tencentcloud``): SCF's limits on packages,
shapes and the region's concurrency quota, the scaler's COS state and CAM role, and the TCR registry.

Each limit carries the sentence of the document it comes from; the common rules are ``infra.config``'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.contract import SCF_PORT
from infra import cloud_names
from infra.clouds import CloudRules
from infra.clouds.tencent.registry import TCR_NAMESPACE_MAX
from infra.config import SCF_CONCURRENCY_QUOTA_MB
from infra.image import IMAGE_KEY

if TYPE_CHECKING:
    from infra.config import StackConfig
    from infra.image import ImageBuild

SCF_IMAGE_PORT = SCF_PORT
# SCF MemorySize of an ordinary function: "可选范围 64、128MB-3072MB，并且以 128MB 为阶梯" (tencentcloud scf
# v20180416 models, CreateFunctionRequest.MemorySize). GPU functions (enabled per account) take larger
# sizes; SCF publishes no API range for them, so llmfn keeps multiples of 128 MB up to 65536 there.
SCF_MEMORY_MB = (128, 3072)
SCF_SMALLEST_MEMORY_MB = 64
SCF_GPU_MEMORY_MB = (128, 65536)
# SCF's /tmp: "/tmp 目录 ... 512MB" (SCF "配额限制", document 583/11637); the image's Hub cache
# (HF_HOME=/tmp/huggingface, functions/image/Dockerfile) lives there.
SCF_TMP_MB = 512


class TencentRules(CloudRules):
    """SCF's rules (image web functions, the scaler on a timer, TCR for built images). SCF publishes no
    GPU price, so a Tencent stack reports a cost only when a price is configured."""

    def region_problem(self, region: str) -> str | None:
        return cloud_names.scf_region_problem(region)

    def state_bucket_problem(self, bucket: str) -> str | None:
        return cloud_names.cos_bucket_problem(bucket)

    def source_problems(self, config: StackConfig) -> list[str]:
        if (
            config.model_repo is not None
            and config.model_size_mb is not None
            and config.model_size_mb > SCF_TMP_MB
        ):
            return [
                f"llmfn:modelSizeMb = {config.model_size_mb} with llmfn:modelRepo on tencentcloud: a Hub "
                f"download lands in /tmp, which SCF caps at {SCF_TMP_MB} MB; put the checkpoint in COS and set "
                "llmfn:modelUri = cos://<bucket>-<appid>/<prefix> (preload streams it into memory), or mount "
                "CFS"
            ]
        return []

    def image_uri_problem(self, image_uri: str, region: str) -> str | None:
        return cloud_names.scf_image_problem(image_uri)

    def package_problems(self, config: StackConfig) -> list[str]:
        if config.build_dir is not None:
            return [
                f"llmfn:buildDir = {str(config.build_dir)!r} with llmfn:cloud = tencentcloud: SCF's newest Python "
                "runtime is 3.10 and llmfn needs >= 3.11, so zip packages cannot run there; deploy an image "
                "(llmfn:imageUri), which also runs the scaler"
            ]
        return []

    def image_problems(self, config: StackConfig, build: ImageBuild | None, problems: list[str]) -> list[str]:
        if build is not None and len(config.name) > TCR_NAMESPACE_MAX:
            too_long = (
                f"llmfn:name = {config.name!r} is {len(config.name)} characters: with {IMAGE_KEY} on tencentcloud "
                f"it names the TCR namespace the stack creates, which allows 2-{TCR_NAMESPACE_MAX}; use a shorter "
                "name"
            )
            problems = [*problems, too_long]
        if build is not None and build.registry_server is None:
            problems = [
                f"{IMAGE_KEY}.registryServer is required with llmfn:cloud = tencentcloud: the TCR instance's domain"
            ]
        if config.image_type != "enterprise" or config.registry_id is None:
            problems = [
                *problems,
                "llmfn:image with llmfn:cloud = tencentcloud pushes to a TCR Enterprise instance the stack adds a "
                "namespace to: set llmfn:imageType = enterprise and llmfn:registryId (the instance id)",
            ]
        return problems

    def registry_problems(self, config: StackConfig) -> list[str]:
        if config.image_type == "enterprise" and config.registry_id is None:
            return ["llmfn:registryId is required with llmfn:imageType = 'enterprise' (a TCR instance id)"]
        return []

    def shape_problems(self, config: StackConfig) -> list[str]:
        problems = self._memory_problems(config)
        if config.concurrency_per_instance > 100:
            problems.append(
                f"llmfn:concurrencyPerInstance = {config.concurrency_per_instance}: SCF allows 1-100"
            )
        if config.gpu is not None and not isinstance(config.gpu, str):
            problems.append(
                f"llmfn:gpu = {config.gpu!r}: with llmfn:cloud = tencentcloud it is the GPU type, e.g. A10 (a string)"
            )
        return problems

    def scaling_problems(self, config: StackConfig) -> list[str]:
        problems = self._quota_problems(config)
        if config.scaler_state_bucket is None:
            problems.append(
                "llmfn:scalerStateBucket is required with llmfn:cloud = tencentcloud: a COS bucket (name-appid) "
                "for the scaler's state"
            )
        if config.scaler_role is None:
            # SCF hands a function API keys (TENCENTCLOUD_SECRETID / _SECRETKEY / _SESSIONTOKEN, read by
            # functions.cloud.connect) only for its run role: without one every scaler tick is unsigned
            problems.append(
                "llmfn:scalerRole is required on tencentcloud: the CAM role the scaler runs as (SCF gives a "
                "function API keys only through its role; it needs SCF, Cloud Monitor read and COS on "
                "llmfn:scalerStateBucket)"
            )
        if config.scaler_handler is not None:
            problems.append(
                f"llmfn:scalerHandler = {config.scaler_handler!r}: with llmfn:cloud = tencentcloud the scaler is "
                "the image itself (run with LLMFN_ROLE=scaler); remove llmfn:scalerHandler"
            )
        if config.reserved_control == "schedule":
            problems.append(
                "llmfn:reservedControl = 'schedule' is AWS only: SCF keeps provisioned concurrency per "
                "version and every field of the provider's config forces a replacement, so with llmfn:cloud = "
                "tencentcloud the scaler owns it and follows the alias's version; set 'scaler'"
            )
        if config.utilization_target is not None:
            problems.append(
                f"llmfn:utilizationTarget = {config.utilization_target}: with llmfn:cloud = tencentcloud the scaler "
                "owns the version's provisioned config, and SCF does not document utilisation tracking mixed "
                "with a config another writer sets; remove llmfn:utilizationTarget"
            )
        return problems

    @staticmethod
    def _memory_problems(config: StackConfig) -> list[str]:
        """SCF's memory sizes for this function's kind: ordinary (no llmfn:gpu) or GPU; see
        SCF_MEMORY_MB and SCF_GPU_MEMORY_MB for the sources."""
        if config.gpu is None:
            (low, high), kind = SCF_MEMORY_MB, "an ordinary SCF function (no llmfn:gpu)"
            if config.memory_mb == SCF_SMALLEST_MEMORY_MB or (
                config.memory_mb % 128 == 0 and low <= config.memory_mb <= high
            ):
                return []
            return [
                f"llmfn:memoryMb = {config.memory_mb}: {kind} allows 64 or {low}-{high} MB in steps of 128 MB "
                "(larger sizes need a GPU function: set llmfn:gpu, once Tencent enabled GPU for the account)"
            ]
        low, high = SCF_GPU_MEMORY_MB
        if config.memory_mb % 128 == 0 and low <= config.memory_mb <= high:
            return []
        return [
            f"llmfn:memoryMb = {config.memory_mb}: a GPU SCF function (llmfn:gpu) needs a multiple of 128 MB, "
            f"{low}-{high}"
        ]

    @staticmethod
    def _quota_problems(config: StackConfig) -> list[str]:
        """Provisioned instances draw on the region's function concurrency quota (MB)."""
        needed = config.max_instances * config.memory_mb
        if needed <= config.concurrency_quota_mb:
            return []
        fits = config.concurrency_quota_mb // config.memory_mb
        return [
            f"llmfn:maxInstances = {config.max_instances} x llmfn:memoryMb = {config.memory_mb} is {needed:,} MB, "
            f"above the region's function concurrency quota llmfn:concurrencyQuotaMb = "
            f"{config.concurrency_quota_mb:,} MB (SCF's default is {SCF_CONCURRENCY_QUOTA_MB:,} MB, shared "
            f"by every function of the region): set maxInstances <= {fits}, or set "
            "llmfn:concurrencyQuotaMb once Tencent raised the quota"
        ]


RULES = TencentRules()

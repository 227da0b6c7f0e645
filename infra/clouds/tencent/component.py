"""The Tencent Cloud component: an SCF web (image) function behind its function URL, scaled by the scaler.

Resources (``tencentcloud-iac-pulumi``): the inference ``scf.Function`` (an HTTP/web function: an image
listening on 0.0.0.0:9000), its per-instance concurrency (a dynamic resource, ``infra.clouds.tencent.scf_dynamic``), a
published ``scf.FunctionVersion`` (replaced, i.e. published anew, when the model revision, image,
memory, timeout, environment or concurrency changes), the alias ``live`` (created on that version;
``llmfn promote`` moves it afterwards), the alias's function URL (a dynamic resource: API gateway
creates no new services since 2024-07-01, infra/README.md "Tencent endpoint"), and the scaler function
(the same image) on a one-minute timer.

Only images: SCF's newest Python runtime is 3.10 and llmfn needs 3.11 (``infra.config`` refuses
``llmfn:buildDir`` here). No provisioned-concurrency resource: SCF keeps provisioned concurrency per
version, the alias's version moves with each promotion, and the provider replaces the config on any
change; the scaler owns it and follows the alias (infra/README.md, "One owner per setting").

GPU is not requested here: SCF enables GPU functions per account, and the API only reports
``UseGpu``. ``llmfn:gpu`` is recorded as a tag so the deployed function says what it expects.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pulumi
import tencentcloud_iac_pulumi as tencentcloud
from tencentcloud_iac_pulumi import scf

from core.contract import ENV_HOST, ENV_PORT, ENV_PREWARM_URL, SCF_HOST
from infra.clouds.tencent.config import SCF_IMAGE_PORT
from infra.clouds.tencent.scf_dynamic import ScfFunctionUrl, ScfInstanceConcurrency
from infra.common import (
    ALIAS_DESCRIPTION,
    ALIAS_NAME,
    ALIAS_PROMOTE_OWNED,
    model_environment,
    published_description,
    scaler_environment,
    stack_outputs,
    with_api_key,
)
from infra.config import StackConfig
from scaling.plan import scf_cron

SCALER_TIMER_CRON = "0 */1 * * * * *"  # every minute; SCF timer crons have 7 fields
SCALER_MEMORY_MB = 256
SCALER_TIMEOUT_S = 60


# CreateFunction's Description (SDK model): "最大支持 1000 个英文字母、数字、空格、逗号、换行符和英文句号，支持中文".
_SCF_DESCRIPTION_CHAR = re.compile(r"[A-Za-z0-9 ,.\n\u4e00-\u9fff]")
SCF_DESCRIPTION_MAX_CHARS = 1000


def scf_function_description(text: str) -> str:
    """``text`` as SCF takes a function's description: any character but English letters, digits,
    spaces, commas, newlines, periods and Chinese becomes a space (``Qwen/Qwen3-4B`` reads
    ``Qwen Qwen3 4B``), runs of spaces collapse, at most 1000 characters."""
    kept = "".join(c if _SCF_DESCRIPTION_CHAR.fullmatch(c) else " " for c in text)
    return re.sub(" +", " ", kept).strip()[:SCF_DESCRIPTION_MAX_CHARS]


class TencentInferenceStack(pulumi.ComponentResource):
    """Everything one Tencent stack deploys; ``outputs`` holds what the program exports."""

    outputs: dict[str, Any]

    def __init__(self, name: str, config: StackConfig, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llmfn:tencentcloud:InferenceStack", name, None, opts)
        provider = tencentcloud.Provider(
            f"{name}-provider", region=config.region, opts=pulumi.ResourceOptions(parent=self)
        )
        child = pulumi.ResourceOptions(parent=self, provider=provider)

        code, code_id = self._code(name, config, child)
        function = scf.Function(
            f"{name}-function",
            name=config.function_name,
            namespace=config.namespace,
            description=scf_function_description(f"llmfn inference, {config.model_source}"),
            func_type="HTTP",
            mem_size=config.memory_mb,
            timeout=config.timeout_s,
            enable_public_net=True,
            environment=with_api_key(self._environment(config), config),
            tags=self._tags(config),
            **code,
            opts=child,
        )
        description = pulumi.Output.from_input(code_id).apply(
            lambda code_ref: published_description(config, self._frozen(config, code_ref))
        )
        # Sent before the version is published (the version depends on it), so the version freezes it;
        # it waits until the function is Active again, as PublishVersion requires.
        concurrency = ScfInstanceConcurrency(
            f"{name}-concurrency",
            function_name=function.name,
            namespace=config.namespace,
            max_concurrency=config.concurrency_per_instance,
            region=config.region,
            frozen=description,
            opts=pulumi.ResourceOptions(parent=self),
        )
        version = scf.FunctionVersion(
            f"{name}-version",
            function_name=function.name,
            namespace=config.namespace,
            # What the version freezes. The provider cannot update a version, so a change replaces it
            # (a new version is published); `llmfn promote` finds it by revision and moves the alias.
            description=description,
            # Replacing would then delete the old version (the provider's Delete sends DeleteFunction
            # with that Qualifier), the one the alias still serves until promote moves it and promote's
            # rollback target: the old version stays (it goes with the function on `pulumi destroy`).
            opts=pulumi.ResourceOptions.merge(
                child,
                pulumi.ResourceOptions(
                    replace_on_changes=["description"], retain_on_delete=True, depends_on=[concurrency]
                ),
            ),
        )
        alias = scf.FunctionAlias(
            f"{name}-alias",
            name=ALIAS_NAME,
            function_name=function.name,
            function_version=version.function_version,
            namespace=config.namespace,
            description=ALIAS_DESCRIPTION,
            # the provider's update drops a new function_version anyway; promote owns both after creation
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(ignore_changes=ALIAS_PROMOTE_OWNED)
            ),
        )
        url = ScfFunctionUrl(
            f"{name}-url",
            function_name=function.name,
            namespace=config.namespace,
            qualifier=alias.name,
            region=config.region,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[alias]),
        )
        endpoint_url = url.url
        self._scaler(name, config, function, code, endpoint_url, child)

        self.outputs = stack_outputs(
            config,
            endpoint_url=endpoint_url,
            function_name=function.name,
            alias_name=alias.name,
            version=version.function_version,
            cron=scf_cron,
        )
        self.register_outputs(self.outputs)

    @staticmethod
    def _environment(config: StackConfig) -> dict[str, str]:
        env = model_environment(config)
        env[ENV_HOST] = SCF_HOST
        env[ENV_PORT] = str(SCF_IMAGE_PORT)
        return env

    @classmethod
    def _frozen(cls, config: StackConfig, image: str) -> str:
        """What a published version freezes besides the model revision: ``image`` (the URI, or the pushed
        digest when the stack builds it), memory, timeout and the
        environment (all but the API key, a secret a description must not carry). Its hash goes into
        the version's description, so a change to any of them publishes a new version: SCF serves
        the alias's version, not $LATEST, so a change without one would never be served."""
        return json.dumps(
            {
                "image": image,
                "memory_mb": config.memory_mb,
                "timeout_s": config.timeout_s,
                "environment": cls._environment(config),
            },
            sort_keys=True,
        )

    @staticmethod
    def _tags(config: StackConfig) -> dict[str, str]:
        tags = {"llmfn-stack": config.name}
        if config.gpu is not None:
            tags["llmfn-gpu"] = config.gpu
        return tags

    @staticmethod
    def _code(
        name: str, config: StackConfig, child: pulumi.ResourceOptions
    ) -> tuple[dict[str, Any], pulumi.Input[str]]:
        """The function's code arguments (the image on port 9000: the only package SCF can run for us)
        and what identifies that code (the image URI, the pushed digest when the stack builds it)."""
        image_uri: pulumi.Input[str] | None = config.image_uri
        if config.image_build is not None:  # built and pushed to the TCR instance llmfn:registryId
            from infra.clouds.tencent.registry import tcr_image

            assert config.registry_id is not None
            image_uri = tcr_image(name, config.name, config.registry_id, config.image_build, child)
        assert image_uri is not None  # infra.config refuses llmfn:buildDir on tencentcloud
        image: dict[str, Any] = {
            "image_type": config.image_type,
            "image_uri": image_uri,
            "image_port": SCF_IMAGE_PORT,
            "container_image_accelerate": True,
        }
        if config.registry_id is not None:
            image["registry_id"] = config.registry_id
        return {"image_configs": [image]}, image_uri

    @staticmethod
    def _scaler(
        name: str,
        config: StackConfig,
        function: scf.Function,
        code: dict[str, Any],
        endpoint_url: pulumi.Output[str],
        child: pulumi.ResourceOptions,
    ) -> scf.Function:
        """The scaler: the same image, an event function run every minute by a timer trigger; the
        image's ``functions.cloud.tencent.entry_web`` answers SCF event invocations on port 9000 when
        ``LLMFN_ROLE=scaler``.

        Network: public access on, explicitly (the provider's default is off). The scaler calls
        ``scf.tencentcloudapi.com``, ``monitor.tencentcloudapi.com`` and ``cos.<region>.myqcloud.com``,
        all public endpoints; a function in no VPC reaches them only through the public network.
        """
        scaler_code = dict(code)
        if config.scaler_role is not None:
            scaler_code["role"] = config.scaler_role
        # pre-warm requests go over HTTP to the alias's function URL: web functions take no async Invoke
        env = pulumi.Output.all(
            scaler_environment(config, function.name, config.scaler_state_bucket), endpoint_url
        ).apply(lambda parts: {**parts[0], ENV_PREWARM_URL: parts[1]})
        scaler = scf.Function(
            f"{name}-scaler",
            name=config.scaler_name,
            namespace=config.namespace,
            description=scf_function_description(f"llmfn scaler, the {config.policy} policy every minute"),
            func_type="Event",
            enable_public_net=True,
            mem_size=SCALER_MEMORY_MB,
            timeout=SCALER_TIMEOUT_S,
            environment=env,
            triggers=[{"name": "llmfn-every-minute", "type": "timer", "trigger_desc": SCALER_TIMER_CRON}],
            **scaler_code,
            opts=child,
        )
        # Single flight: "The reserved quota is the upper limit of the function concurrency quota" and
        # "the sum of the memory configured for the specific running instances of the function cannot
        # exceed the configured quota" (doc 583/39464). One instance's memory: one tick at a time, which
        # is what the scaler's state on COS relies on (COS has no conditional PUT: functions.cloud.state).
        scf.ReservedConcurrencyConfig(
            f"{name}-scaler-single-flight",
            function_name=scaler.name,
            namespace=config.namespace,
            reserved_concurrency_mem=SCALER_MEMORY_MB,
            opts=child,
        )
        return scaler

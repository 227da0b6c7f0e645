"""The Tencent Cloud component: an SCF web function behind API gateway, scaled by schedule and utilisation.

Resources (``tencentcloud-iac-pulumi``): the runtime layer (zip packages only), the inference
``scf.Function`` (an HTTP/web function: an image listening on 0.0.0.0:9000, or our zip with its
``scf_bootstrap``), a published ``scf.FunctionVersion``, the alias ``live`` (optional canary weight),
``scf.ProvisionedConcurrencyConfig`` on the alias's version (never ``$LATEST``) with the hybrid
rule's hourly schedule as 7-field-cron ``trigger_actions`` and, when ``llmfn:utilizationTarget`` is
set, concurrency-utilisation tracking between min and max; an API gateway service, API and release
in front of the alias; and the scaler function on a one-minute timer trigger.

GPU is not requested here: SCF enables GPU functions per account, and the API only reports
``UseGpu``. ``llmfn:gpu`` is recorded as a tag so the deployed function says what it expects.
"""

from __future__ import annotations

from typing import Any

import pulumi
import tencentcloud_iac_pulumi as tencentcloud
from tencentcloud_iac_pulumi import apigateway, scf

from infra.common import (
    ALIAS_DESCRIPTION,
    ALIAS_NAME,
    cron_actions,
    load_build,
    model_environment,
    scaler_environment,
    stack_outputs,
    with_api_key,
)
from infra.config import SCF_IMAGE_PORT, StackConfig
from layers.limits import SCF_LIMITS
from scaling.plan import scf_cron

SCF_PYTHON_RUNTIME = "Python3.10"
SCALER_TIMER_CRON = "0 */1 * * * * *"  # every minute; SCF timer crons have 7 fields
GATEWAY_ENVIRONMENT = "release"
SCALER_MEMORY_MB = 256
SCALER_TIMEOUT_S = 60


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
            description=f"llmfn inference: {config.model_source}",
            func_type="HTTP",
            mem_size=config.memory_mb,
            timeout=config.timeout_s,
            enable_public_net=True,
            environment=with_api_key(self._environment(config), config),
            tags=self._tags(config),
            **code,
            opts=child,
        )
        version = scf.FunctionVersion(
            f"{name}-version",
            function_name=function.name,
            namespace=config.namespace,
            # what the version freezes; a change publishes a new version (the alias then moves to it)
            description=pulumi.Output.concat(
                f"model {config.model_revision or config.model_uri}; code ",
                code_id,
                f"; {config.memory_mb} MB",
            ),
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(replace_on_changes=["description"])
            ),
        )
        alias = scf.FunctionAlias(
            f"{name}-alias",
            name=ALIAS_NAME,
            function_name=function.name,
            function_version=version.function_version,
            namespace=config.namespace,
            description=ALIAS_DESCRIPTION,
            routing_config=self._routing(config),
            opts=child,
        )
        self._provisioned_concurrency(name, config, function, alias, child)
        endpoint_url = self._gateway(name, config, function, alias, child)
        self._scaler(name, config, function, code, child)

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
        env["LLMFN_HOST"] = "0.0.0.0"
        env["LLMFN_PORT"] = str(SCF_IMAGE_PORT)
        if config.build_dir is not None:
            env["PYTHONPATH"] = "/opt/python:/var/user"  # the runtime layer's python/ dir, then our code
        return env

    @staticmethod
    def _tags(config: StackConfig) -> dict[str, str]:
        tags = {"llmfn-stack": config.name}
        if config.gpu is not None:
            tags["llmfn-gpu"] = config.gpu
        return tags

    def _code(
        self, name: str, config: StackConfig, child: pulumi.ResourceOptions
    ) -> tuple[dict[str, Any], pulumi.Input[str]]:
        """The function's code arguments (an image on port 9000, or our zip plus the runtime layer)
        and what identifies that code (the image URI, or the zip's sha256)."""
        image_uri: pulumi.Input[str] | None = config.image_uri
        if config.image_build is not None:  # built and pushed to the TCR instance llmfn:registryId
            from infra.image import tcr_image

            assert config.registry_id is not None
            image_uri = tcr_image(name, config.name, config.registry_id, config.image_build, child)
        if image_uri is not None:
            image = {
                "image_type": config.image_type,
                "image_uri": image_uri,
                "image_port": SCF_IMAGE_PORT,
                "container_image_accelerate": True,
            }
            if config.registry_id is not None:
                image["registry_id"] = config.registry_id
            return {"image_configs": [image]}, image_uri
        pulumi.log.warn(
            f"llmfn:buildDir on SCF runs on {SCF_PYTHON_RUNTIME}, SCF's newest Python, while llmfn's packages "
            "need Python >= 3.11: deploy an image (llmfn:imageUri) unless your code runs on 3.10"
        )
        package, runtime_layer = load_build(config, SCF_LIMITS)
        assert config.build_dir is not None
        code: dict[str, Any] = {
            "runtime": SCF_PYTHON_RUNTIME,
            "zip_file": str(config.build_dir / package.file),
        }
        if runtime_layer is not None:
            layer = scf.Layer(
                f"{name}-runtime-layer",
                layer_name=f"{config.name}-runtime",
                description=f"llmfn runtime dependencies, sha256 {runtime_layer.sha256}",
                compatible_runtimes=[SCF_PYTHON_RUNTIME],
                content={"zip_file": str(config.build_dir / runtime_layer.file)},
                opts=child,
            )
            code["layers"] = [{"layer_name": layer.layer_name, "layer_version": layer.layer_version}]
        return code, f"sha256 {package.sha256[:16]}"

    @staticmethod
    def _routing(config: StackConfig) -> dict[str, Any] | None:
        if config.canary_version is None:
            return None
        return {
            "additional_version_weights": [{"version": config.canary_version, "weight": config.canary_weight}]
        }

    @staticmethod
    def _provisioned_concurrency(
        name: str,
        config: StackConfig,
        function: scf.Function,
        alias: scf.FunctionAlias,
        child: pulumi.ResourceOptions,
    ) -> scf.ProvisionedConcurrencyConfig | None:
        """Reserved instances on the alias's version: the hourly schedule, plus tracking when chosen.

        Until the first trigger fires, the smallest scheduled count is kept (at least 1, SCF's
        minimum); with nothing ever scheduled and no tracking, no configuration is created.
        """
        schedule = config.reserved_schedule
        if max(schedule) == 0 and config.utilization_target is None:
            return None
        trigger_actions = [
            {
                "trigger_name": f"llmfn-h{action.hour:02d}",
                "trigger_provisioned_concurrency_num": action.instances,
                "trigger_cron_config": action.cron,
                "provisioned_type": "Default",
            }
            for action in cron_actions(config, scf_cron)
        ]
        tracking: dict[str, Any] = {"provisioned_type": "Default"}
        initial = max(1, min(schedule))
        if config.utilization_target is not None:
            # SCF: with ConcurrencyUtilizationTracking, the static amount must be 0 and min >= 1.
            tracking = {
                "provisioned_type": "ConcurrencyUtilizationTracking",
                "tracking_target": round(config.utilization_target, 2),
                "min_capacity": max(1, config.min_instances),
                "max_capacity": config.max_instances,
            }
            initial = 0
        return scf.ProvisionedConcurrencyConfig(
            f"{name}-provisioned",
            function_name=function.name,
            namespace=config.namespace,
            qualifier=alias.function_version,
            version_provisioned_concurrency_num=initial,
            trigger_actions=trigger_actions,
            **tracking,
            # the trigger actions move the amount every day; Pulumi owns only the rules
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(ignore_changes=["versionProvisionedConcurrencyNum"])
            ),
        )

    @staticmethod
    def _gateway(
        name: str,
        config: StackConfig,
        function: scf.Function,
        alias: scf.FunctionAlias,
        child: pulumi.ResourceOptions,
    ) -> pulumi.Output[str]:
        """API gateway service + API (any method, any path under /) to the alias + release; the URL."""
        service = apigateway.Service(
            f"{name}-gateway",
            service_name=config.name.replace("-", "_"),
            service_desc="llmfn OpenAI-compatible endpoint",
            protocol="http&https",
            net_types=["OUTER"],
            opts=child,
        )
        api = apigateway.Api(
            f"{name}-api",
            service_id=service.id,
            api_name=f"{config.name.replace('-', '_')}_v1",
            api_desc="all routes of the inference function",
            auth_type="NONE",  # the function checks the bearer API key itself
            protocol="HTTP",
            request_config_path="/",
            request_config_method="ANY",
            service_config_type="SCF",
            service_config_scf_function_name=function.name,
            service_config_scf_function_namespace=config.namespace,
            service_config_scf_function_qualifier=alias.name,
            service_config_scf_function_type="HTTP",
            service_config_timeout=config.timeout_s,  # the gateway's default 5 s is too short for LLMs
            response_type="JSON",
            opts=child,
        )
        apigateway.ServiceRelease(
            f"{name}-release",
            service_id=service.id,
            environment_name=GATEWAY_ENVIRONMENT,
            release_desc="llmfn",
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[api])),
        )
        return pulumi.Output.concat("https://", service.outer_sub_domain, "/", GATEWAY_ENVIRONMENT)

    @staticmethod
    def _scaler(
        name: str,
        config: StackConfig,
        function: scf.Function,
        code: dict[str, Any],
        child: pulumi.ResourceOptions,
    ) -> scf.Function:
        """The scaler: the same package, an event function run every minute by a timer trigger.

        From a zip it runs ``scf_scaler.main_handler`` (the shim the SCF build writes); from an image, the same
        image's ``functions.entry.scf_web`` answers SCF event invocations on port 9000 when ``LLMFN_ROLE=scaler``.
        """
        scaler_code = dict(code)
        if "image_configs" not in code:
            scaler_code["handler"] = config.scaler_entry_point
        if config.scaler_role is not None:
            scaler_code["role"] = config.scaler_role
        env = scaler_environment(config, function.name, config.scaler_state_bucket)
        return scf.Function(
            f"{name}-scaler",
            name=config.scaler_name,
            namespace=config.namespace,
            description="llmfn scaler: the hybrid policy every minute",
            func_type="Event",
            mem_size=SCALER_MEMORY_MB,
            timeout=SCALER_TIMEOUT_S,
            environment=env,
            triggers=[{"name": "llmfn-every-minute", "type": "timer", "trigger_desc": SCALER_TIMER_CRON}],
            **scaler_code,
            opts=child,
        )

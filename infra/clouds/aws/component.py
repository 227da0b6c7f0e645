"""The AWS component: a Lambda function behind an HTTP API, provisioned by schedule and utilisation.

Resources (``pulumi-aws``): execution roles; the runtime layer (zip packages only); the inference
``lambda_.Function`` (container image, or our zip plus the layer), published; the alias ``live``
(created on that version; ``llmfn promote`` moves it afterwards); ``lambda_.ProvisionedConcurrencyConfig``
on the alias; an Application Auto Scaling target (``lambda:function:ProvisionedConcurrency``, resource
``function:<fn>:<alias>``) with a target-tracking policy on ``LambdaProvisionedConcurrencyUtilization``;
the floor (the target's MinCapacity) moved either by the scaler function on an EventBridge one-minute
schedule (``llmfn:reservedControl`` = scaler, with an S3 bucket for its state) or by one scheduled
action per change of the hybrid schedule (= schedule), never both; an ``apigatewayv2`` HTTP API +
Lambda proxy integration + ``/v1`` and ``/healthz`` routes + ``$default`` stage + invoke permission;
CloudWatch alarms on errors and P95 duration.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pulumi
import pulumi_aws as aws
from pulumi_aws import apigatewayv2, appautoscaling, cloudwatch, iam, lambda_, s3

from infra.common import (
    ALIAS_DESCRIPTION,
    ALIAS_NAME,
    ALIAS_PROMOTE_OWNED,
    cron_actions,
    load_build,
    model_environment,
    published_description,
    scaler_environment,
    stack_outputs,
    with_api_key,
)
from infra.config import StackConfig
from layers.limits import LAMBDA_LIMITS
from scaling.plan import aws_cron

LAMBDA_PYTHON_RUNTIME = "python3.11"
DEFAULT_UTILIZATION_TARGET = 0.7  # AWS's own example target for provisioned-concurrency utilisation
SCALABLE_DIMENSION = "lambda:function:ProvisionedConcurrency"
UTILIZATION_METRIC = "LambdaProvisionedConcurrencyUtilization"
HTTP_API_MAX_TIMEOUT_MS = 30_000  # API Gateway HTTP APIs cut integrations at 30 s
API_ROUTES = ("ANY /v1/{proxy+}", "GET /healthz")  # nothing else is public
SCALER_SCHEDULE = "rate(1 minute)"
SCALER_MEMORY_MB = 256
SCALER_TIMEOUT_S = 60
BASIC_EXECUTION_POLICY = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
_LAMBDA_TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)


def _base64_sha256(hex_digest: str) -> str:
    """Lambda's ``source_code_hash``: base64 of the zip's sha256."""
    return base64.b64encode(bytes.fromhex(hex_digest)).decode()


class AwsInferenceStack(pulumi.ComponentResource):
    """Everything one AWS stack deploys; ``outputs`` holds what the program exports."""

    outputs: dict[str, Any]

    def __init__(self, name: str, config: StackConfig, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llmfn:aws:InferenceStack", name, None, opts)
        provider = aws.Provider(
            f"{name}-provider", region=config.region, opts=pulumi.ResourceOptions(parent=self)
        )
        child = pulumi.ResourceOptions(parent=self, provider=provider)

        role = self._role(f"{name}-function-role", child)
        code = self._code(name, config, child)
        managed: dict[str, Any] = {}
        environment = model_environment(config)
        if (
            config.aws_gpu is not None
        ):  # a GPU function on Lambda Managed Instances (infra/clouds/aws/gpu/managed.py)
            from infra.clouds.aws.gpu import managed as gpu

            gpu.check_account(config)  # fails `pulumi preview` with what the account lacks
            environment |= gpu.function_environment(config)
            capacity_provider = gpu.capacity_provider(name, config, child)
            managed["capacity_provider_config"] = gpu.managed_instances_config(config, capacity_provider)
        frozen: dict[str, Any] = dict(  # what a published version freezes (GPU: its key, infra/gpu)
            # every version Lambda publishes carries this: `llmfn promote` finds it by revision
            description=published_description(config),
            role=role.arn,
            memory_size=config.memory_mb,
            timeout=config.timeout_s,
            ephemeral_storage={"size": config.ephemeral_storage_mb},
            environment=pulumi.Output.from_input(with_api_key(environment, config)).apply(
                lambda env: {"variables": env}
            ),
            architectures=["x86_64"],
            **code,
            **managed,
        )
        function = lambda_.Function(
            f"{name}-function",
            name=config.function_name,
            publish=config.aws_gpu is None,  # GPU: published with its AcceleratorConfig below
            **frozen,
            opts=child,
        )
        version = function.version
        if config.aws_gpu is not None:
            version = gpu.accelerated_version(name, config, function, code["image_uri"], frozen, child)
        alias = lambda_.Alias(
            f"{name}-alias",
            name=ALIAS_NAME,
            function_name=function.name,
            function_version=version,
            description=ALIAS_DESCRIPTION,
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(ignore_changes=ALIAS_PROMOTE_OWNED)
            ),
        )
        if config.aws_gpu is None:
            self._autoscaling(name, config, function, alias, child)
        else:  # the floor is MinExecutionEnvironments of the version, moved by the scaler only
            gpu.execution_environment_floor(name, config, function, version, alias, child)
        endpoint_url = self._http_api(name, config, function, alias, child)
        if config.reserved_control == "scaler":
            self._scaler(name, config, function, code, child)
        self._alarms(name, config, function, alias, child)

        self.outputs = stack_outputs(
            config,
            endpoint_url=endpoint_url,
            function_name=function.name,
            alias_name=alias.name,
            version=version,
            cron=aws_cron,
        )
        self.register_outputs(self.outputs)

    @staticmethod
    def _role(resource_name: str, child: pulumi.ResourceOptions) -> iam.Role:
        role = iam.Role(resource_name, assume_role_policy=_LAMBDA_TRUST, opts=child)
        iam.RolePolicyAttachment(
            f"{resource_name}-logs", role=role.name, policy_arn=BASIC_EXECUTION_POLICY, opts=child
        )
        return role

    @staticmethod
    def _code(name: str, config: StackConfig, child: pulumi.ResourceOptions) -> dict[str, Any]:
        """The function's code arguments: a container image, or our zip plus the runtime layer."""
        if config.image_uri is not None:
            return {"package_type": "Image", "image_uri": config.image_uri}
        if config.image_build is not None:
            from infra.clouds.aws.registry import ecr_image

            return {
                "package_type": "Image",
                "image_uri": ecr_image(name, config.name, config.image_build, child),
            }
        package, runtime_layer = load_build(config, LAMBDA_LIMITS)
        assert config.build_dir is not None
        code: dict[str, Any] = {
            "package_type": "Zip",
            "runtime": LAMBDA_PYTHON_RUNTIME,
            "handler": config.handler,
            "code": pulumi.FileArchive(str(config.build_dir / package.file)),
            "source_code_hash": _base64_sha256(package.sha256),
        }
        if runtime_layer is not None:
            layer = lambda_.LayerVersion(
                f"{name}-runtime-layer",
                layer_name=f"{config.name}-runtime",
                description="llmfn runtime dependencies",
                code=pulumi.FileArchive(str(config.build_dir / runtime_layer.file)),
                source_code_hash=_base64_sha256(runtime_layer.sha256),
                compatible_runtimes=[LAMBDA_PYTHON_RUNTIME],
                compatible_architectures=["x86_64"],
                opts=child,
            )
            code["layers"] = [layer.arn]
        return code

    @staticmethod
    def _autoscaling(
        name: str,
        config: StackConfig,
        function: lambda_.Function,
        alias: lambda_.Alias,
        child: pulumi.ResourceOptions,
    ) -> None:
        """Provisioned concurrency on the alias, driven by Application Auto Scaling.

        The floor (the target's MinCapacity) is moved by exactly one writer: the scaler function
        (``llmfn:reservedControl`` = scaler) or one scheduled action per change of the hybrid schedule
        (= schedule); Pulumi sets it at creation and ignores it afterwards. Target tracking adds capacity
        above the floor up to MaxCapacity, which only the stack sets. The provisioned amount starts at
        the smallest scheduled count (at least 1, Lambda's minimum) and is owned by Application Auto
        Scaling afterwards, so Pulumi ignores later changes to it.
        """
        schedule = config.reserved_schedule
        depends_on: list[pulumi.Resource] = []
        if max(schedule) > 0:
            depends_on.append(
                lambda_.ProvisionedConcurrencyConfig(
                    f"{name}-provisioned",
                    function_name=function.name,
                    qualifier=alias.name,
                    provisioned_concurrent_executions=max(1, min(schedule)),
                    opts=pulumi.ResourceOptions.merge(
                        child, pulumi.ResourceOptions(ignore_changes=["provisionedConcurrentExecutions"])
                    ),
                )
            )
        target = appautoscaling.Target(
            f"{name}-scaling-target",
            service_namespace="lambda",
            scalable_dimension=SCALABLE_DIMENSION,
            resource_id=pulumi.Output.concat("function:", function.name, ":", alias.name),
            min_capacity=min(schedule),
            max_capacity=config.max_instances,
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=depends_on, ignore_changes=["minCapacity"])
            ),
        )
        appautoscaling.Policy(
            f"{name}-utilization",
            name=f"{config.name}-provisioned-utilization",
            policy_type="TargetTrackingScaling",
            service_namespace=target.service_namespace,
            scalable_dimension=target.scalable_dimension,
            resource_id=target.resource_id,
            target_tracking_scaling_policy_configuration={
                "target_value": config.utilization_target or DEFAULT_UTILIZATION_TARGET,
                "predefined_metric_specification": {"predefined_metric_type": UTILIZATION_METRIC},
            },
            opts=child,
        )
        if config.reserved_control != "schedule":
            return
        for action in cron_actions(config, aws_cron):
            appautoscaling.ScheduledAction(
                f"{name}-schedule-h{action.hour:02d}",
                name=f"{config.name}-reserved-h{action.hour:02d}",
                service_namespace=target.service_namespace,
                scalable_dimension=target.scalable_dimension,
                resource_id=target.resource_id,
                schedule=action.cron,
                scalable_target_action={"min_capacity": action.instances},  # MaxCapacity: the stack's
                opts=child,
            )

    @staticmethod
    def _http_api(
        name: str,
        config: StackConfig,
        function: lambda_.Function,
        alias: lambda_.Alias,
        child: pulumi.ResourceOptions,
    ) -> pulumi.Output[str]:
        """HTTP API -> Lambda proxy integration on the alias; the stage's invoke URL."""
        api = apigatewayv2.Api(f"{name}-api", name=f"{config.name}-api", protocol_type="HTTP", opts=child)
        integration = apigatewayv2.Integration(
            f"{name}-integration",
            api_id=api.id,
            integration_type="AWS_PROXY",
            integration_method="POST",
            integration_uri=alias.invoke_arn,
            payload_format_version="2.0",
            timeout_milliseconds=min(HTTP_API_MAX_TIMEOUT_MS, config.timeout_s * 1000),
            opts=child,
        )
        for route_key in API_ROUTES:
            slug = route_key.split(" ")[1].strip("/").split("/")[0].strip("{}+") or "root"
            apigatewayv2.Route(
                f"{name}-route-{slug}",
                api_id=api.id,
                route_key=route_key,
                target=pulumi.Output.concat("integrations/", integration.id),
                opts=child,
            )
        stage = apigatewayv2.Stage(
            f"{name}-stage", api_id=api.id, name="$default", auto_deploy=True, opts=child
        )
        lambda_.Permission(
            f"{name}-api-invoke",
            action="lambda:InvokeFunction",
            function=function.name,
            qualifier=alias.name,
            principal="apigateway.amazonaws.com",
            source_arn=pulumi.Output.concat(api.execution_arn, "/*/*"),
            opts=child,
        )
        return stage.invoke_url

    def _scaler(
        self,
        name: str,
        config: StackConfig,
        function: lambda_.Function,
        code: dict[str, Any],
        child: pulumi.ResourceOptions,
    ) -> lambda_.Function:
        """The scaler: the same package, run every minute by EventBridge, its state in S3."""
        if config.scaler_state_bucket is not None:
            bucket_name: pulumi.Input[str] = config.scaler_state_bucket
        else:
            bucket_name = s3.Bucket(
                f"{name}-scaler-state", bucket_prefix=_bucket_prefix(config.name), opts=child
            ).bucket
        role = self._role(f"{name}-scaler-role", child)
        iam.RolePolicy(
            f"{name}-scaler-policy",
            role=role.id,
            policy=pulumi.Output.all(bucket_name, function.arn).apply(lambda parts: _scaler_policy(*parts)),
            opts=child,
        )
        scaler_code = dict(code)
        if (
            config.aws_gpu is not None
        ):  # never the GPU image on standard Lambda (infra/clouds/aws/gpu/managed.py)
            from infra.clouds.aws.gpu.managed import scaler_code as gpu_scaler_code

            scaler_code = gpu_scaler_code(name, config, child)
        if scaler_code["package_type"] == "Image":
            scaler_code["image_config"] = {"commands": [config.scaler_entry_point]}
        else:
            scaler_code["handler"] = config.scaler_entry_point
        env = scaler_environment(config, function.name, bucket_name).apply(lambda e: {"variables": e})
        scaler = lambda_.Function(
            f"{name}-scaler",
            name=config.scaler_name,
            description=f"llmfn scaler: the {config.policy} policy every minute",
            role=role.arn,
            memory_size=SCALER_MEMORY_MB,
            timeout=SCALER_TIMEOUT_S,
            environment=env,
            architectures=["x86_64"],
            **scaler_code,
            opts=child,
        )
        rule = cloudwatch.EventRule(
            f"{name}-scaler-schedule",
            description="run the llmfn scaler",
            schedule_expression=SCALER_SCHEDULE,
            opts=child,
        )
        cloudwatch.EventTarget(f"{name}-scaler-target", rule=rule.name, arn=scaler.arn, opts=child)
        lambda_.Permission(
            f"{name}-scaler-invoke",
            action="lambda:InvokeFunction",
            function=scaler.name,
            principal="events.amazonaws.com",
            source_arn=rule.arn,
            opts=child,
        )
        return scaler

    @staticmethod
    def _alarms(
        name: str,
        config: StackConfig,
        function: lambda_.Function,
        alias: lambda_.Alias,
        child: pulumi.ResourceOptions,
    ) -> None:
        """Errors per minute and P95 duration above the SLO, on the alias."""
        dimensions = pulumi.Output.all(function.name, alias.name).apply(
            lambda parts: {"FunctionName": parts[0], "Resource": f"{parts[0]}:{parts[1]}"}
        )
        per_minute = {
            "namespace": "AWS/Lambda",
            "dimensions": dimensions,
            "period": 60,
            "treat_missing_data": "notBreaching",
            "opts": child,
        }
        cloudwatch.MetricAlarm(
            f"{name}-errors",
            alarm_description="llmfn: function errors per minute",
            metric_name="Errors",
            statistic="Sum",
            evaluation_periods=1,
            threshold=config.error_alarm_threshold,
            comparison_operator="GreaterThanOrEqualToThreshold",
            **per_minute,
        )
        cloudwatch.MetricAlarm(
            f"{name}-p95-duration",
            alarm_description="llmfn: P95 duration above the SLO",
            metric_name="Duration",
            extended_statistic="p95",
            evaluation_periods=5,
            datapoints_to_alarm=3,
            threshold=config.p95_latency_s * 1000.0,
            comparison_operator="GreaterThanThreshold",
            **per_minute,
        )


S3_BUCKET_PREFIX_MAX_CHARS = 37  # pulumi-aws s3.Bucket bucket_prefix: "less than or equal to 37 characters"


def _bucket_prefix(stack_name: str) -> str:
    """``<name>-scaler-``, the name cut so the prefix fits :data:`S3_BUCKET_PREFIX_MAX_CHARS`
    (llmfn:name may have 40 characters)."""
    suffix = "-scaler-"
    return stack_name[: S3_BUCKET_PREFIX_MAX_CHARS - len(suffix)].rstrip("-") + suffix


def _scaler_policy(bucket: str, function_arn: str) -> str:
    """What the scaler may do: read metrics, move the scalable target's floor, pre-warm the function
    (``lambda:InvokeFunction`` on it and its qualifiers), keep state in its bucket (and list it, so a
    missing state object reads as 404, not 403)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": [
                        "cloudwatch:GetMetricData",
                        "cloudwatch:GetMetricStatistics",
                        "application-autoscaling:DescribeScalableTargets",
                        "application-autoscaling:RegisterScalableTarget",
                        "lambda:GetAlias",
                        # Application Auto Scaling acts on the function with the caller's permissions too
                        "lambda:GetProvisionedConcurrencyConfig",
                        "lambda:PutProvisionedConcurrencyConfig",
                        "lambda:DeleteProvisionedConcurrencyConfig",
                    ],
                    "Resource": "*",
                },
                {  # GPU (Managed Instances): the floor, per published version of this function only
                    "Effect": "Allow",
                    "Action": ["lambda:GetFunctionScalingConfig", "lambda:PutFunctionScalingConfig"],
                    "Resource": [function_arn, f"{function_arn}:*"],
                },
                {
                    "Effect": "Allow",
                    "Action": ["lambda:InvokeFunction"],
                    "Resource": [function_arn, f"{function_arn}:*"],
                },
                {
                    "Effect": "Allow",
                    "Action": ["s3:GetObject", "s3:PutObject"],
                    "Resource": f"arn:aws:s3:::{bucket}/*",
                },
                {
                    # S3 GetObject: "If you don't have the s3:ListBucket permission, Amazon S3 returns an
                    # HTTP status code 403 Access Denied error" for a missing key: without it the first
                    # tick (no state yet) fails instead of starting fresh, and so does every later one
                    "Effect": "Allow",
                    "Action": ["s3:ListBucket"],
                    "Resource": f"arn:aws:s3:::{bucket}",
                },
            ],
        }
    )

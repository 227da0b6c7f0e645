"""AWS: Lambda control (versions, aliases) and provisioned concurrency through Application Auto Scaling
(the metric source is :mod:`functions.cloud.aws.metrics`).

Provisioned concurrency is driven the way AWS recommends, through Application Auto Scaling (dimension
``lambda:function:ProvisionedConcurrency``). On the alias (the scaler) only the floor moves: the
stack's target ``function:<name>:<alias>`` gets a new MinCapacity, its MaxCapacity and tracking stay
the stack's. On a version (``llmfn promote`` warming a canary) a target ``function:<name>:<version>``
of promote's own is registered with MinCapacity = MaxCapacity = desired. Readiness is read back with
``GetProvisionedConcurrencyConfig``.
botocore's own retries are off (one attempt per call); :class:`functions.cloud.retry.RetryPolicy` retries
throttling, 5xx and timeouts with jittered backoff, so every client backs off the same way.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from functions.cloud.retry import RetryPolicy
from functions.cloud.types import AliasRouting, Capacity, CloudError, InvokeResult

PROVISIONED_DIMENSION = "lambda:function:ProvisionedConcurrency"
_THROTTLING_CODES = {
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ServiceUnavailable",
    "ServiceException",
    "InternalFailure",
    "ResourceConflictException",  # "another operation is in progress" on the function
}


def is_transient(error: BaseException) -> bool:
    """True for AWS errors worth retrying: throttling, 5xx, connection failures and timeouts."""
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    if isinstance(error, ConnectionError | HTTPClientError):
        return True
    if isinstance(error, ClientError):
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return (
            status >= 500 or status == 429 or error.response.get("Error", {}).get("Code") in _THROTTLING_CODES
        )
    return False


@dataclass(frozen=True)
class AwsEndpoint:
    """Region and optional endpoint override (tests: moto's server); ``timeout_s`` per request."""

    region: str
    endpoint_url: str | None = None
    timeout_s: float = 10.0

    def client(self, service: str) -> Any:
        """A boto3 client with botocore's retries off (RetryPolicy retries instead)."""
        import boto3
        from botocore.config import Config

        config = Config(
            retries={"total_max_attempts": 1},
            connect_timeout=self.timeout_s,
            read_timeout=self.timeout_s,
        )
        return boto3.client(service, region_name=self.region, endpoint_url=self.endpoint_url, config=config)


def _call(retry: RetryPolicy, operation: str, fn: Any, **params: Any) -> dict[str, Any]:
    """``fn(**params)`` with retries; a refused call becomes :class:`CloudError` naming the code."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return retry.call(operation, lambda: fn(**params), is_transient)
    except ClientError as error:
        err = error.response.get("Error", {})
        raise CloudError(operation, err.get("Code", "?"), err.get("Message", str(error))) from error
    except BotoCoreError as error:
        raise CloudError(operation, type(error).__name__, str(error)) from error


@dataclass
class LambdaControl:
    """One Lambda function and its alias (the AWS actuator)."""

    endpoint: AwsEndpoint
    function: str
    alias_name: str
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    update_poll_s: float = 1.0

    def __post_init__(self) -> None:
        self._lambda = self.endpoint.client("lambda")
        self._scaling = self.endpoint.client("application-autoscaling")

    def _resource(self, version: str) -> str:
        return f"function:{self.function}:{version}"

    def alias(self) -> AliasRouting:
        answer = _call(
            self.retry, "GetAlias", self._lambda.get_alias, FunctionName=self.function, Name=self.alias_name
        )
        weights = (answer.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        return AliasRouting(
            primary=answer["FunctionVersion"],
            weights={v: float(w) for v, w in weights.items()},
            description=answer.get("Description") or "",
        )

    def set_routing(self, primary: str, weights: Mapping[str, float]) -> None:
        _call(
            self.retry,
            "UpdateAlias",
            self._lambda.update_alias,
            FunctionName=self.function,
            Name=self.alias_name,
            FunctionVersion=primary,
            RoutingConfig={"AdditionalVersionWeights": dict(weights)},
        )

    def versions(self) -> dict[str, str]:
        found: dict[str, str] = {}
        marker: str | None = None
        while True:
            extra = {"Marker": marker} if marker else {}
            page = _call(
                self.retry, "ListVersionsByFunction", self._lambda.list_versions_by_function,
                FunctionName=self.function, **extra,
            )  # fmt: skip
            for entry in page.get("Versions", []):
                if entry["Version"] != "$LATEST":
                    found[entry["Version"]] = entry.get("Description") or ""
            marker = page.get("NextMarker")
            if not marker:
                return found

    def _wait_until_updated(self) -> None:
        """Wait while ``$LATEST`` is being updated (Lambda refuses to publish meanwhile)."""
        while True:
            config = _call(
                self.retry, "GetFunctionConfiguration", self._lambda.get_function_configuration,
                FunctionName=self.function,
            )  # fmt: skip
            if config.get("LastUpdateStatus", "Successful") != "InProgress":
                return
            time.sleep(self.update_poll_s)

    def set_environment(self, variables: Mapping[str, str]) -> None:
        self._wait_until_updated()
        config = _call(
            self.retry,
            "GetFunctionConfiguration",
            self._lambda.get_function_configuration,
            FunctionName=self.function,
        )
        merged = (config.get("Environment") or {}).get("Variables", {}) | dict(variables)
        _call(
            self.retry, "UpdateFunctionConfiguration", self._lambda.update_function_configuration,
            FunctionName=self.function, Environment={"Variables": merged},
        )  # fmt: skip
        self._wait_until_updated()

    def publish_version(self, description: str) -> str:
        answer = _call(
            self.retry,
            "PublishVersion",
            self._lambda.publish_version,
            FunctionName=self.function,
            Description=description,
        )
        return str(answer["Version"])

    def scaling_qualifier(self, routing: AliasRouting) -> str:
        return self.alias_name

    def capacity(self, version: str) -> Capacity:
        try:
            answer = _call(
                self.retry, "GetProvisionedConcurrencyConfig", self._lambda.get_provisioned_concurrency_config,
                FunctionName=self.function, Qualifier=version,
            )  # fmt: skip
        except CloudError as error:
            if error.code == "ProvisionedConcurrencyConfigNotFoundException":
                return Capacity(0, 0)
            raise
        return Capacity(
            requested=int(answer.get("RequestedProvisionedConcurrentExecutions") or 0),
            ready=int(answer.get("AvailableProvisionedConcurrentExecutions") or 0),
        )

    def _target(self, qualifier: str) -> dict[str, Any]:
        return {
            "ServiceNamespace": "lambda",
            "ResourceId": self._resource(qualifier),
            "ScalableDimension": PROVISIONED_DIMENSION,
        }

    def floor(self) -> tuple[int, int]:
        """(MinCapacity, MaxCapacity) of the stack's scalable target on the alias.

        Raises CloudError ``ObjectNotFoundException`` when the stack has not registered it."""
        target = self._target(self.alias_name)
        answer = _call(
            self.retry, "DescribeScalableTargets", self._scaling.describe_scalable_targets,
            ServiceNamespace="lambda", ResourceIds=[target["ResourceId"]],
            ScalableDimension=PROVISIONED_DIMENSION,
        )  # fmt: skip
        for found in answer.get("ScalableTargets", []):
            if found["ResourceId"] == target["ResourceId"]:
                return int(found["MinCapacity"]), int(found["MaxCapacity"])
        raise CloudError(
            "DescribeScalableTargets",
            "ObjectNotFoundException",
            f"no scalable target {target['ResourceId']}: deploy the stack first (it registers the target)",
        )

    def _set_floor(self, instances: int) -> None:
        """Move only the alias target's MinCapacity (clamped to its MaxCapacity); tracking acts above."""
        current_min, current_max = self.floor()
        wanted = min(instances, current_max)
        if wanted == current_min:
            return
        _call(
            self.retry, "RegisterScalableTarget", self._scaling.register_scalable_target,
            MinCapacity=wanted, **self._target(self.alias_name),
        )  # fmt: skip

    def set_capacity(self, version: str, instances: int) -> None:
        if version == self.alias_name:
            self._set_floor(instances)
            return
        if self.capacity(version).requested == instances:
            return
        target = {
            "ServiceNamespace": "lambda",
            "ResourceId": self._resource(version),
            "ScalableDimension": PROVISIONED_DIMENSION,
        }
        if instances > 0:
            _call(
                self.retry, "RegisterScalableTarget", self._scaling.register_scalable_target,
                MinCapacity=instances, MaxCapacity=instances, **target,
            )  # fmt: skip
            return
        try:
            _call(self.retry, "DeregisterScalableTarget", self._scaling.deregister_scalable_target, **target)
        except CloudError as error:
            if error.code != "ObjectNotFoundException":
                raise
        try:  # a deregistered target leaves the last capacity in place: delete the config itself
            _call(
                self.retry, "DeleteProvisionedConcurrencyConfig", self._lambda.delete_provisioned_concurrency_config,
                FunctionName=self.function, Qualifier=version,
            )  # fmt: skip
        except CloudError as error:
            if error.code not in (
                "ResourceNotFoundException",
                "ProvisionedConcurrencyConfigNotFoundException",
            ):
                raise

    def invoke(self, qualifier: str, payload: Mapping[str, Any], asynchronous: bool = False) -> InvokeResult:
        answer = _call(
            self.retry, "Invoke", self._lambda.invoke,
            FunctionName=self.function, Qualifier=qualifier,
            InvocationType="Event" if asynchronous else "RequestResponse",
            Payload=json.dumps(dict(payload)).encode(),
        )  # fmt: skip
        body = answer["Payload"].read().decode(errors="replace") if "Payload" in answer else ""
        ok = int(answer.get("StatusCode", 500)) < 300 and "FunctionError" not in answer
        return InvokeResult(ok=ok, body=body)

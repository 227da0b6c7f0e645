"""AWS's half of the function side: the ``aws`` row of :data:`core.clouds.CLOUD_PLUGINS` names this module.

:mod:`functions.cloud.connect` dispatches a ``CloudTarget`` on AWS here: Lambda's alias and provisioned
concurrency (or, with ``reserved_capacity`` = execution-environments, Lambda Managed Instances'
``MinExecutionEnvironments``), CloudWatch metrics, and S3 for the scaler's state (its conditional writes). Credentials come
from boto3's chain (the function's execution role), so there is nothing to check up front.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.contract import EXECUTION_ENVIRONMENTS
from functions.cloud.retry import RetryPolicy
from functions.cloud.types import CloudControl, MetricSource

if TYPE_CHECKING:
    from functions.cloud.connect import CloudTarget
    from functions.cloud.state import S3StateStore


def validate(target: CloudTarget) -> None:
    """Nothing AWS-specific to check: boto3's credential chain supplies the keys at the first call."""


def control(target: CloudTarget, retry: RetryPolicy) -> CloudControl:
    """The actuator: Lambda's versions, alias routing and provisioned concurrency (or Managed Instances')."""
    from functions.cloud.aws.control import AwsEndpoint, LambdaControl

    endpoint = AwsEndpoint(target.region, target.endpoint, target.timeout_s)
    if target.reserved_capacity == EXECUTION_ENVIRONMENTS:
        from functions.cloud.aws.managed_instances import ManagedInstancesControl

        return ManagedInstancesControl(endpoint, target.function, target.alias, retry)
    return LambdaControl(endpoint, target.function, target.alias, retry)


def metrics(target: CloudTarget, retry: RetryPolicy) -> MetricSource:
    """The metric source: CloudWatch's Lambda metrics of the alias."""
    from functions.cloud.aws.control import AwsEndpoint
    from functions.cloud.aws.metrics import CloudWatchMetrics

    endpoint = AwsEndpoint(target.region, target.endpoint, target.timeout_s)
    return CloudWatchMetrics(endpoint, function=target.function, alias=target.alias, retry=retry)


def s3_client(target: CloudTarget, endpoint: str | None) -> Any:
    """A boto3 S3 client for the state object (``endpoint``: an override URL, tests: moto's server)."""
    from functions.cloud.aws.control import AwsEndpoint

    return AwsEndpoint(target.region, endpoint, target.timeout_s).client("s3")


def state_store(
    target: CloudTarget, endpoint: str | None, bucket: str, key: str, retry: RetryPolicy
) -> S3StateStore:
    """The scaler's state object in S3, written conditionally (``functions.cloud.state``)."""
    from functions.cloud.state import S3StateStore

    return S3StateStore(s3_client(target, endpoint), bucket, key, retry)

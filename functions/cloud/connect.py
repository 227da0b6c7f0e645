"""One place that turns "which function on which cloud" into its metric source, actuator and S3 client."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from pydantic import SecretStr

from core import contract
from core.contract import CLOUDS, RESERVED_CAPACITIES, Cloud, ReservedCapacity
from core.errors import InputError
from functions.cloud.retry import RetryPolicy
from functions.cloud.types import CloudControl, MetricSource
from functions.secrets import as_secret, reveal


class TargetError(InputError):
    """A setting that names the cloud target is missing or wrong (the message names it)."""


def cloud_name(text: str) -> Cloud:
    """The canonical cloud ("aws" or "tencent") for any spelling :data:`core.contract.CLOUD_SPELLINGS`
    accepts: aws, lambda, tencent, tencentcloud (infra's name), scf (the layer builder's)."""
    try:
        return contract.cloud_name(text)
    except contract.UnknownCloudError as exc:
        raise TargetError(str(exc)) from exc


@dataclass(frozen=True)
class CloudTarget:
    """A function alias on a cloud.

    cloud: "aws" or "tencent". function / alias: names; namespace: SCF namespace (Tencent only).
    region: cloud region. endpoint: API endpoint override URL (tests: the stand-ins), None = the
    cloud's own. secret_id / secret_key / session_token: Tencent credentials (AWS uses boto3's
    credential chain), held as ``SecretStr`` (strings given are wrapped) so that a repr of the target, or
    of settings holding it, shows them masked. timeout_s: per-request timeout, seconds. reserved_capacity: what the reserved
    floor is: provisioned concurrency, or on Lambda Managed Instances (AWS GPU functions) the
    version's ``MinExecutionEnvironments``.
    """

    cloud: Cloud
    function: str
    alias: str
    region: str
    namespace: str = "default"
    endpoint: str | None = None
    secret_id: SecretStr | None = None
    secret_key: SecretStr | None = None
    session_token: SecretStr | None = None
    timeout_s: float = 10.0
    reserved_capacity: ReservedCapacity = contract.PROVISIONED_CONCURRENCY

    def __post_init__(self) -> None:
        for name in ("secret_id", "secret_key", "session_token"):
            object.__setattr__(self, name, as_secret(getattr(self, name)))
        if self.cloud not in CLOUDS:
            raise TargetError(
                f"must be one of {', '.join(CLOUDS)}, got {self.cloud!r}",
                field="cloud",
                value=self.cloud,
                allowed=", ".join(CLOUDS),
            )
        if self.reserved_capacity not in RESERVED_CAPACITIES or (
            self.reserved_capacity == contract.EXECUTION_ENVIRONMENTS and self.cloud != "aws"
        ):
            raise TargetError(
                f"reserved capacity ({contract.ENV_RESERVED_CAPACITY}) must be one of {', '.join(RESERVED_CAPACITIES)}"
                f" (execution-environments on aws only), got {self.reserved_capacity!r}"
            )
        for name in ("function", "alias", "region"):
            if not getattr(self, name):
                raise TargetError(f"{name!r} is required (flag --{name}, or the stack outputs)")
        if self.cloud == "tencent" and not (self.secret_id and self.secret_key):
            raise TargetError(
                "Tencent credentials missing: set TENCENTCLOUD_SECRETID and TENCENTCLOUD_SECRETKEY"
            )

    @staticmethod
    def tencent_credentials(env: Mapping[str, str] | None = None) -> dict[str, SecretStr | None]:
        """Tencent keys from the environment (on SCF, ``functions.scaler.handler.tencent_env`` puts each
        request's ``X-Scf-*`` role keys there: an image function's own environment has none)."""
        env = os.environ if env is None else env
        return {
            "secret_id": as_secret(env.get("TENCENTCLOUD_SECRETID")),
            "secret_key": as_secret(env.get("TENCENTCLOUD_SECRETKEY")),
            "session_token": as_secret(env.get("TENCENTCLOUD_SESSIONTOKEN")),
        }

    def _tencent(self) -> Any:
        from functions.cloud.tencent import TencentEndpoint

        host, protocol = None, "https"
        if self.endpoint:
            parsed = urlparse(self.endpoint if "://" in self.endpoint else f"https://{self.endpoint}")
            host, protocol = parsed.netloc, parsed.scheme
        return TencentEndpoint(
            region=self.region,
            secret_id=self.secret_id or SecretStr(""),
            secret_key=self.secret_key or SecretStr(""),
            endpoint=host,
            protocol=protocol,
            timeout_s=self.timeout_s,
            session_token=self.session_token,
        )

    def control(self, retry: RetryPolicy) -> CloudControl:
        """The actuator: versions, alias routing, provisioned capacity."""
        if self.cloud == "aws" and self.reserved_capacity == contract.EXECUTION_ENVIRONMENTS:
            from functions.cloud.aws import AwsEndpoint
            from functions.cloud.aws_gpu import ManagedInstancesControl

            return ManagedInstancesControl(
                AwsEndpoint(self.region, self.endpoint, self.timeout_s), self.function, self.alias, retry
            )
        if self.cloud == "aws":
            from functions.cloud.aws import AwsEndpoint, LambdaControl

            return LambdaControl(
                AwsEndpoint(self.region, self.endpoint, self.timeout_s), self.function, self.alias, retry
            )
        from functions.cloud.tencent import ScfControl

        return ScfControl(self._tencent(), self.function, self.alias, self.namespace, retry)

    def metrics(self, retry: RetryPolicy) -> MetricSource:
        """The metric source: CloudWatch or Tencent Cloud Monitor."""
        if self.cloud == "aws":
            from functions.cloud.aws import AwsEndpoint, CloudWatchMetrics

            endpoint = AwsEndpoint(self.region, self.endpoint, self.timeout_s)
            return CloudWatchMetrics(endpoint, function=self.function, alias=self.alias, retry=retry)
        from functions.cloud.tencent import CloudMonitorMetrics

        return CloudMonitorMetrics(self._tencent(), self.function, self.namespace, retry)

    def s3_client(self, endpoint: str | None) -> Any:
        """A boto3 S3 client for the state object: S3 on AWS; COS's S3 API on Tencent."""
        from functions.cloud.aws import AwsEndpoint

        if self.cloud == "aws":
            return AwsEndpoint(self.region, endpoint, self.timeout_s).client("s3")
        import boto3
        from botocore.config import Config

        # The scaler's twin of preload.objectstore.cos_client (the scaler's package must not hold
        # preload, tests/layers): checksums only "when_required", as COS needs (tests/cloud/test_clients.py
        # checks both clients).
        return boto3.client(
            "s3",
            region_name=self.region,
            endpoint_url=endpoint or f"https://cos.{self.region}.myqcloud.com",
            aws_access_key_id=reveal(self.secret_id),
            aws_secret_access_key=reveal(self.secret_key),
            aws_session_token=reveal(self.session_token),
            config=Config(
                retries={"total_max_attempts": 1},
                s3={"addressing_style": "virtual"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )

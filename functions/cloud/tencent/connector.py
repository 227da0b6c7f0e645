"""Tencent Cloud's half of the function side: the ``tencent`` row of :data:`core.clouds.CLOUD_PLUGINS`
names this module.

:mod:`functions.cloud.connect` dispatches a ``CloudTarget`` on Tencent Cloud here: SCF's versions,
alias routing and provisioned concurrency, Cloud Monitor metrics, and COS (through its S3 API) for the
scaler's state. Every call is signed with the target's ``secret_id`` / ``secret_key`` (and
``session_token`` with a role's temporary keys), so :func:`validate` refuses a target without them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from pydantic import SecretStr

from functions.cloud.retry import RetryPolicy
from functions.cloud.types import CloudControl, MetricSource
from functions.secrets import reveal

if TYPE_CHECKING:
    from functions.cloud.connect import CloudTarget
    from functions.cloud.tencent.control import TencentEndpoint
    from functions.cloud.tencent.state import CosStateStore


def validate(target: CloudTarget) -> None:
    """Refuse a target without keys: every SCF and Cloud Monitor call is signed with them."""
    from functions.cloud.connect import TargetError

    if not (target.secret_id and target.secret_key):
        raise TargetError("Tencent credentials missing: set TENCENTCLOUD_SECRETID and TENCENTCLOUD_SECRETKEY")


def endpoint(target: CloudTarget) -> TencentEndpoint:
    """Where and as whom to call; ``target.endpoint`` (a URL or ``host[:port]``) overrides the domain."""
    from functions.cloud.tencent.control import TencentEndpoint

    host, protocol = None, "https"
    if target.endpoint:
        parsed = urlparse(target.endpoint if "://" in target.endpoint else f"https://{target.endpoint}")
        host, protocol = parsed.netloc, parsed.scheme
    return TencentEndpoint(
        region=target.region,
        secret_id=target.secret_id or SecretStr(""),
        secret_key=target.secret_key or SecretStr(""),
        endpoint=host,
        protocol=protocol,
        timeout_s=target.timeout_s,
        session_token=target.session_token,
    )


def control(target: CloudTarget, retry: RetryPolicy) -> CloudControl:
    """The actuator: SCF's versions, alias routing and provisioned concurrency."""
    from functions.cloud.tencent.control import ScfControl

    return ScfControl(endpoint(target), target.function, target.alias, target.namespace, retry)


def metrics(target: CloudTarget, retry: RetryPolicy) -> MetricSource:
    """The metric source: Tencent Cloud Monitor's SCF metrics."""
    from functions.cloud.tencent.metrics import CloudMonitorMetrics

    return CloudMonitorMetrics(endpoint(target), target.function, target.namespace, retry)


def s3_client(target: CloudTarget, endpoint_url: str | None) -> Any:
    """A boto3 client of COS's S3 API for the state object (default: the region's COS domain).

    The scaler's twin of ``preload.objectstore.cos_client`` (the scaler's package must not hold
    preload, tests/layers): checksums only "when_required", as COS needs (tests/cloud/test_clients.py
    checks both clients)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        region_name=target.region,
        endpoint_url=endpoint_url or f"https://cos.{target.region}.myqcloud.com",
        aws_access_key_id=reveal(target.secret_id),
        aws_secret_access_key=reveal(target.secret_key),
        aws_session_token=reveal(target.session_token),
        config=Config(
            retries={"total_max_attempts": 1},
            s3={"addressing_style": "virtual"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


def state_store(
    target: CloudTarget, endpoint_url: str | None, bucket: str, key: str, retry: RetryPolicy
) -> CosStateStore:
    """The scaler's state object on COS: create-only first write, then plain PUTs
    (:mod:`functions.cloud.tencent.state`)."""
    from functions.cloud.tencent.state import CosStateStore

    return CosStateStore(s3_client(target, endpoint_url), bucket, key, retry)

"""Both clouds behind one test-side interface, so every scenario runs against each stand-in.

A stand-in holds a function ``llm`` with alias ``live`` -> version 1 (``LLMFN_MODEL_REVISION=rev-1``)
whose provisioned capacity is already warm, the state bucket, and hooks to inject faults, publish
metrics and check that traffic never reached a version without warm capacity.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3

from core.contract import SCF_URL_TRIGGER, scf_url_of_trigger_desc, scf_url_trigger_desc
from functions.cloud.connect import CloudTarget
from functions.cloud.retry import RetryPolicy
from tests.cloud.aws_proxy import AwsProxy
from tests.cloud.cos_standin import CosStandIn
from tests.cloud.faults import FaultPlan
from tests.cloud.scf_emulator import ScfEmulator

FUNCTION = "llm"
ALIAS = "live"
REGION_AWS = "us-east-1"
REGION_TENCENT = "ap-guangzhou"
STATE_BUCKET = "llmfn-state"
INITIAL_CAPACITY = 2
ALIAS_MAX_CAPACITY = 30  # the stack's MaxCapacity on the alias's scalable target (AWS)


def fast_retry() -> RetryPolicy:
    """Backoff of milliseconds, so fault tests stay fast."""
    return RetryPolicy(attempts=5, initial_s=0.001, max_s=0.01, jitter_s=0.001)


@dataclass
class StandIn:
    """One cloud's stand-in, set up with the stack described in the module docstring."""

    cloud: str
    target: CloudTarget
    faults: FaultPlan
    state_endpoint: str
    state_faults: FaultPlan
    aws_proxy: AwsProxy | None = None
    scf: ScfEmulator | None = None
    cos: CosStandIn | None = None  # COS's S3 API rules in front of the state bucket (Tencent)
    endpoint_url: str | None = None  # the alias's function URL (Tencent)

    def unwarmed_routes(self) -> list[dict[str, Any]]:
        return (self.aws_proxy or self.scf).unwarmed_routes()  # type: ignore[union-attr]

    def alias_updates(self) -> list[dict[str, Any]]:
        return (self.aws_proxy or self.scf).alias_updates  # type: ignore[union-attr]

    def invocations(self) -> int:
        """Invoke calls the function received."""
        if self.scf is not None:  # Invoke calls and requests through the function URLs
            return sum(1 for action, _ in self.scf.calls if action == "Invoke") + len(self.scf.url_requests)
        assert self.aws_proxy is not None
        return self.aws_proxy.operations.count("Invoke")

    def put_minute(
        self,
        qualifier: str,
        minute_start: datetime,
        invocations: float,
        errors: float = 0.0,
        concurrency: float = 0.0,
        duration_ms: float | None = None,
    ) -> None:
        """Publish one minute of metrics for ``qualifier`` (points in the middle of the minute)."""
        stamp = minute_start.timestamp() + 30
        if self.scf is not None:
            for metric, value in (
                ("Invocation", invocations),
                ("Error", errors),
                ("ConcurrentExecutions", concurrency),
            ):
                self.scf.put_metric(FUNCTION, qualifier, metric, int(stamp), value)
            if duration_ms is not None:
                self.scf.put_metric(FUNCTION, qualifier, "Duration", int(stamp), duration_ms)
            return
        cloudwatch = boto3.client("cloudwatch", region_name=REGION_AWS, endpoint_url=self.state_endpoint)
        dims = self.target.metrics(fast_retry()).dimensions(qualifier)  # type: ignore[attr-defined]
        when = datetime.fromtimestamp(stamp, UTC)
        data = [
            {"MetricName": "Invocations", "Value": invocations, "Unit": "Count"},
            {"MetricName": "Errors", "Value": errors, "Unit": "Count"},
            {"MetricName": "ConcurrentExecutions", "Value": concurrency, "Unit": "Count"},
        ]
        if duration_ms is not None:
            data.append({"MetricName": "Duration", "Value": duration_ms, "Unit": "Milliseconds"})
        cloudwatch.put_metric_data(
            Namespace="AWS/Lambda", MetricData=[{**d, "Dimensions": dims, "Timestamp": when} for d in data]
        )


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


def aws_stand_in(moto_url: str, proxy: AwsProxy) -> StandIn:
    """moto (through ``proxy``) with the stack set up through plain boto3."""
    kw = {"region_name": REGION_AWS, "endpoint_url": proxy.url}
    role = boto3.client("iam", **kw).create_role(RoleName="llm-role", AssumeRolePolicyDocument="{}")["Role"][
        "Arn"
    ]
    lam = boto3.client("lambda", **kw)
    lam.create_function(
        FunctionName=FUNCTION,
        Runtime="python3.11",
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": _zip()},
        Environment={"Variables": {"LLMFN_MODEL_REVISION": "rev-1"}},
    )
    version = lam.publish_version(FunctionName=FUNCTION, Description="llmfn model-revision=rev-1")["Version"]
    boto3.client("application-autoscaling", **kw).register_scalable_target(
        ServiceNamespace="lambda",
        ResourceId=f"function:{FUNCTION}:{version}",
        ScalableDimension="lambda:function:ProvisionedConcurrency",
        MinCapacity=INITIAL_CAPACITY,
        MaxCapacity=INITIAL_CAPACITY,
    )
    proxy.prewarm(FUNCTION, version, INITIAL_CAPACITY)
    lam.create_alias(FunctionName=FUNCTION, Name=ALIAS, FunctionVersion=version, Description="production")
    # as infra/clouds/aws/component.py registers it: the alias's target, whose floor (MinCapacity) the scaler moves
    boto3.client("application-autoscaling", **kw).register_scalable_target(
        ServiceNamespace="lambda",
        ResourceId=f"function:{FUNCTION}:{ALIAS}",
        ScalableDimension="lambda:function:ProvisionedConcurrency",
        MinCapacity=0,
        MaxCapacity=ALIAS_MAX_CAPACITY,
    )
    boto3.client("s3", **kw).create_bucket(Bucket=STATE_BUCKET)
    target = CloudTarget("aws", FUNCTION, ALIAS, REGION_AWS, endpoint=proxy.url, timeout_s=0.3)
    return StandIn("aws", target, proxy.faults, proxy.url, proxy.faults, aws_proxy=proxy)


def tencent_stand_in(scf: ScfEmulator, moto_url: str, proxy: AwsProxy, cos: CosStandIn) -> StandIn:
    """The SCF emulator with the stack set up through the SDK; COS's S3 API played by moto behind
    ``cos`` (a started :class:`CosStandIn` whose upstream is ``proxy``)."""
    from tencentcloud.common import credential
    from tencentcloud.common.profile.client_profile import ClientProfile
    from tencentcloud.common.profile.http_profile import HttpProfile
    from tencentcloud.scf.v20180416 import scf_client

    scf.add_function(FUNCTION, environment={"LLMFN_MODEL_REVISION": "rev-1"})
    client = scf_client.ScfClient(
        credential.Credential(scf.secret_id, scf.secret_key),
        REGION_TENCENT,
        ClientProfile(httpProfile=HttpProfile(endpoint=scf.endpoint, protocol="http")),
    )
    version = client.call_json(
        "PublishVersion", {"FunctionName": FUNCTION, "Description": "llmfn model-revision=rev-1"}
    )["Response"]["FunctionVersion"]
    client.call_json(
        "PutProvisionedConcurrencyConfig",
        {
            "FunctionName": FUNCTION,
            "Qualifier": version,
            "VersionProvisionedConcurrencyNum": INITIAL_CAPACITY,
        },
    )
    scf.prewarm(FUNCTION, version, INITIAL_CAPACITY)
    client.call_json(
        "CreateAlias",
        {"FunctionName": FUNCTION, "Name": ALIAS, "FunctionVersion": version, "Description": "production"},
    )
    url = client.call_json(
        "CreateTrigger",
        {
            "FunctionName": FUNCTION,
            "TriggerName": SCF_URL_TRIGGER,
            "Type": "http",
            "Qualifier": ALIAS,
            "TriggerDesc": scf_url_trigger_desc(),
        },
    )["Response"]["TriggerInfo"]["TriggerDesc"]
    boto3.client("s3", region_name=REGION_AWS, endpoint_url=moto_url).create_bucket(Bucket=STATE_BUCKET)
    target = CloudTarget(
        "tencent",
        FUNCTION,
        ALIAS,
        REGION_TENCENT,
        endpoint=f"http://{scf.endpoint}",
        secret_id=scf.secret_id,
        secret_key=scf.secret_key,
        timeout_s=0.3,
    )
    endpoint_url = scf_url_of_trigger_desc(url)
    return StandIn(
        "tencent", target, scf.faults, cos.url, proxy.faults, scf=scf, cos=cos, endpoint_url=endpoint_url
    )

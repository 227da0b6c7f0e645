"""AWS: CloudWatch metrics of a Lambda alias (the AWS metric source).

CloudWatch (namespace ``AWS/Lambda``, dimensions ``FunctionName`` + ``Resource`` = ``<name>:<alias>``,
plus ``ExecutedVersion`` for one version behind it):
``Invocations`` / ``Errors`` (Sum), ``ConcurrentExecutions`` (Average, Maximum),
``ProvisionedConcurrencyUtilization`` (Average), ``Duration`` (p95, ms; Maximum where a backend returns
no percentile, as moto does). ``GetMetricStatistics`` takes ``Statistics`` or ``ExtendedStatistics``,
never both ("you must specify either Statistics or ExtendedStatistics, but not both"), so Duration
is read with two calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from core.errors import InputError
from functions.cloud.aws.control import AwsEndpoint, _call
from functions.cloud.retry import RetryPolicy
from functions.cloud.types import WindowMetrics


@dataclass
class CloudWatchMetrics:
    """Lambda metrics from CloudWatch (the AWS metric source). ``window_s`` must be a multiple of 60.

    A version number as qualifier reads the traffic the alias sent to that version (dimension
    ``ExecutedVersion`` under ``Resource`` = ``<name>:<alias>``), which is what a canary gate needs.
    """

    endpoint: AwsEndpoint
    function: str
    alias: str
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        self._cloudwatch = self.endpoint.client("cloudwatch")

    def dimensions(self, qualifier: str) -> list[dict[str, str]]:
        """CloudWatch dimensions of an alias (``Resource``) or of a version behind the alias."""
        if qualifier.isdigit():
            return [
                {"Name": "FunctionName", "Value": self.function},
                {"Name": "Resource", "Value": f"{self.function}:{self.alias}"},
                {"Name": "ExecutedVersion", "Value": qualifier},
            ]
        return [
            {"Name": "FunctionName", "Value": self.function},
            {"Name": "Resource", "Value": f"{self.function}:{qualifier}"},
        ]

    def _datapoints(
        self, metric: str, qualifier: str, end: datetime, window_s: float, **stats: Any
    ) -> list[dict]:
        answer = _call(
            self.retry,
            "GetMetricStatistics",
            self._cloudwatch.get_metric_statistics,
            Namespace="AWS/Lambda",
            MetricName=metric,
            Dimensions=self.dimensions(qualifier),
            StartTime=end - timedelta(seconds=window_s),
            EndTime=end,
            Period=60,
            **stats,
        )
        return answer.get("Datapoints", [])

    def window(self, qualifier: str, end: datetime, window_s: float) -> WindowMetrics:
        if window_s < 60 or window_s % 60:
            raise InputError(f"CloudWatch window_s must be a multiple of 60 seconds, got {window_s}")

        def total(metric: str) -> float:
            points = self._datapoints(metric, qualifier, end, window_s, Statistics=["Sum"])
            return sum(float(p.get("Sum", 0.0)) for p in points)

        concurrency = self._datapoints(
            "ConcurrentExecutions", qualifier, end, window_s, Statistics=["Average", "Maximum"]
        )
        utilisation = self._datapoints(
            "ProvisionedConcurrencyUtilization", qualifier, end, window_s, Statistics=["Average"]
        )
        percentiles = self._datapoints("Duration", qualifier, end, window_s, ExtendedStatistics=["p95"])
        p95s = [
            float(p["ExtendedStatistics"]["p95"])
            for p in percentiles
            if "p95" in p.get("ExtendedStatistics", {})
        ]
        maxima = []
        if not p95s:  # a backend without percentiles (moto): the largest duration instead
            durations = self._datapoints("Duration", qualifier, end, window_s, Statistics=["Maximum"])
            maxima = [float(p["Maximum"]) for p in durations if "Maximum" in p]
        p95_ms = max(p95s) if p95s else max(maxima, default=None)
        return WindowMetrics(
            window_s=window_s,
            invocations=total("Invocations"),
            errors=total("Errors"),
            mean_concurrency=(
                sum(float(p["Average"]) for p in concurrency) / len(concurrency) if concurrency else 0.0
            ),
            max_concurrency=max((float(p["Maximum"]) for p in concurrency), default=0.0),
            p95_duration_s=p95_ms / 1000 if p95_ms is not None else None,
            p95_source="Duration p95" if p95s else "Duration Maximum (no p95 from the backend)",
            reserved_utilisation=(
                sum(float(p["Average"]) for p in utilisation) / len(utilisation) if utilisation else None
            ),
        )

"""Tencent Cloud: Cloud Monitor metrics of an SCF function (the SCF metric source).

Cloud Monitor: namespace ``QCE/SCF_V2``, dimensions ``functionName`` / ``namespace`` plus ``version``
for a version or ``alias`` for an alias (https://cloud.tencent.com/document/product/248/37207: every SCF
metric's dimensions are "functionName、version、namespace、alias"), metrics ``Invocation`` and ``Error``
(counts per period), ``ConcurrentExecutions`` and ``Duration`` (ms, a per-period average). It
publishes no percentile, so ``p95_duration_s`` is the largest per-period ``Duration`` in the window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from functions.cloud.retry import RetryPolicy
from functions.cloud.tencent.control import TencentEndpoint, _call
from functions.cloud.types import WindowMetrics

SCF_MONITOR_NAMESPACE = "QCE/SCF_V2"
MONITOR_PERIOD_S = 60


def qualifier_dimension(qualifier: str) -> str:
    """Cloud Monitor's dimension for an SCF qualifier: ``version`` for a version number or ``$LATEST``,
    ``alias`` for an alias name."""
    return "version" if qualifier.isdigit() or qualifier == "$LATEST" else "alias"


@dataclass
class CloudMonitorMetrics:
    """SCF metrics from Tencent Cloud Monitor (the SCF metric source)."""

    endpoint: TencentEndpoint
    function: str
    namespace: str = "default"
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        self._monitor = self.endpoint.client("monitor", "2018-07-24")

    def _values(self, metric: str, qualifier: str, end: datetime, window_s: float) -> list[float]:
        dims = [
            {"Name": "functionName", "Value": self.function},
            {"Name": qualifier_dimension(qualifier), "Value": qualifier},
            {"Name": "namespace", "Value": self.namespace},
        ]
        params = {
            "Namespace": SCF_MONITOR_NAMESPACE,
            "MetricName": metric,
            "Instances": [{"Dimensions": dims}],
            "Period": MONITOR_PERIOD_S,
            "StartTime": (end - timedelta(seconds=window_s)).isoformat(timespec="seconds"),
            "EndTime": end.isoformat(timespec="seconds"),
        }
        answer = _call(self._monitor, self.retry, "GetMonitorData", params)
        return [float(v) for point in answer.get("DataPoints") or [] for v in point.get("Values") or []]

    def window(self, qualifier: str, end: datetime, window_s: float) -> WindowMetrics:
        invocations = sum(self._values("Invocation", qualifier, end, window_s))
        errors = sum(self._values("Error", qualifier, end, window_s))
        concurrency = self._values("ConcurrentExecutions", qualifier, end, window_s)
        durations_ms = self._values("Duration", qualifier, end, window_s)
        return WindowMetrics(
            window_s=window_s,
            invocations=invocations,
            errors=errors,
            mean_concurrency=sum(concurrency) / len(concurrency) if concurrency else 0.0,
            max_concurrency=max(concurrency, default=0.0),
            p95_duration_s=max(durations_ms) / 1000 if durations_ms else None,
            p95_source="max per-period Duration (Cloud Monitor has no percentile)",
        )

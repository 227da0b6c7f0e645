"""What every cloud's metric source measures and what its actuator controls (one pair per cloud)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from core.errors import LlmfnError
from functions.cloud.retry import RetryPolicy


class CloudError(LlmfnError, RuntimeError):
    """A cloud API refused a call (not transient, or still failing after the retries)."""

    def __init__(self, operation: str, code: str, message: str) -> None:
        super().__init__(f"{operation} failed: {code}: {message}")
        self.operation = operation
        self.code = code


@dataclass(frozen=True)
class AliasRouting:
    """Where an alias sends traffic: ``primary`` gets 1 - sum(weights), each version in ``weights`` its share."""

    primary: str
    weights: Mapping[str, float] = field(default_factory=dict)
    description: str = ""

    def share(self, version: str) -> float:
        """Fraction of the alias's traffic that ``version`` receives, in [0, 1]."""
        if version == self.primary:
            return 1.0 - sum(self.weights.values())
        return float(self.weights.get(version, 0.0))

    def routed_versions(self) -> list[str]:
        """Versions that receive any traffic."""
        return [v for v in [self.primary, *self.weights] if self.share(v) > 0]

    def as_dict(self) -> dict[str, Any]:
        return {"primary": self.primary, "weights": dict(self.weights), "description": self.description}


@dataclass(frozen=True)
class Capacity:
    """Provisioned capacity of one version: ``requested`` instances, ``ready`` of them warm now."""

    requested: int
    ready: int

    @property
    def warm(self) -> bool:
        """True when something is requested and all of it is warm."""
        return self.requested > 0 and self.ready >= self.requested


@dataclass(frozen=True)
class WindowMetrics:
    """A qualifier's metrics over the last ``window_s`` seconds.

    invocations / errors: counts in the window. mean_concurrency / max_concurrency: concurrent
    executions (requests in flight). p95_duration_s: P95 duration in seconds, or the source's best
    upper stand-in where it has no percentile (``p95_source`` says which), None without requests.
    reserved_utilisation: busy share of provisioned concurrency in [0, 1] where the cloud reports it.
    """

    window_s: float
    invocations: float
    errors: float
    mean_concurrency: float
    max_concurrency: float
    p95_duration_s: float | None
    p95_source: str
    reserved_utilisation: float | None = None

    @property
    def arrival_rate_rps(self) -> float:
        """Invocations per second over the window."""
        return self.invocations / self.window_s

    @property
    def error_rate(self) -> float:
        """Errors / invocations in [0, 1]; 0 when there were no invocations."""
        return self.errors / self.invocations if self.invocations > 0 else 0.0


@dataclass(frozen=True)
class InvokeResult:
    """One direct invocation: ``ok`` when the function ran without error; ``body`` its answer or error."""

    ok: bool
    body: str


class MetricSource(Protocol):
    """Reads a function qualifier's metrics (CloudWatch, Tencent Cloud Monitor)."""

    def window(self, qualifier: str, end: datetime, window_s: float) -> WindowMetrics:
        """Metrics of ``qualifier`` (alias or version) over ``[end - window_s, end]``."""
        ...


class CloudControl(Protocol):
    """Controls one function and its alias: versions, routing, provisioned capacity (the actuator)."""

    function: str
    alias_name: str
    retry: RetryPolicy

    def alias(self) -> AliasRouting: ...

    def set_routing(self, primary: str, weights: Mapping[str, float]) -> None:
        """Point the alias at ``primary`` with ``weights`` for additional versions ({} clears them)."""
        ...

    def versions(self) -> dict[str, str]:
        """Published versions (never ``$LATEST``) and their descriptions."""
        ...

    def set_environment(self, variables: Mapping[str, str]) -> None:
        """Merge ``variables`` into ``$LATEST``'s environment."""
        ...

    def publish_version(self, description: str) -> str:
        """Publish ``$LATEST`` as a new version; returns its number."""
        ...

    def scaling_qualifier(self, routing: AliasRouting) -> str:
        """The qualifier whose provisioned capacity the scaler sets: the alias itself on AWS (its
        Application Auto Scaling target), the alias's version on SCF (no alias-level configs there)."""
        ...

    def capacity(self, version: str) -> Capacity: ...

    def set_capacity(self, version: str, instances: int) -> None:
        """Reserved instances for a qualifier; a no-op when already so. On a version: exactly that many
        (0 releases them). On AWS's alias (the scaler's qualifier): the floor only, i.e. the stack's
        scalable target's MinCapacity, clamped to its MaxCapacity; tracking may add capacity above."""
        ...

    def invoke(
        self, qualifier: str, payload: Mapping[str, Any], asynchronous: bool = False
    ) -> InvokeResult: ...

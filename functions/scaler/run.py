"""One scaler tick: metrics -> ``Observation`` -> the policy -> state written conditionally -> actuation.

Each tick is identified by its end time (``now`` floored to the window). The state document records
the last tick handled, so a re-delivered timer event or a second run started for the same minute
does nothing, and two overlapping runs never both write: the loser of the conditional write re-reads
and stops when the winner has handled the tick (on COS, which has no conditional PUT, the scaler runs
single-flight instead: ``functions.cloud.tencent.state``). While a promotion holds routing weights on the alias
the scaler leaves capacity alone (``llmfn promote`` owns it until the alias is back to one version).
"""

from __future__ import annotations

import math
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from core.contract import PREWARM_EVENT
from functions.cloud.retry import RetryPolicy
from functions.cloud.state import S3StateStore, StateConflict
from functions.cloud.types import Capacity, CloudControl, MetricSource, WindowMetrics
from functions.scaler.settings import ScalerSettings
from scaling.policies import Decision, Observation, Policy, make_policy, policy_config_for

STATE_FORMAT = 1
CONFLICT_ATTEMPTS = 5
PREWARM_PAYLOAD = PREWARM_EVENT


def observation_from(
    metrics: WindowMetrics,
    capacity: Capacity,
    tick_end_s: float,
    utc_offset_hours: float,
    concurrency_per_instance: int,
) -> Observation:
    """The policy's view of one window of cloud metrics.

    arrival rate = invocations / window; in flight = mean concurrent executions; reserved = the
    provisioned instances requested for the scaling qualifier; on-demand = instances the peak
    concurrency needed beyond them (ceil(max concurrency / c) - reserved); reserved utilisation =
    the cloud's figure, else mean concurrency / (reserved x c); P95 = the Duration P95 (seconds).
    """
    reserved = capacity.requested
    needed = math.ceil(metrics.max_concurrency / concurrency_per_instance - 1e-9)
    if metrics.reserved_utilisation is not None:
        utilisation = metrics.reserved_utilisation
    elif reserved:
        utilisation = metrics.mean_concurrency / (reserved * concurrency_per_instance)
    else:
        utilisation = 0.0
    hour = int((tick_end_s + utc_offset_hours * 3600) // 3600) % 24
    return Observation(
        t_s=tick_end_s,
        interval_s=metrics.window_s,
        hour_of_day=hour,
        arrival_rate_rps=metrics.arrival_rate_rps,
        in_flight=metrics.mean_concurrency,
        reserved_instances=reserved,
        on_demand_instances=max(0, needed - reserved),
        reserved_utilisation=min(1.0, max(0.0, utilisation)),
        p95_latency_s=metrics.p95_duration_s,
    )


PREWARM_PATH = "/healthz"
PREWARM_TIMEOUT_S = 10.0


def prewarm_over_http(base_url: str, count: int, timeout_s: float = PREWARM_TIMEOUT_S) -> int:
    """``count`` concurrent ``GET <base_url>/healthz`` (no API key needed; the app answers it at once):
    how an SCF web function is pre-warmed, since it takes no asynchronous invocation; requests the
    platform cannot place start instances. Returns how many answered 200; failures are not errors."""
    import urllib.error
    import urllib.request
    from concurrent.futures import ThreadPoolExecutor

    def one(_: int) -> bool:
        try:
            with urllib.request.urlopen(base_url.rstrip("/") + PREWARM_PATH, timeout=timeout_s) as answer:
                return bool(answer.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    if count <= 0:
        return 0
    with ThreadPoolExecutor(max_workers=min(count, 32)) as pool:
        return sum(pool.map(one, range(count)))


@dataclass
class TickOutcome:
    """What one run did. ``action``: "scaled", "dry-run", "skipped"; ``reason`` says why when skipped."""

    action: str
    tick_end_s: float
    qualifier: str | None = None
    observation: dict[str, Any] | None = None
    decision: dict[str, Any] | None = None
    reason: str = ""
    generation: int | None = None
    retries: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Scaler:
    """The pieces one tick needs; build it with :meth:`from_settings` (or directly in tests)."""

    policy: Policy
    metrics: MetricSource
    control: CloudControl
    store: S3StateStore
    alias: str
    window_s: float = 60.0
    utc_offset_hours: float = 0.0
    concurrency_per_instance: int = 1
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    prewarm_url: str | None = None  # pre-warm over HTTP here (SCF web functions) ...
    prewarm_by_invoke: bool = True  # ... else by asynchronous Invoke (not on SCF web functions)

    @classmethod
    def from_settings(cls, settings: ScalerSettings, retry: RetryPolicy | None = None) -> Scaler:
        retry = retry or RetryPolicy()
        config = policy_config_for(overrides=settings.policy_config)
        target = settings.target
        return cls(
            policy=make_policy(settings.policy, config),
            metrics=target.metrics(retry),
            control=target.control(retry),
            store=target.state_store(
                settings.state_endpoint, settings.state_bucket, settings.state_key, retry
            ),
            alias=target.alias,
            window_s=settings.window_s,
            utc_offset_hours=settings.utc_offset_hours,
            concurrency_per_instance=config.concurrency_per_instance,
            retry=retry,
            prewarm_url=settings.prewarm_url,
            prewarm_by_invoke=target.cloud != "tencent",
        )

    def tick_end(self, now: datetime) -> float:
        """End of the window ``now`` falls in: epoch seconds floored to ``window_s``."""
        return math.floor(now.timestamp() / self.window_s) * self.window_s

    def run_once(self, now: datetime | None = None, dry_run: bool = False) -> TickOutcome:
        """Handle the tick ``now`` belongs to (default: the current time)."""
        tick_end_s = self.tick_end(now or datetime.now(UTC))
        run_id = uuid.uuid4().hex
        for _ in range(CONFLICT_ATTEMPTS):
            stored = self.store.load()
            doc = stored.document or {}
            if doc.get("run_id") == run_id:  # our write landed although its answer was lost
                return self._actuate(doc, tick_end_s)
            if not dry_run and float(doc.get("tick_end_s", -math.inf)) >= tick_end_s:
                return self._outcome("skipped", tick_end_s, reason="tick already handled by another run")
            routing = self.control.alias()
            if routing.weights:
                return self._outcome(
                    "skipped", tick_end_s, reason=f"promotion in progress: {routing.as_dict()}"
                )
            qualifier = self.control.scaling_qualifier(routing)
            capacity = self.control.capacity(qualifier)
            end = datetime.fromtimestamp(tick_end_s, UTC)
            obs = observation_from(
                self.metrics.window(self.alias, end, self.window_s),
                capacity,
                tick_end_s,
                self.utc_offset_hours,
                self.concurrency_per_instance,
            )
            state = doc["state"] if doc.get("policy") == self.policy.name else self.policy.initial_state()
            decision, new_state = self.policy.decide(obs, state)
            if dry_run:
                return self._outcome("dry-run", tick_end_s, qualifier, obs, decision)
            generation = int(doc.get("generation", 0)) + 1
            new_doc = {
                "format": STATE_FORMAT,
                "policy": self.policy.name,
                "state": new_state,
                "tick_end_s": tick_end_s,
                "generation": generation,
                "run_id": run_id,
                "qualifier": qualifier,
                "observation": asdict(obs),
                "decision": asdict(decision),
            }
            try:
                self.store.save(new_doc, stored.etag)
            except StateConflict:
                continue
            return self._actuate(new_doc, tick_end_s)
        raise StateConflict(f"state kept changing under {CONFLICT_ATTEMPTS} attempts of tick {tick_end_s}")

    def _actuate(self, doc: dict[str, Any], tick_end_s: float) -> TickOutcome:
        decision = Decision(**doc["decision"])
        self.control.set_capacity(doc["qualifier"], decision.reserved)
        if self.prewarm_url:
            prewarm_over_http(self.prewarm_url, decision.prewarm)
        elif self.prewarm_by_invoke:
            for _ in range(decision.prewarm):
                self.control.invoke(self.alias, PREWARM_PAYLOAD, asynchronous=True)
        obs = Observation(**doc["observation"])
        return self._outcome("scaled", tick_end_s, doc["qualifier"], obs, decision, doc["generation"])

    def _outcome(
        self,
        action: str,
        tick_end_s: float,
        qualifier: str | None = None,
        obs: Observation | None = None,
        decision: Decision | None = None,
        generation: int | None = None,
        reason: str = "",
    ) -> TickOutcome:
        return TickOutcome(
            action=action,
            tick_end_s=tick_end_s,
            qualifier=qualifier,
            observation=asdict(obs) if obs else None,
            decision=asdict(decision) if decision else None,
            reason=reason,
            generation=generation,
            retries=list(self.retry.retried),
        )

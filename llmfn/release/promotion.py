"""A resumable promotion of a new model revision behind a function alias.

1. Set the revision on ``$LATEST`` (environment ``LLMFN_MODEL_REVISION``) and publish a version whose
   description records it and the version it replaces: ``llmfn model-revision=REV previous=P``.
2. Give the new version provisioned capacity (the old version's amount unless told) and wait until
   all of it is warm: no traffic reaches it before.
3. For each step (percent of traffic): shift the alias weight, wait ``interval_s``, then gate on the
   new version's error rate and P95 and on a smoke request. The 100 % step points the alias at the
   new version with no weights; its gate runs while the old version is still warm.
4. All gates passed: release the old version's capacity (promoted) and hand the new version's over
   to the scaler, its owner from now on (infra/README.md, "One owner per setting"): on SCF the scaler
   takes over this very config (it scales the alias's version); on AWS the scaler owns the alias's
   capacity, so promote releases its own version-level capacity once the alias's is warm. A gate
   failed, a cloud call was refused, or the capacity never became ready: point the alias back at the
   old version with no weights and release the new version's capacity (rolled back; the alias is
   exactly as before).

Nothing is kept outside the cloud: a re-run with the same revision finds its version by description,
reads where the alias is, and continues from there (a step whose weight the alias already has is
gated again, since its gate may not have run).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from core.contract import DESCRIPTION_PREFIX
from core.contract import ENV_MODEL_REVISION as REVISION_VARIABLE
from core.errors import InputError, LlmfnError
from core.revision import check_revision
from functions.cloud.types import CloudControl, CloudError, MetricSource
from llmfn.release.gates import GateResult, GateThresholds, SmokeCheck, SmokeResult, evaluate


class PromotionError(InputError):
    """The promotion cannot start or go on as asked (the message says why and what to do)."""


def version_description(revision: str, previous: str) -> str:
    """The description a promoted version carries: it names its revision and the version it replaces."""
    return f"{DESCRIPTION_PREFIX}{revision} previous={previous}"


def parse_description(description: str) -> tuple[str, str | None] | None:
    """``(revision, previous version)`` from a version's description, None when it is not ours."""
    fields = dict(part.split("=", 1) for part in description.split() if "=" in part)
    if not description.startswith(DESCRIPTION_PREFIX):
        return None
    return fields["model-revision"], fields.get("previous")


def parse_steps(text: str) -> tuple[int, ...]:
    """``"10,50,100"`` -> (10, 50, 100): increasing percentages in (0, 100], ending at 100."""
    try:
        steps = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise InputError(
            f"must be comma-separated integers like 10,50,100, got {text!r}", field="steps", value=text
        ) from exc
    if (
        not steps
        or steps[-1] != 100
        or any(not 0 < s <= 100 for s in steps)
        or list(steps) != sorted(set(steps))
    ):
        raise InputError(
            f"must increase within 1..100 and end at 100, got {text!r}", field="steps", value=text
        )
    return steps


@dataclass(frozen=True)
class PromotionPlan:
    """model_revision: what to promote. steps: percent of traffic per step, ending at 100.
    interval_s: wait after each shift before its gate, seconds. metrics_window_s: the gate's metric
    window, seconds (a multiple of 60). canary_capacity: provisioned instances for the new version
    (None: as many as the old version has, at least 1). warm_timeout_s / poll_s: how long to wait for
    that capacity and how often to look, seconds."""

    model_revision: str
    steps: tuple[int, ...] = (10, 50, 100)
    interval_s: float = 300.0
    metrics_window_s: float = 300.0
    thresholds: GateThresholds = field(default_factory=GateThresholds)
    canary_capacity: int | None = None
    warm_timeout_s: float = 900.0
    poll_s: float = 5.0

    def __post_init__(self) -> None:
        check_revision(self.model_revision)
        if self.interval_s < 0:
            raise InputError(
                f"must be >= 0 seconds, got {self.interval_s}", field="interval_s", value=self.interval_s
            )
        if self.canary_capacity is not None and self.canary_capacity < 1:
            raise InputError(
                f"must be >= 1, got {self.canary_capacity}",
                field="canary_capacity",
                value=self.canary_capacity,
            )


@dataclass
class PromotionReport:
    """The JSON report. status: "promoted", "rolled-back" or "already-promoted"."""

    status: str
    model_revision: str
    function: str
    alias: str
    new_version: str | None = None
    previous_version: str | None = None
    resumed: bool = False
    reason: str = ""
    alias_before: dict[str, Any] | None = None
    alias_after: dict[str, Any] | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    retries: list[str] = field(default_factory=list)
    deleted_versions: list[str] = field(default_factory=list)  # SCF: old versions removed after promoting
    released: dict[str, list[str]] = field(default_factory=dict)  # Managed Instances: floors zeroed, deleted

    @property
    def succeeded(self) -> bool:
        return self.status != "rolled-back"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def release_managed_instances(control: CloudControl, rollback_target: str) -> dict[str, list[str]]:
    """Lambda Managed Instances only: every version the alias does not route to loses its floor, and
    the versions older than ``rollback_target`` (the version a rollback returns to) are deleted, so
    no version bills GPU instances unseen and the capacity provider's 100-version quota is never
    reached (README.md, "GPU functions on AWS"). Other clouds: nothing (``{}``)."""
    from functions.cloud.aws.managed_instances import ManagedInstancesControl

    if not isinstance(control, ManagedInstancesControl):
        return {}
    done = control.release_unrouted(rollback_target)
    return {"floors_released": list(done.released), "deleted": list(done.deleted)}


class _Rollback(LlmfnError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Promotion:
    """Runs a :class:`PromotionPlan` against one function alias; ``sleep`` / ``now`` are injectable."""

    control: CloudControl
    metrics: MetricSource
    plan: PromotionPlan
    smoke: SmokeCheck = field(default_factory=SmokeCheck)
    sleep: Callable[[float], None] = time.sleep
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    _function_urls: dict[str, str] = field(default_factory=dict, init=False, repr=False)  # SCF canaries

    def _find_version(self) -> tuple[str, str | None] | None:
        """The newest version published for this revision and the version it replaces."""
        ours = []
        for version, description in self.control.versions().items():
            parsed = parse_description(description)
            if parsed and parsed[0] == self.plan.model_revision:
                ours.append((int(version), version, parsed[1]))
        return (max(ours)[1], max(ours)[2]) if ours else None

    def run(self) -> PromotionReport:
        routing = self.control.alias()
        report = PromotionReport(
            status="promoted",
            model_revision=self.plan.model_revision,
            function=self.control.function,
            alias=self.control.alias_name,
            alias_before=routing.as_dict(),
        )
        found = self._find_version()
        if found is not None:
            new, previous = found
            report.resumed = previous is not None  # ours from an earlier run (the stack's has no previous=)
            if previous is None and routing.primary != new:
                previous = routing.primary  # published by `pulumi up`: it replaces what the alias serves
        else:
            new, previous = None, routing.primary
        stray = [v for v in routing.weights if v != new]
        if stray:
            raise PromotionError(
                f"alias {self.control.alias_name} also routes to version(s) {', '.join(stray)}, which this "
                f"promotion of {self.plan.model_revision} did not create; finish or roll back that one first"
            )
        if new is not None and routing.primary == new and not routing.weights:
            if previous is None or self.control.capacity(previous).requested == 0:
                report.status, report.new_version, report.previous_version = "already-promoted", new, previous
                return self._finish(report)
        elif new is not None and routing.primary != previous:
            raise PromotionError(
                f"version {new} of {self.plan.model_revision} replaces version {previous}, but alias "
                f"{self.control.alias_name} now points at {routing.primary}; promote a new revision instead"
            )
        if new is None:
            self.control.set_environment({REVISION_VARIABLE: self.plan.model_revision})
            new = self.control.publish_version(version_description(self.plan.model_revision, routing.primary))
        assert previous is not None
        report.new_version, report.previous_version = new, previous
        try:
            self._warm(new, previous)
            for percent in self.plan.steps:
                current = self.control.alias().share(new)
                if percent / 100 < current - 1e-9:
                    continue  # passed before the job was interrupted
                if percent / 100 > current + 1e-9:
                    self._shift(new, previous, percent)
                self.sleep(self.plan.interval_s)
                gate = self._gate(new)
                report.steps.append({"percent": percent, "gate": gate.as_dict()})
                if not gate.passed:
                    raise _Rollback(f"gate at {percent} % failed: {'; '.join(gate.reasons)}")
        except (_Rollback, CloudError) as failure:
            # a cloud call refused mid-way (metrics, capacity) must not leave the canary routed either
            reason = failure.reason if isinstance(failure, _Rollback) else f"cloud call failed: {failure}"
            self.control.set_routing(previous, {})
            self.control.set_capacity(new, 0)
            report.status, report.reason = "rolled-back", reason
            report.released = release_managed_instances(self.control, previous)
            return self._finish(report)
        self.control.set_capacity(previous, 0)
        self._hand_over(new)
        report.released = release_managed_instances(self.control, previous)
        if not report.released:  # Managed Instances pruned their versions above; SCF prunes here
            report.deleted_versions = self._delete_old_versions(previous)
        return self._finish(report)

    def _hand_over(self, new: str) -> None:
        """Leave the new version's reserved capacity to the scaler's qualifier (see step 4)."""
        qualifier = self.control.scaling_qualifier(self.control.alias())
        if qualifier == new:
            return  # the scaler scales this version's own config from now on
        polls = max(1, math.ceil(self.plan.warm_timeout_s / max(self.plan.poll_s, 1e-6)))
        for _ in range(polls):
            owned = self.control.capacity(qualifier)
            if owned.requested == 0 or owned.warm:
                break
            self.sleep(self.plan.poll_s)
        self.control.set_capacity(new, 0)

    def _warm(self, version: str, previous: str) -> None:
        """Provision ``version`` and wait until every instance is warm (rollback on timeout)."""
        wanted = self.plan.canary_capacity or max(1, self.control.capacity(previous).requested)
        self.control.set_capacity(version, max(wanted, self.control.capacity(version).requested))
        self._wait_warm(version)

    def _wait_warm(self, version: str) -> None:
        polls = max(1, math.ceil(self.plan.warm_timeout_s / max(self.plan.poll_s, 1e-6)))
        for _ in range(polls):
            if self.control.capacity(version).warm:
                return
            self.sleep(self.plan.poll_s)
        if not self.control.capacity(version).warm:
            raise _Rollback(
                f"provisioned capacity of version {version} not ready after {self.plan.warm_timeout_s} s"
            )

    def _shift(self, new: str, previous: str, percent: int) -> None:
        """Route ``percent`` % to ``new`` (100: the alias points at it), only once it is warm."""
        self._wait_warm(new)
        if percent == 100:
            self.control.set_routing(new, {})
        else:
            self.control.set_routing(previous, {new: percent / 100})

    def _gate(self, version: str) -> GateResult:
        window = max(60.0, math.ceil(self.plan.metrics_window_s / 60) * 60)
        metrics = self.metrics.window(version, self.now(), window)
        return evaluate(metrics, self._smoke(version), self.plan.thresholds)

    def _smoke(self, version: str) -> SmokeResult:
        """The gate's smoke request; on SCF over HTTP to the version's own function URL."""
        if not hasattr(self.control, "function_url"):
            return self.smoke.run(self.control, version)
        return self._smoke_over_function_url(version)

    # ----- SCF (Tencent) only -----
    def _smoke_over_function_url(self, version: str) -> SmokeResult:
        """SCF web functions answer HTTP, not Invoke (no asynchronous invocation; the stack's function is a
        web function), and the stack's URL is the alias's, which mostly reaches the old version during a
        canary. So promote binds a function URL to the new version itself ("URL 绑定在别名或者版本维度",
        doc 583/100227) and smokes it with the API key; :meth:`_finish` deletes that URL."""
        if version not in self._function_urls:
            try:
                self._function_urls[version] = self.control.function_url(version)  # type: ignore[attr-defined]
            except CloudError as error:
                return SmokeResult(False, "http", 0.0, f"no function URL for version {version}: {error}")
        smoke = dataclasses.replace(self.smoke, endpoint_url=self._function_urls[version])
        return smoke.run(self.control, version)

    def _delete_old_versions(self, rollback_target: str) -> list[str]:
        """After a promotion: delete the versions older than the rollback target that no alias routes to
        and that hold no provisioned concurrency (SCF only; the stack retains every version it replaces,
        so without this they pile up against the function's version limit, error
        ``LimitExceeded.FunctionVersions``). Returns the deleted versions."""
        if not hasattr(self.control, "delete_version"):
            return []
        routed = self.control.routed_versions()  # type: ignore[attr-defined]
        deleted = []
        for version in sorted(self.control.versions(), key=int):
            if int(version) >= int(rollback_target) or version in routed:
                continue
            if self.control.capacity(version).requested:
                continue
            self.control.delete_version(version)  # type: ignore[attr-defined]
            deleted.append(version)
        return deleted

    def _finish(self, report: PromotionReport) -> PromotionReport:
        if report.new_version is not None and hasattr(self.control, "delete_function_url"):
            self.control.delete_function_url(report.new_version)  # the canary's URL (SCF)
        report.alias_after = self.control.alias().as_dict()
        report.retries = list(self.control.retry.retried)
        return report

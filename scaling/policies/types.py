"""The policy contract shared by the simulator, the cloud scaler function and ``llmfn dev``.

A capacity policy decides only what a user controls on a serverless GPU platform: how many
reserved (provisioned) instances to keep, how many on-demand instances to start ahead of load
(pre-warm requests), how many on-demand instances the function may run at most, and the admission
rate. What the platform does by itself (starting an on-demand instance for a request that finds no
free slot, keeping an idle one warm, billing, quotas, cold-start duration) is provider
configuration of the simulator or of the real cloud, never the policy's.

Calling convention (the same in all three callers)::

    policy = make_policy("hybrid", PolicyConfig(...))
    state = policy.initial_state()           # JSON-able dict; store it between invocations
    every policy.interval_s seconds (or whenever the caller ticks):
        obs = Observation(t_s=..., interval_s=..., ...)   # measured over the last interval
        decision, state = policy.decide(obs, state)
        actuate(decision)                    # set reserved count, start pre-warms, set bucket rate

Rules a policy keeps:

- **Pure**: ``decide`` reads only ``obs``, ``state`` and its own immutable config; no clock, no I/O,
  no randomness. Same inputs, same outputs. ``state`` is never mutated in place: a new dict is
  returned.
- **Serialisable state**: ``State`` is a ``dict`` of JSON values (numbers, strings, bools, None,
  lists, nested dicts) so ``json.dumps(state)`` can go to S3 / COS between scaler invocations and
  ``json.loads`` gives it back unchanged in meaning.
- **Any tick length**: rates and means in an ``Observation`` cover ``interval_s`` seconds; policies
  with time windows (target tracking's datapoints, KPA's 60 s / 6 s windows, hybrid's idle timer)
  accumulate ``interval_s`` rather than counting calls. ``Policy.interval_s`` is the tick the policy
  was designed for (60 s for the cloud policies, 2 s for KPA); callers should tick at that period or
  faster.
- **Raw count, shared bounds**: a policy computes its raw desired reserved count; the wrapper that
  :func:`scaling.policies.make_policy` puts around every policy then applies, identically for all,
  the ``[min_reserved, max_reserved]`` bounds and the Ray-Serve-style up/down delays (see
  :mod:`scaling.policies.wrappers`).

Units: seconds, requests per second (req/s), instance counts, fractions in [0, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol, runtime_checkable

from pydantic import AliasChoices, Field, model_validator

from core.errors import ScalingError
from core.validated import FrozenModel
from scaling.bounds import ReservedBounds
from scaling.plan import DEFAULT_P95_LATENCY_S

State = dict[str, Any]
"""A policy's carried state: a dict of JSON values (see the module docstring)."""


@dataclass(frozen=True)
class Observation:
    """What a metric source can measure at the end of one tick of ``interval_s`` seconds.

    Cloud sources: CloudWatch (``ConcurrentExecutions``, ``ProvisionedConcurrencyUtilization``,
    ``Invocations`` / 60 for the rate, ``Duration`` p95) or Tencent Cloud Monitor (SCF
    ``ConcurrentExecutions``, ``Invocation``, ``Duration``); the local runtime reads its own pool.

    t_s: end of the interval, seconds on the caller's clock (epoch or simulation time).
    interval_s: length of the interval the rates and means below cover, seconds (> 0).
    hour_of_day: 0-23, in the time zone of the hybrid policy's rate profile.
    arrival_rate_rps: requests that arrived during the interval / interval_s (admitted or not).
    in_flight: mean concurrent requests in the system (in service + queued) over the interval.
    reserved_instances: reserved (provisioned) instances now, ready or still warming.
    on_demand_instances: on-demand instances alive now (busy, idle-warm or warming).
    reserved_utilisation: busy share of reserved concurrency over the interval, in [0, 1]
        (AWS ``ProvisionedConcurrencyUtilization``); 0 when nothing is reserved.
    queue_length: requests waiting for a free slot now.
    cpu_fraction / mem_fraction: busy fractions of the instances' CPU / memory in [0, 1] where the
        source has them (the seed's load score); ``None`` when it does not.
    p95_latency_s: P95 time to first token over the interval, seconds; ``None`` if no request.
    """

    t_s: float
    interval_s: float
    hour_of_day: int
    arrival_rate_rps: float
    in_flight: float
    reserved_instances: int
    on_demand_instances: int
    reserved_utilisation: float = 0.0
    queue_length: int = 0
    cpu_fraction: float | None = None
    mem_fraction: float | None = None
    p95_latency_s: float | None = None

    def __post_init__(self) -> None:
        if not (self.interval_s > 0 and math.isfinite(self.interval_s)):
            raise ScalingError(f"Observation.interval_s must be > 0 seconds, got {self.interval_s!r}")
        if not 0 <= self.hour_of_day <= 23:
            raise ScalingError(f"Observation.hour_of_day must be 0-23, got {self.hour_of_day!r}")
        for name in ("arrival_rate_rps", "in_flight", "reserved_utilisation"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise ScalingError(f"Observation.{name} must be a finite number >= 0, got {value!r}")
        if self.reserved_instances < 0 or self.on_demand_instances < 0 or self.queue_length < 0:
            raise ScalingError("Observation instance counts and queue_length must be >= 0")

    @property
    def total_instances(self) -> int:
        """Reserved plus on-demand instances alive now."""
        return self.reserved_instances + self.on_demand_instances


@dataclass(frozen=True)
class Decision:
    """What the caller actuates after a tick.

    reserved: desired reserved (provisioned) instance count, >= 0.
    prewarm: pre-warm requests to send now, >= 0; each keeps one on-demand instance warm ahead
        of predicted load: the platform routes it to an idle warm instance (renewing its keep-alive)
        or starts a new one. Sending N every tick holds N on-demand instances warm.
    max_on_demand: cap on on-demand instances the function may run (the function's concurrency
        limit a user sets); ``None`` = only the platform quota applies; 0 = no on-demand bursts.
    admission_rps: token-bucket refill rate for admission, req/s; ``None`` = admit everything.
    """

    reserved: int
    prewarm: int = 0
    max_on_demand: int | None = None
    admission_rps: float | None = None

    def __post_init__(self) -> None:
        if self.reserved < 0 or self.prewarm < 0:
            raise ScalingError(
                f"Decision counts must be >= 0, got reserved={self.reserved} prewarm={self.prewarm}"
            )
        if self.max_on_demand is not None and self.max_on_demand < 0:
            raise ScalingError(f"Decision.max_on_demand must be >= 0 or None, got {self.max_on_demand!r}")
        if self.admission_rps is not None and not self.admission_rps > 0:
            raise ScalingError(f"Decision.admission_rps must be > 0 or None, got {self.admission_rps!r}")


@runtime_checkable
class Policy(Protocol):
    """A capacity policy: pure ``decide(obs, state) -> (decision, new_state)``."""

    name: str
    interval_s: float

    def initial_state(self) -> State:
        """The state before the first observation (JSON-able)."""
        ...

    def decide(self, obs: Observation, state: State) -> tuple[Decision, State]:
        """The decision for this tick and the state to pass to the next call."""
        ...


# --------------------------------------------------------------------------- configuration


class ReactiveConfig(FrozenModel):
    """The seed's load-score policy, its exact constants (docs/sources.md, seeds/000, ``calculate_load`` /
    ``scale_decision``): load = 0.4 cpu + 0.3 mem + 0.3 rps, EMA alpha 0.7, up above 0.8 to
    ceil(N x 2^((load - 0.8) x 10)), down below 0.3 to max(min, floor(sqrt N)), min 1, max 50.

    rps_capacity_per_instance: req/s one instance sustains, to normalise the rps term; default
    2.3 / 0.38 s = 6.05 (batch 8 gives 2.3x the throughput of one ~380 ms request, docs/sources.md).
    min_reserved / max_reserved: the seed's MIN_INSTANCES / MAX_INSTANCES, bounds of this policy's
    reserved count (the project's one name for them, see :class:`PolicyConfig`); the seed's names
    ``min_instances`` / ``max_instances`` are still read from a policy config file.
    """

    cpu_weight: float = 0.4
    mem_weight: float = 0.3
    rps_weight: float = 0.3
    alpha: float = 0.7
    scale_up_threshold: float = 0.8
    scale_down_threshold: float = 0.3
    min_reserved: int = Field(1, validation_alias=AliasChoices("min_reserved", "min_instances"))
    max_reserved: int = Field(50, validation_alias=AliasChoices("max_reserved", "max_instances"))
    rps_capacity_per_instance: float = 2.3 / 0.38


class TargetTrackingConfig(FrozenModel):
    """AWS Application Auto Scaling target tracking on ``ProvisionedConcurrencyUtilization``.

    target 0.7 is AWS's example for Lambda; the scale-in alarm fires below 90 % of the target (63 %);
    AWS's generated alarms need 3 one-minute datapoints to scale out and 15 to scale in.
    desired = ceil(current x utilisation / target). min_capacity 1 (utilisation of 0 provisioned
    instances is undefined, so tracking cannot start from zero).
    """

    target_utilisation: float = 0.7
    scale_in_ratio: float = 0.9
    datapoint_s: float = 60.0
    scale_out_datapoints: int = 3
    scale_in_datapoints: int = 15
    min_capacity: int = 1


class KpaConfig(FrozenModel):
    """Knative Pod Autoscaler defaults (config-autoscaler): concurrency target = 70 % of the
    container concurrency, stable window 60 s, panic window 6 s (10 %), panic at 200 % of current
    capacity, scale-to-zero grace 30 s, tick 2 s, max scale-up rate 1000x, max scale-down rate 2x.
    KPA pods are the only capacity (no platform on-demand bursts): max_on_demand = 0.
    """

    target_utilisation: float = 0.7
    stable_window_s: float = 60.0
    panic_window_s: float = 6.0
    panic_threshold: float = 2.0
    scale_to_zero_grace_s: float = 30.0
    tick_s: float = 2.0
    max_scale_up_rate: float = 1000.0
    max_scale_down_rate: float = 2.0


class HybridConfig(FrozenModel):
    """Ours: Little's-law reserved capacity per hour of day (``scaling.plan.hourly_schedule``),
    on-demand bursts, a reactive correction, predictive pre-warm and scale to zero when idle.

    rates_by_hour: 24 mean arrival rates (req/s), hour 0 first, in the observations' time zone;
        ``None`` = no hourly base (reserved comes from the correction only).
    p95_latency_s: time in system at P95 for the Little's-law rule, seconds; default 2 x 0.38 s:
        the ~380 ms typical request (docs/sources.md) slowed ~2x by batching.
    headroom: margin over the Little's-law concurrency (plan.py's default 0.2).
    min_utilisation: reserve an instance only when its expected busy share exceeds this
        (``ReservedRule.min_utilisation``: 0 = plain ceil; the provider's break-even share, e.g.
        Lambda 0.6, SCF 1.0, makes reserved capacity pay for itself).
    correction_alpha: EMA weight of the newest in-flight measurement for the reactive correction.
    correction_after_s: the measured need must differ from the hourly base this long before the
        correction replaces it (bursts shorter than this go to on-demand instances).
    prewarm_margin_s: pre-warm this long before the predicted load on top of the cold start
        (docs/sources.md, seeds/002: "pre-warm 30 s before predicted load").
    idle_to_zero_s: no arrivals for this long -> reserved 0 until traffic returns (docs/sources.md, seeds/002:
        silent recycle reaches zero after 10 min idle; 300 s is its "minimal" step).
    warm_pool_lookback_s: pre-warm keeps the live instance count at the largest one observed over
        this many seconds, so a burst like the last one finds warm instances even after the
        platform reaped idle ones (free where idle on-demand time is not billed; each re-start
        bills its initialisation where the provider bills it). 0 disables it.
    warm_pool_headroom: margin over that largest count (0.2 = +20 %).
    lmi_floor: the reserved count is a Lambda Managed Instances floor (MinExecutionEnvironments):
        the hourly base is ``scaling.plan.lmi_floor_schedule`` (Little's law and at least what keeps
        the next five minutes within one doubling), and since pre-warm invokes add no capacity there,
        pre-warming raises the floor to the forecast instead (no warm pool: the platform's own
        environments are not bursts to copy).
    burst_rates_by_hour: each hour's highest 5-minute arrival rate (req/s) for the doubling term;
        ``None`` = the hourly means.
    break_even_by_hour: a cap on each hour's base from the measured busy distribution
        (``scaling.plan.break_even_counts``: instances busy more than ``min_utilisation`` of the
        hour); ``None`` = none (Little's law's fluid busy share only).
    """

    rates_by_hour: tuple[float, ...] | None = None
    p95_latency_s: float = DEFAULT_P95_LATENCY_S
    headroom: float = 0.2
    min_utilisation: float = 0.0
    correction_alpha: float = 0.3
    correction_after_s: float = 180.0
    prewarm_margin_s: float = 30.0
    idle_to_zero_s: float = 300.0
    warm_pool_lookback_s: float = 3600.0
    warm_pool_headroom: float = 0.2
    lmi_floor: bool = False
    burst_rates_by_hour: tuple[float, ...] | None = None
    break_even_by_hour: tuple[int, ...] | None = None


class PolicyConfig(FrozenModel):
    """Configuration shared by every policy, plus one section per policy family.

    concurrency_per_instance: concurrent requests one instance serves (c); default 8, the batch
        docs/sources.md quotes (batch 8 = 2.3x throughput). Lambda instances serve 1.
    cold_start_s: seconds from asking for an instance to it serving; default 2.8 s, the staged
        preload's figure (docs/sources.md: seeds/000; 5.4 s = 1.8 + 0.9 + 2.1 + 0.6 without it, seeds/001).
    min_reserved / max_reserved: bounds applied to every policy's raw reserved count (50 = the
        seed's MAX_INSTANCES). The project's one name for this concept (the stack's
        ``llmfn:minInstances`` / ``llmfn:maxInstances`` and ``llmfn plan --min`` / ``--max`` map to
        it): "reserved" says the bound is on reserved capacity only, while ``max_instances`` is the
        quota on all instances, reserved and on-demand (``scaling.providers.Provider``).
    upscale_delay_s / downscale_delay_s: a raised / lowered count must be wanted this long before it
        is applied (Ray Serve's delays); 0 = apply at once (each policy has its own timing).
    fixed_instances: the fixed pool's size (the simulator searches the smallest meeting the SLO).
    """

    concurrency_per_instance: int = 8
    cold_start_s: float = 2.8
    min_reserved: int = 0
    max_reserved: int = 50
    upscale_delay_s: float = 0.0
    downscale_delay_s: float = 0.0
    fixed_instances: int = 1
    reactive: ReactiveConfig = ReactiveConfig()
    target_tracking: TargetTrackingConfig = TargetTrackingConfig()
    kpa: KpaConfig = KpaConfig()
    hybrid: HybridConfig = HybridConfig()

    @model_validator(mode="after")
    def _check(self) -> PolicyConfig:
        if self.concurrency_per_instance < 1:
            raise ScalingError(
                f"PolicyConfig.concurrency_per_instance must be >= 1, got {self.concurrency_per_instance!r}"
            )
        if not (self.cold_start_s >= 0 and math.isfinite(self.cold_start_s)):
            raise ScalingError(f"PolicyConfig.cold_start_s must be >= 0 seconds, got {self.cold_start_s!r}")
        self.bounds  # noqa: B018 (checks min_reserved / max_reserved: scaling.bounds)
        if self.upscale_delay_s < 0 or self.downscale_delay_s < 0:
            raise ScalingError("PolicyConfig.upscale_delay_s / downscale_delay_s must be >= 0 seconds")
        if self.fixed_instances < 0:
            raise ScalingError(f"PolicyConfig.fixed_instances must be >= 0, got {self.fixed_instances!r}")
        rates = self.hybrid.rates_by_hour
        if rates is not None and (len(rates) != 24 or any(not (r >= 0 and math.isfinite(r)) for r in rates)):
            raise ScalingError(
                "PolicyConfig.hybrid.rates_by_hour must be 24 finite rates >= 0 (req/s), hour 0 first"
            )
        return self

    @cached_property
    def bounds(self) -> ReservedBounds:
        """``min_reserved`` / ``max_reserved`` as the one bounds type (checked, with ``clamp``)."""
        return ReservedBounds(self.min_reserved, self.max_reserved)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (tuples become lists)."""
        return self.model_dump(mode="json")

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> PolicyConfig:
        """Build from a JSON / YAML mapping; unknown keys raise a ScalingError naming them."""
        top_names = set(cls.model_fields)
        for key, value in data.items():
            if key not in top_names:
                raise ScalingError(f"unknown policy config key {key!r}; allowed: {sorted(top_names)}")
            section = _SECTIONS.get(key)
            if section is not None:
                allowed = set(section.model_fields)
                bad = set(value) - allowed - _former_names(section)
                if bad:
                    raise ScalingError(
                        f"unknown key(s) {sorted(bad)} in policy config {key!r}; allowed: {sorted(allowed)}"
                    )
        return cls.from_data(data)


def _former_names(section: type[FrozenModel]) -> set[str]:
    """Keys a section still reads under an earlier name (its fields' ``AliasChoices``)."""
    names: set[str] = set()
    for info in section.model_fields.values():
        if isinstance(info.validation_alias, AliasChoices):
            names.update(c for c in info.validation_alias.choices if isinstance(c, str))
    return names


_SECTIONS: dict[str, type[FrozenModel]] = {
    "reactive": ReactiveConfig,
    "target_tracking": TargetTrackingConfig,
    "kpa": KpaConfig,
    "hybrid": HybridConfig,
}

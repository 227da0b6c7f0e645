"""The hybrid policy (ours): hourly Little's-law reserved base + reactive correction + predictive
pre-warm + scale to zero when idle; bursts above it go to the platform's on-demand instances.

- **Base**: ``scaling.plan.hourly_schedule(rates_by_hour, rule)`` for the observation's hour, the
  very schedule ``llmfn plan`` prints and ``infra/`` deploys as crons. It is raised ``lead`` seconds
  before an hour whose count is higher (lead = cold start + pre-warm margin), so reserved instances
  are warm when the hour starts; it is lowered at the hour.
- **Reactive correction**: when the measured concurrency needs more reserved instances than the
  base, or fewer, for ``correction_after_s`` seconds in a row (on the same side), the
  profile is off today: reserved follows an EMA of the measured need instead. Shorter bursts stay
  on on-demand instances. Only instances busier than ``min_utilisation`` count (the provider's
  break-even share), so reserved capacity is bought only where it pays for itself: with bursty
  load the mean in flight overstates that, so when the reserved instances' measured busy share
  is below ``min_utilisation`` the measured need is one fewer than those reserved.
- **Pre-warm**: the arrival rate predicted ``lead`` seconds ahead (the current rate plus its trend,
  and never below the profile's rate for that hour) times the rule's P95 time in system gives the
  instances needed then (Little's law). Bursts shorter than a tick are invisible in mean rates, so
  the target is also never below the most instances seen live over ``warm_pool_lookback_s`` when
  the platform had to start them beyond the policy's own target (bursts, not its pre-warms). The
  on-demand part of that target is held warm with pre-warm requests every tick.
- **On Lambda Managed Instances** (``lmi_floor``): the base is the LMI floor (Little's law and the
  doubling term, ``scaling.plan.lmi_floor_schedule``); pre-warm invokes add no capacity there, so
  the forecast raises the floor itself and no pre-warm is sent; as scaling from zero takes minutes
  there, idleness lowers the floor to zero only in hours whose base is zero.
- **Scale to zero**: no arrivals and nothing in flight for ``idle_to_zero_s`` -> reserved 0 and no
  pre-warm, whatever the hour's base, until traffic returns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from scaling.plan import HOURS_PER_DAY, ReservedRule, hourly_schedule, instances_for_load, lmi_floor_schedule
from scaling.policies.baselines import CLOUD_TICK_S, recent_samples
from scaling.policies.types import Decision, Observation, PolicyConfig, State

SECONDS_PER_HOUR = 3600.0


def hybrid_rule(config: PolicyConfig) -> ReservedRule:
    """The Little's-law rule the hybrid policy (and ``llmfn plan`` with the same config) uses."""
    return ReservedRule(
        p95_latency_s=config.hybrid.p95_latency_s,
        concurrency_per_instance=config.concurrency_per_instance,
        headroom=config.hybrid.headroom,
        min_reserved=config.min_reserved,
        max_reserved=config.max_reserved,
        min_utilisation=config.hybrid.min_utilisation,
    )


def hybrid_schedule(config: PolicyConfig) -> list[int]:
    """Reserved instances per hour of day under ``config`` (all zeros without a rate profile)."""
    rates = config.hybrid.rates_by_hour
    if rates is None:
        return [config.min_reserved] * HOURS_PER_DAY
    if config.hybrid.lmi_floor:
        return lmi_floor_schedule(rates, hybrid_rule(config), config.hybrid.burst_rates_by_hour)
    schedule = hourly_schedule(rates, hybrid_rule(config))
    cap = config.hybrid.break_even_by_hour
    if cap is None:
        return schedule
    bounds = config.bounds
    return [bounds.clamp(min(n, limit)) for n, limit in zip(schedule, cap, strict=True)]


@dataclass(frozen=True)
class Hybrid:
    """See the module docstring. ``t_s mod 3600`` must be the seconds into the observed hour (true
    for epoch seconds and for the simulator's clock). State: ``{"need_ema", "over_s"`` (signed
    seconds above / below the base), ``"idle_s",
    "prev_rate"}``."""

    config: PolicyConfig
    name: str = "hybrid"
    interval_s: float = CLOUD_TICK_S
    schedule: tuple[int, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "schedule", tuple(hybrid_schedule(self.config)))

    @property
    def lead_s(self) -> float:
        """How far ahead pre-warm and the hourly base look: cold start + margin, seconds."""
        return self.config.cold_start_s + self.config.hybrid.prewarm_margin_s

    def initial_state(self) -> State:
        return {"need_ema": 0.0, "over_s": 0.0, "idle_s": 0.0, "prev_rate": None, "seen": [], "target": 0}

    def _instances_for(self, concurrency: float, min_utilisation: float = 0.0) -> int:
        """Instances for a concurrency (requests) with the rule's headroom, counting only those
        busier than ``min_utilisation`` (see ``ReservedRule``)."""
        hc = self.config.hybrid
        return instances_for_load(
            concurrency * (1 + hc.headroom) / self.config.concurrency_per_instance, min_utilisation
        )

    def decide(self, obs: Observation, state: State) -> tuple[Decision, State]:
        hc = self.config.hybrid
        lead = self.lead_s
        hour_ahead = (
            int(obs.hour_of_day + (obs.t_s % SECONDS_PER_HOUR + lead) // SECONDS_PER_HOUR) % HOURS_PER_DAY
        )
        base = max(self.schedule[obs.hour_of_day], self.schedule[hour_ahead])

        need_now = self._instances_for(obs.in_flight, hc.min_utilisation)
        if (
            0 < hc.min_utilisation < 1
            and obs.reserved_instances > 0
            and obs.reserved_utilisation < hc.min_utilisation
        ):
            # bursty load: the mean in flight says keep them, but the reserved instances were busy
            # less than their break-even share; the least busy of them does not pay: one fewer
            need_now = min(need_now, obs.reserved_instances - 1)
        need_ema = hc.correction_alpha * need_now + (1 - hc.correction_alpha) * float(state["need_ema"])
        # the measurement disagrees with the hourly base (either way) for long enough: follow it
        # signed: seconds above (> 0) or below (< 0) the base in a row; a flip of side restarts it,
        # so bursty load that swings around the base does not count as a lasting disagreement
        prev = float(state["over_s"])
        if need_now > base:
            off_s = max(prev, 0.0) + obs.interval_s
        elif need_now < base:
            off_s = min(prev, 0.0) - obs.interval_s
        else:
            off_s = 0.0
        reserved = math.ceil(need_ema - 1e-9) if abs(off_s) >= hc.correction_after_s else base
        if hc.break_even_by_hour is not None:  # only instances whose measured busy share pays
            reserved = min(reserved, max(base, hc.break_even_by_hour[obs.hour_of_day]))

        idle = obs.arrival_rate_rps == 0 and obs.in_flight == 0
        idle_s = float(state["idle_s"]) + obs.interval_s if idle else 0.0
        prev_rate = state["prev_rate"]
        # live instances beyond the last target were started by the platform for bursts
        burst = obs.total_instances if obs.total_instances > int(state["target"]) else 0
        seen = recent_samples([*state["seen"], [obs.interval_s, burst]], hc.warm_pool_lookback_s)
        new_state = {
            "need_ema": need_ema,
            "over_s": off_s,
            "idle_s": idle_s,
            "prev_rate": obs.arrival_rate_rps,
            "seen": seen,
            "target": 0,
        }
        # on LMI, coming back from zero takes minutes: only an hour forecast empty goes to zero
        if idle_s >= hc.idle_to_zero_s and not (hc.lmi_floor and base > 0):
            return Decision(reserved=0), new_state

        trend = 0.0 if prev_rate is None else (obs.arrival_rate_rps - float(prev_rate)) / obs.interval_s
        predicted_rps = max(0.0, obs.arrival_rate_rps + trend * lead)
        if hc.rates_by_hour is not None and not hc.lmi_floor:
            predicted_rps = max(predicted_rps, hc.rates_by_hour[hour_ahead])
        needed_then = self._instances_for(predicted_rps * hc.p95_latency_s)
        if hc.lmi_floor:  # pre-warming on LMI = raising the floor ahead of the forecast
            reserved = max(reserved, needed_then)
            new_state["target"] = reserved
            return Decision(reserved=reserved), new_state
        if hc.warm_pool_lookback_s > 0:
            most_seen = max(n for _, n in seen)
            needed_then = max(needed_then, math.ceil(most_seen * (1 + hc.warm_pool_headroom) - 1e-9))
        prewarm = max(
            0, needed_then - max(reserved, obs.reserved_instances)
        )  # on-demand instances to hold warm
        new_state["target"] = max(needed_then, reserved)
        return Decision(reserved=reserved, prewarm=prewarm), new_state

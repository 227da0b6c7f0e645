"""Lambda Managed Instances' own scaling of a GPU function, as the simulators replay it.

The user sets only the floor (``MinExecutionEnvironments``, the policy's reserved count) and the
ceiling (the capacity provider's ``maxInstances``); the platform runs the execution environments
E(t) in between by itself (scaling/README.md, "Lambda GPU (Managed Instances)"):

- **target tracking with a lag**: once per tick (the metric period) it aims at the environments
  that bring the measured slot use (requests in service / (E x PerExecutionEnvironmentMaxConcurrency))
  to the target utilisation; a new environment serves ``cold_start_s`` after it is added;
- **growth bound**: capacity at most doubles per ``doubling_s`` (5 minutes), so traffic that grows
  faster is throttled until capacity catches up;
- **gradual scale-down**: at most ``scale_in_per_min`` of the environments above the target go per
  minute;
- **to zero**: with a floor of 0 the last environment goes only after ``idle_to_zero_s`` without
  traffic;
- **from zero**: with no environment alive, the first one serves ``from_zero_s`` after traffic or a
  raised floor arrives;
- a freshly published version starts with ``publish_environments`` (three).

Pre-warm invokes add no capacity on LMI (it "does not scale when invocations arrive"): the wrapper
drops them; pre-warming there is raising the floor ahead of the forecast, which the hybrid policy
does itself (:attr:`scaling.policies.HybridConfig.floor_only`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from core.errors import ScalingError
from scaling.policies import Decision, Observation, Policy, State
from scaling.providers import LmiScaling, Provider

_EPS = 1e-9


def next_environments(
    current: int,
    floor: int,
    in_flight: float,
    interval_s: float,
    concurrency: int,
    ceiling: int,
    scaling: LmiScaling,
    keep_one: bool = True,
) -> int:
    """The environments the platform runs after one tick of ``interval_s`` seconds, from ``current``
    (> 0; :class:`LmiPlatform` handles zero), the measured mean requests in service ``in_flight`` and
    the user's ``floor`` / ``ceiling``: target tracking bounded by one doubling per ``doubling_s`` on
    the way up and by ``scale_in_per_min`` on the way down; the floor applies at once. ``keep_one``:
    the last environment stays (traffic was seen within ``idle_to_zero_s``)."""
    wanted = math.ceil(in_flight / (concurrency * scaling.target_utilisation) - _EPS)
    wanted = max(wanted, 1 if keep_one else 0)
    if wanted > current:
        most = math.ceil(current * 2 ** (interval_s / scaling.doubling_s) - _EPS)
        new = min(wanted, max(most, current + 1))
    elif wanted < current:
        step = math.ceil((current - wanted) * min(1.0, scaling.scale_in_per_min * interval_s / 60) - _EPS)
        new = current - step
    else:
        new = current
    return max(0, min(ceiling, max(new, floor)))


@dataclass(frozen=True)
class LmiPlatform:
    """Wraps a policy whose reserved count is the floor; returns the environments the platform runs.

    State: ``{"inner", "environments", "waiting_s", "idle_s"}``: seconds traffic or a floor has
    waited at zero environments, seconds without traffic."""

    inner: Policy
    scaling: LmiScaling
    concurrency: int
    ceiling: int
    start_s: float
    initial_environments: int = 0

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def interval_s(self) -> float:
        return self.inner.interval_s

    def initial_state(self) -> State:
        return {
            "inner": self.inner.initial_state(),
            "environments": min(self.ceiling, self.initial_environments),
            "waiting_s": 0.0,
            "idle_s": 0.0,
        }

    def decide(self, obs: Observation, state: State) -> tuple[Decision, State]:
        raw, inner_state = self.inner.decide(obs, state["inner"])
        floor = min(self.ceiling, raw.reserved)
        current = int(state["environments"])
        waiting_s = 0.0
        idle = obs.in_flight <= 0 and obs.arrival_rate_rps <= 0
        idle_s = float(state["idle_s"]) + obs.interval_s if idle else 0.0
        if current > 0:
            keep_one = idle_s < self.scaling.idle_to_zero_s
            new = next_environments(
                current,
                floor,
                obs.in_flight,
                obs.interval_s,
                self.concurrency,
                self.ceiling,
                self.scaling,
                keep_one,
            )
        elif floor > 0 or obs.arrival_rate_rps > 0:
            # from zero: GPU instances are provisioned first; the sims add start_s once it is added
            waiting_s = float(state["waiting_s"]) + obs.interval_s
            due = waiting_s + _EPS >= self.scaling.from_zero_s - self.start_s
            new = min(self.ceiling, max(floor, 1)) if due else 0
            waiting_s = 0.0 if due else waiting_s
        else:
            new = 0
        decision = Decision(reserved=new, admission_rps=raw.admission_rps)  # pre-warm adds nothing
        return decision, {"inner": inner_state, "environments": new, "waiting_s": waiting_s, "idle_s": idle_s}


def initial_environments(provider: Provider, in_flight: float) -> int:
    """Environments a running deployment has when a replay starts: the three a published version
    starts with, or what the platform's target tracking holds for the ``in_flight`` requests (mean
    in service over the first tick) where that is more; 0 without LMI scaling."""
    if provider.lmi is None:
        return 0
    tracked = math.ceil(
        in_flight / (provider.concurrency_per_instance * provider.lmi.target_utilisation) - _EPS
    )
    return min(provider.max_environments(), max(provider.lmi.publish_environments, tracked))


def on_platform(policy: Policy, provider: Provider, environments: int = 0) -> Policy:
    """``policy`` as the platform runs it: wrapped in :class:`LmiPlatform` (starting with
    ``environments`` alive) on a provider with LMI scaling, unchanged elsewhere."""
    if provider.lmi is None:
        return policy
    if provider.lmi.from_zero_s < provider.cold_start_s:
        raise ScalingError(
            f"lmi from_zero_s ({provider.lmi.from_zero_s:g} s) must be >= the environment start "
            f"cold_start_s ({provider.cold_start_s:g} s): it includes it",
            field="lmi.from_zero_s",
            value=provider.lmi.from_zero_s,
        )
    return LmiPlatform(
        policy,
        provider.lmi,
        provider.concurrency_per_instance,
        provider.max_environments(),
        provider.cold_start_s,
        environments,
    )

"""The baseline policies the hybrid is compared with: fixed pool, on-demand only, the seed's
reactive load score, AWS target tracking and Knative's KPA. Each returns a raw reserved count;
bounds and delays are applied by :class:`scaling.policies.wrappers.BoundedPolicy`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scaling.policies.types import Decision, Observation, PolicyConfig, State

CLOUD_TICK_S = 60.0  # the scaler function runs once a minute (CloudWatch / Cloud Monitor 1-minute data)


@dataclass(frozen=True)
class FixedPool:
    """A fixed pool sized for the peak: ``fixed_instances`` reserved always, no on-demand bursts."""

    config: PolicyConfig
    name: str = "fixed"
    interval_s: float = CLOUD_TICK_S

    def initial_state(self) -> State:
        return {}

    def decide(self, obs: Observation, state: State) -> tuple[Decision, State]:
        return Decision(reserved=self.config.fixed_instances, max_on_demand=0), {}


@dataclass(frozen=True)
class OnDemandOnly:
    """Nothing reserved: every instance is the platform's on-demand one, kept warm by the platform."""

    config: PolicyConfig
    name: str = "on-demand"
    interval_s: float = CLOUD_TICK_S

    def initial_state(self) -> State:
        return {}

    def decide(self, obs: Observation, state: State) -> tuple[Decision, State]:
        return Decision(reserved=0), {}


def _utilisation(obs: Observation, concurrency_per_instance: int) -> float:
    """Busy share of all live instances' slots, in [0, 1] (1 when requests exist and no instance)."""
    slots = obs.total_instances * concurrency_per_instance
    if slots == 0:
        return 1.0 if obs.in_flight > 0 else 0.0
    return min(1.0, obs.in_flight / slots)


@dataclass(frozen=True)
class ReactiveLoadScore:
    """The seed's policy with its exact constants (see :class:`ReactiveConfig`).

    cpu and mem default to the slot utilisation of all live instances when the metric source has no
    such figures; rps is normalised by ``rps_capacity_per_instance`` x live instances. N is the
    reserved count observed now (at least the seed's minimum). State: ``{"load": smoothed score}``.
    """

    config: PolicyConfig
    name: str = "reactive"
    interval_s: float = CLOUD_TICK_S

    def initial_state(self) -> State:
        return {"load": 0.0}

    def decide(self, obs: Observation, state: State) -> tuple[Decision, State]:
        rc = self.config.reactive
        util = _utilisation(obs, self.config.concurrency_per_instance)
        cpu = obs.cpu_fraction if obs.cpu_fraction is not None else util
        mem = obs.mem_fraction if obs.mem_fraction is not None else util
        capacity_rps = rc.rps_capacity_per_instance * max(obs.total_instances, 1)
        rps = min(1.0, obs.arrival_rate_rps / capacity_rps)
        load = rc.cpu_weight * cpu + rc.mem_weight * mem + rc.rps_weight * rps
        smoothed = max(0.0, min(1.0, rc.alpha * load + (1 - rc.alpha) * float(state["load"])))
        n = max(rc.min_reserved, obs.reserved_instances)
        if smoothed > rc.scale_up_threshold:
            n = min(rc.max_reserved, math.ceil(n * 2 ** ((smoothed - rc.scale_up_threshold) * 10)))
        elif smoothed < rc.scale_down_threshold:
            n = max(rc.min_reserved, math.floor(math.sqrt(n)))
        return Decision(reserved=n), {"load": smoothed}


@dataclass(frozen=True)
class TargetTracking:
    """AWS target tracking on provisioned-concurrency utilisation (see :class:`TargetTrackingConfig`).

    Observations are folded into ``datapoint_s`` datapoints (mean utilisation); after
    ``scale_out_datapoints`` consecutive datapoints above the target (or ``scale_in_datapoints``
    below target x scale_in_ratio) the count becomes ceil(N x utilisation / target).
    The count asked for stays asked for until the next alarm (so delays in the wrapper can apply).
    State: ``{"bucket_s", "bucket_util_s", "above", "below"`` (consecutive datapoint counts),
    ``"desired"}``.
    """

    config: PolicyConfig
    name: str = "target-tracking"
    interval_s: float = CLOUD_TICK_S

    def initial_state(self) -> State:
        return {"bucket_s": 0.0, "bucket_util_s": 0.0, "above": 0, "below": 0, "desired": None}

    def decide(self, obs: Observation, state: State) -> tuple[Decision, State]:
        tc = self.config.target_tracking
        n = max(tc.min_capacity, obs.reserved_instances)
        desired = n if state["desired"] is None else int(state["desired"])
        util_now = (
            min(1.0, obs.reserved_utilisation) if obs.reserved_instances else (1.0 if obs.in_flight else 0.0)
        )
        bucket_s = float(state["bucket_s"]) + obs.interval_s
        bucket_util_s = float(state["bucket_util_s"]) + util_now * obs.interval_s
        above, below = int(state["above"]), int(state["below"])
        if bucket_s + 1e-9 < tc.datapoint_s:
            new_state = {**state, "bucket_s": bucket_s, "bucket_util_s": bucket_util_s, "desired": desired}
            return Decision(reserved=desired), new_state
        util = bucket_util_s / bucket_s
        above = above + 1 if util > tc.target_utilisation else 0
        below = below + 1 if util < tc.target_utilisation * tc.scale_in_ratio else 0
        if above >= tc.scale_out_datapoints:
            desired, above = max(n, math.ceil(n * util / tc.target_utilisation)), 0
        elif below >= tc.scale_in_datapoints:
            desired, below = max(tc.min_capacity, math.ceil(n * util / tc.target_utilisation)), 0
        new_state = {
            "bucket_s": 0.0,
            "bucket_util_s": 0.0,
            "above": above,
            "below": below,
            "desired": desired,
        }
        return Decision(reserved=desired), new_state


def recent_samples(samples: list[list[float]], window_s: float) -> list[list[float]]:
    """The newest ``[interval_s, value]`` samples covering ``window_s`` seconds (at least one)."""
    kept: list[list[float]] = []
    covered = 0.0
    for sample in reversed(samples):
        if kept and covered >= window_s:
            break
        kept.append(sample)
        covered += sample[0]
    return kept[::-1]


def _window_mean(samples: list[list[float]], window_s: float) -> float:
    """Time-weighted mean of the newest ``[interval_s, value]`` samples covering ``window_s``."""
    covered = total = 0.0
    for interval_s, value in reversed(samples):
        take = min(interval_s, window_s - covered)
        if take <= 0:
            break
        covered += take
        total += take * value
    return total / covered if covered else 0.0


@dataclass(frozen=True)
class KnativeKpa:
    """Knative's KPA on mean in-flight concurrency (see :class:`KpaConfig`); pods = reserved.

    State: ``{"samples": [[interval_s, in_flight], ...] (stable window), "panic_since": t or None,
    "max_panic": pods, "zero_for_s": seconds the stable desired count has been 0}``.
    """

    config: PolicyConfig
    name: str = "kpa"

    @property
    def interval_s(self) -> float:
        """Knative's autoscaler tick (2 s by default)."""
        return self.config.kpa.tick_s

    def initial_state(self) -> State:
        return {"samples": [], "panic_since": None, "max_panic": 0, "zero_for_s": 0.0}

    def decide(self, obs: Observation, state: State) -> tuple[Decision, State]:
        kc = self.config.kpa
        per_pod = self.config.concurrency_per_instance * kc.target_utilisation
        samples = recent_samples([*state["samples"], [obs.interval_s, obs.in_flight]], kc.stable_window_s)
        ready = max(1, obs.reserved_instances)
        desired_stable = math.ceil(_window_mean(samples, kc.stable_window_s) / per_pod - 1e-9)
        desired_panic = math.ceil(_window_mean(samples, kc.panic_window_s) / per_pod - 1e-9)
        over = desired_panic / ready >= kc.panic_threshold
        panic_since = state["panic_since"]
        if over:  # entering panic, or extending it while still over the threshold
            panic_since = obs.t_s
        elif panic_since is not None and obs.t_s - panic_since >= kc.stable_window_s:
            panic_since = None
        lo = math.floor(ready / kc.max_scale_down_rate)
        hi = math.ceil(ready * kc.max_scale_up_rate)
        if panic_since is not None:
            desired = max(desired_panic, int(state["max_panic"]), obs.reserved_instances)
            max_panic = desired
        else:
            desired, max_panic = desired_stable, 0
        if obs.reserved_instances > 0:
            desired = max(lo, min(hi, desired))
        zero_for_s = float(state["zero_for_s"]) + obs.interval_s if desired_stable == 0 else 0.0
        if desired == 0 and obs.reserved_instances > 0 and zero_for_s < kc.scale_to_zero_grace_s:
            desired = 1
        new_state = {
            "samples": samples,
            "panic_since": panic_since,
            "max_panic": max_panic,
            "zero_for_s": zero_for_s,
        }
        return Decision(reserved=desired, max_on_demand=0), new_state

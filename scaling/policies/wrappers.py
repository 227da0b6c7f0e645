"""Bounds and delays applied identically around every policy (Ray Serve's autoscaling style).

A policy returns its raw desired reserved count; :class:`BoundedPolicy` clamps it to
``[min_reserved, max_reserved]`` and applies the up / down delays: a higher (lower) count must be
wanted for ``upscale_delay_s`` (``downscale_delay_s``) seconds of observations before it replaces
the applied one. Scaling up from zero skips the delay (the from-zero fast path).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from scaling.policies.types import Decision, Observation, Policy, PolicyConfig, State


@dataclass(frozen=True)
class BoundedPolicy:
    """Wraps a raw policy; its state is ``{"inner": ..., "applied": int | None, "up_s", "down_s"}``."""

    inner: Policy
    config: PolicyConfig

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def interval_s(self) -> float:
        return self.inner.interval_s

    def initial_state(self) -> State:
        return {"inner": self.inner.initial_state(), "applied": None, "up_s": 0.0, "down_s": 0.0}

    def decide(self, obs: Observation, state: State) -> tuple[Decision, State]:
        raw, inner_state = self.inner.decide(obs, state["inner"])
        cfg = self.config
        target = cfg.bounds.clamp(raw.reserved)
        applied = state["applied"]
        current = applied if applied is not None else cfg.bounds.clamp(obs.reserved_instances)
        up_s, down_s = float(state["up_s"]), float(state["down_s"])
        if target > current:
            up_s, down_s = up_s + obs.interval_s, 0.0
            if current == 0 or up_s >= cfg.upscale_delay_s:
                current, up_s = target, 0.0
        elif target < current:
            up_s, down_s = 0.0, down_s + obs.interval_s
            if down_s >= cfg.downscale_delay_s:
                current, down_s = target, 0.0
        else:
            up_s = down_s = 0.0
        new_state = {"inner": inner_state, "applied": int(current), "up_s": up_s, "down_s": down_s}
        return replace(raw, reserved=int(current)), new_state

"""The local runtime's metric source and actuator: the very same policy objects as the cloud.

Every tick the autoscaler measures the pool over the last interval (arrival rate, mean requests in
the system, reserved utilisation, queue, P95 time to first token), asks the policy for a
``Decision`` and actuates it on the pool (reserved count, pre-warm, cap on on-demand workers,
admission rate). The policy stays pure; the clock and the pool live here.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict
from typing import Any

from llmfn.local.config import DevConfig
from llmfn.local.pool import WorkerPool
from llmfn.local.worker import WorkerKind, WorkerState
from scaling.policies import Decision, Observation, Policy, PolicyConfig, make_policy, policy_config_for


def policy_config(config: DevConfig, overrides: dict[str, Any] | None = None) -> PolicyConfig:
    """The ``PolicyConfig`` for the runtime: c = slots per worker, the quota, the cold-start
    estimate, ``--reserved`` as the fixed pool's size; ``overrides`` (a ``PolicyConfig`` mapping, e.g.
    from ``--policy-config``) win."""
    return policy_config_for(
        concurrency_per_instance=config.concurrency_per_instance,
        cold_start_s=config.cold_start_estimate_s,
        max_reserved=config.max_instances,
        fixed_instances=config.reserved,
        overrides=overrides,
    )


def _p95(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


class Autoscaler:
    """Ticks ``policy`` against ``pool``: call ``record_ttft`` per request and ``step`` every tick."""

    def __init__(self, policy_name: str, config: PolicyConfig, pool: WorkerPool) -> None:
        self.config = config
        self.policy: Policy = make_policy(policy_name, config)
        self.pool = pool
        self.tick_s = pool.config.tick_s or self.policy.interval_s
        """Seconds between two decisions: ``--tick``, else the policy's own interval (as the simulator)."""
        self.state = self.policy.initial_state()
        self.last_observation: Observation | None = None
        self.last_decision: Decision | None = None
        self.ticks = 0
        self._ttfts: list[float] = []
        self._last_at = time.monotonic()
        self._last_arrivals = 0
        self._last_load = (0.0, 0.0, 0.0)

    def record_ttft(self, seconds: float) -> None:
        """Time to first byte of one answered request, seconds (feeds the P95 of the tick)."""
        self._ttfts.append(seconds)

    def observe(self) -> Observation:
        """Measure the pool over the interval since the previous observation."""
        pool = self.pool
        pool.account()
        now = time.monotonic()
        interval = max(now - self._last_at, 1e-6)
        load = (pool.load.in_system_s, pool.load.reserved_busy_slot_s, pool.load.reserved_slot_s)
        in_system, busy, slots = (new - old for new, old in zip(load, self._last_load, strict=True))
        live = [w for w in pool.workers if w.state in (WorkerState.STARTING, WorkerState.READY)]
        wall = time.localtime()
        obs = Observation(
            t_s=time.time(),
            interval_s=interval,
            hour_of_day=wall.tm_hour,
            arrival_rate_rps=(pool.counters.arrivals - self._last_arrivals) / interval,
            in_flight=max(0.0, in_system / interval),
            reserved_instances=sum(w.kind is WorkerKind.RESERVED for w in live),
            on_demand_instances=sum(w.kind is WorkerKind.ON_DEMAND for w in live),
            reserved_utilisation=min(1.0, busy / slots) if slots > 0 else 0.0,
            queue_length=pool.waiting,
            p95_latency_s=_p95(self._ttfts),
        )
        self._last_at, self._last_arrivals, self._last_load = now, pool.counters.arrivals, load
        self._ttfts = []
        return obs

    async def step(self) -> Decision:
        """One tick: observe, decide, actuate."""
        obs = self.observe()
        decision, self.state = self.policy.decide(obs, self.state)
        await self.pool.apply(decision.reserved, decision.prewarm, decision.max_on_demand)
        self.last_observation, self.last_decision = obs, decision
        self.ticks += 1
        return decision

    def snapshot(self) -> dict[str, object]:
        """JSON-ready policy view for ``/_llmfn/status``."""
        return {
            "name": self.policy.name,
            "config": self.config.to_dict(),
            "tick_s": self.tick_s,
            "ticks": self.ticks,
            "observation": asdict(self.last_observation) if self.last_observation else None,
            "decision": asdict(self.last_decision) if self.last_decision else None,
            "state": self.state,
        }

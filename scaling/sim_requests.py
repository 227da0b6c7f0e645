"""Request-level fidelity: an event simulation of every request, instance and policy tick.

Exact for traces with individual arrivals (up to ~1 M requests). Instances: reserved ones are
started by the policy and serve once warm; on-demand ones are started by the platform for a
request that finds no free slot (it waits for the cold start; up to ``concurrency`` requests
may wait on one warming instance), kept warm ``keep_alive_s`` after their last request, then
reaped. Dispatch packs: a request goes to the busiest ready instance with a free slot, reserved
before on-demand. With no slot and no instance allowed to start, it queues (FIFO), except on a
provider that throttles (Lambda Managed Instances: "if all runtime workers are busy, new invocations
are rejected"), where it is throttled (429) and counted. A token bucket
rejects requests above the policy's admission rate (counted, never dropped silently).
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.errors import ScalingError
from scaling.policies import Decision, Observation, Policy
from scaling.providers import Provider, Usage
from scaling.service import ServiceModel
from scaling.sim_result import RunRecord, hour_of_day
from scaling.traces import Trace

_DONE, _READY = 0, 1
DISPATCHES = ("pack", "fit")
TIER_KEYS = ("output", "fingerprint")
FINGERPRINT_CAP = 5.0
FINGERPRINT_BOUNDS = (1.2, 3.0)
"""Seed 002's S / M / L bounds on the fingerprint (as ``functions.guards.complexity``; ``scaling``
imports nothing of ours, so the two numbers are repeated here)."""


@dataclass(eq=False)
class _Instance:
    reserved: bool
    ready_at: float
    busy: int = 0
    idle_since: float = 0.0
    draining: bool = False
    tier: int = -1  # the length tier of the requests it runs now (-1: any, while idle)
    busy_until: float = 0.0  # when its last running request ends, seconds


class _Bucket:
    """Token bucket: ``rate`` tokens/s, burst of one second's worth (at least 1)."""

    def __init__(self) -> None:
        self.rate: float | None = None
        self.tokens = 0.0
        self.at = 0.0

    def admit(self, t: float) -> bool:
        if self.rate is None:
            return True
        burst = max(1.0, self.rate)
        self.tokens = min(burst, self.tokens + (t - self.at) * self.rate)
        self.at = t
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


def simulate_requests(
    trace: Trace,
    policy: Policy,
    provider: Provider,
    service: ServiceModel,
    progress: bool = False,
    warm_reserved: int = 0,
    tier_bounds_tokens: Sequence[float] = (),
    dispatch: str = "pack",
    tier_by: str = "output",
) -> RunRecord:
    """Replay ``trace`` request by request under ``policy`` on ``provider``.

    warm_reserved: reserved instances already warm at t = 0 (a running deployment; default none).
    tier_bounds_tokens: tiered dispatch by expected length: increasing output-token bounds that cut
        requests into tiers (``(100, 400)``: < 100, 100-399, >= 400 tokens). A busy instance runs
        requests of one tier only, so the requests sharing it finish close together and it goes
        idle sooner; an idle instance takes any tier. Empty: no tiers. The expected length is the
        trace's output tokens (a perfect estimate: the most tiers can give).
    tier_by: ``output`` (the bounds are output tokens) or ``fingerprint``: seed 002's complexity
        score input / 1000 x output / 256 (content weight 1: a trace has no text), the score
        ``llmfn dev --tier-exclusive`` routes by (its S / M / L bounds are 1.2 and 3.0).
    dispatch: ``pack`` (the platform's way: the busiest ready instance with a free slot) or ``fit``
        (length-aware: the instance whose busy time the request extends least, so a short request
        rides along with a long one already running; then the busiest), from the expected length.
    """
    if dispatch not in DISPATCHES:
        raise ScalingError(
            f"must be one of {', '.join(DISPATCHES)}, got {dispatch!r}",
            field="dispatch",
            value=dispatch,
            allowed=", ".join(DISPATCHES),
        )
    if trace.arrival_s is None:
        raise ScalingError(f"trace {trace.name!r} has rates, not requests: use the time-step fidelity")
    if tier_by not in TIER_KEYS:
        raise ScalingError(f"tier key must be one of {', '.join(TIER_KEYS)}, got {tier_by!r}")
    key = (
        trace.output_tokens
        if tier_by == "output"
        else fingerprint_score(trace.input_tokens, trace.output_tokens)
    )
    tiers = length_tiers(key, tier_bounds_tokens)
    sim = _EventSim(trace, policy, provider, service, tiers, fit=dispatch == "fit")
    sim.instances.extend(_Instance(reserved=True, ready_at=0.0) for _ in range(max(warm_reserved, 0)))
    sim.run()
    return sim.record()


def fingerprint_score(input_tokens: np.ndarray, output_tokens: np.ndarray) -> np.ndarray:
    """Seed 002's request complexity fingerprint without content weights: input tokens / 1000 x
    max tokens (here the output tokens) / 256, capped at 5 (``functions.guards.complexity``)."""
    return np.minimum(
        FINGERPRINT_CAP, np.asarray(input_tokens, float) / 1000 * np.asarray(output_tokens, float) / 256
    )


def length_tiers(output_tokens: np.ndarray, bounds: Sequence[float]) -> np.ndarray:
    """Tier of each request (0 = shortest) from increasing ``bounds`` on its key (output tokens,
    or the fingerprint score)."""
    edges = np.asarray(bounds, dtype=float)
    if len(edges) and (np.any(np.diff(edges) <= 0) or edges[0] <= 0 or not np.all(np.isfinite(edges))):
        raise ScalingError(f"tier bounds must be increasing positive token counts, got {list(bounds)}")
    return np.searchsorted(edges, np.asarray(output_tokens, dtype=float), side="right")


class _EventSim:
    def __init__(
        self,
        trace: Trace,
        policy: Policy,
        provider: Provider,
        service: ServiceModel,
        tiers: np.ndarray,
        fit: bool = False,
    ) -> None:
        self.trace, self.policy, self.provider, self.service = trace, policy, provider, service
        self.tiers = tiers
        self.fit = fit
        self.solo_s = np.asarray(service.service_s(trace.input_tokens, trace.output_tokens), dtype=float)
        self.c = provider.concurrency_per_instance
        n = len(trace.arrival_s)  # type: ignore[arg-type]
        self.prefill = np.asarray(service.prefill_s(trace.input_tokens), dtype=float)
        self.ttft = np.full(n, np.nan)
        self.e2e = np.full(n, np.nan)
        self.cold = np.zeros(n, dtype=bool)
        self.rejected = np.zeros(n, dtype=bool)
        self.throttled = np.zeros(n, dtype=bool)
        self.work_s = 0.0
        self.instances: list[_Instance] = []
        self.events: list[tuple[float, int, int, object]] = []
        self.seq = 0
        self.queue: deque[int] = deque()
        self.bucket = _Bucket()
        self.max_on_demand: int | None = None
        self.od_starts = 0
        self.unfinished = 0
        self.unfinished_work_s = 0.0
        self.queue_peak = 0
        horizon = trace.duration_s
        self.reserved_alive = np.zeros(horizon)
        self.reserved_busy = np.zeros(horizon)
        self.od_busy = np.zeros(horizon)
        self.od_alive = np.zeros(horizon)
        self.reserved_series = np.zeros(horizon)
        self.od_series = np.zeros(horizon)
        # accumulators for the next observation
        self.in_system = 0
        self.area_in_system = 0.0
        self.total_area = 0.0  # request-seconds in the system over the whole run (Little's L x T)
        self.area_reserved_busy_slots = 0.0
        self.area_reserved_slots = 0.0
        self.arrivals_since = 0
        self.ttft_since: list[float] = []
        self.last_t = 0.0
        self.policy_state = policy.initial_state()

    # ----------------------------------------------------------------- bookkeeping
    def _advance(self, t: float) -> None:
        dt = t - self.last_t
        if dt > 0:
            self.area_in_system += self.in_system * dt
            self.total_area += self.in_system * dt
            busy_slots = ready_slots = 0
            for inst in self.instances:
                if inst.reserved:
                    busy_slots += inst.busy
                    if inst.ready_at <= self.last_t and not inst.draining:
                        ready_slots += self.c
            self.area_reserved_busy_slots += min(busy_slots, ready_slots) * dt
            self.area_reserved_slots += ready_slots * dt
            self.last_t = t

    def _push(self, t: float, kind: int, payload: object) -> None:
        self.seq += 1
        heapq.heappush(self.events, (t, self.seq, kind, payload))

    def _start(self, i: int, inst: _Instance, now: float) -> None:
        """Run request ``i`` on ``inst`` (at ``now``, or when it is ready)."""
        begin = max(now, inst.ready_at)
        inst.busy += 1
        inst.tier = int(self.tiers[i])
        if inst.ready_at > now:
            self.cold[i] = True
        batch = inst.busy
        service_s = float(
            self.service.service_s(self.trace.input_tokens[i], self.trace.output_tokens[i], batch)
        )
        self.work_s += service_s
        if begin >= self.trace.duration_s:  # waited past the trace's end: its work is not billed
            self.unfinished += 1
            self.unfinished_work_s += service_s
        arrival = float(self.trace.arrival_s[i])  # type: ignore[index]
        self.ttft[i] = begin - arrival + self.prefill[i]
        self.e2e[i] = begin - arrival + service_s
        self.ttft_since.append(self.ttft[i])
        inst.busy_until = max(inst.busy_until, begin + service_s)
        self._push(begin + service_s, _DONE, inst)

    def _on_demand_count(self) -> int:
        return sum(1 for inst in self.instances if not inst.reserved)

    def _may_start_on_demand(self) -> bool:
        if not self.provider.on_demand or len(self.instances) >= self.provider.max_instances:
            return False
        return self.max_on_demand is None or self._on_demand_count() < self.max_on_demand

    def _new_instance(self, reserved: bool, now: float) -> _Instance:
        inst = _Instance(reserved=reserved, ready_at=now + self.provider.cold_start_s, idle_since=now)
        self.instances.append(inst)
        self._push(inst.ready_at, _READY, inst)
        if not reserved:
            self.od_starts += 1
        return inst

    def _dispatch(self, i: int, now: float) -> None:
        best: _Instance | None = None
        best_key: tuple[float, ...] = (-1, -math.inf, -1)
        warming: _Instance | None = None
        tier = self.tiers[i]
        end = now + self.solo_s[i] if self.fit else 0.0
        for inst in self.instances:
            if inst.draining or inst.busy >= self.c or (inst.busy and inst.tier != tier):
                continue
            if inst.ready_at <= now:
                if self.fit:  # the busy time this request adds to the instance, least first
                    added = end - (max(inst.busy_until, now) if inst.busy else now)
                    key = (1 if inst.reserved else 0, -max(added, 0.0), inst.busy)
                else:
                    key = (1 if inst.reserved else 0, inst.busy)
                if key > best_key:
                    best, best_key = inst, key
            elif not inst.reserved and warming is None:
                warming = inst
        target = best or warming
        if target is None and self._may_start_on_demand():
            target = self._new_instance(False, now)
        if target is None and self.provider.throttles:
            self.throttled[i] = True  # rejected (429), never queued
            self.in_system -= 1
        elif target is None:
            self.queue.append(i)
            self.queue_peak = max(self.queue_peak, len(self.queue))
        else:
            self._start(i, target, now)

    def _fill_from_queue(self, inst: _Instance, now: float) -> None:
        while self.queue and not inst.draining and inst.busy < self.c and inst.ready_at <= now:
            if inst.busy and self.tiers[self.queue[0]] != inst.tier:
                break  # the head of the queue is of another tier: it waits for an idle instance
            self._start(self.queue.popleft(), inst, now)

    def _apply(self, decision: Decision, now: float) -> None:
        self.max_on_demand = decision.max_on_demand
        self.bucket.rate = decision.admission_rps
        reserved = [inst for inst in self.instances if inst.reserved and not inst.draining]
        if decision.reserved > len(reserved):
            for _ in range(decision.reserved - len(reserved)):
                if len(self.instances) >= self.provider.max_instances:
                    break
                self._new_instance(True, now)
        elif decision.reserved < len(reserved):
            # remove warming first, then idle, then the least busy (drained when they go idle)
            reserved.sort(key=lambda inst: (inst.ready_at <= now, inst.busy))
            for inst in reserved[: len(reserved) - decision.reserved]:
                if self.provider.released_stay_warm and inst.ready_at <= now:
                    inst.reserved = False  # warm on-demand now, reaped after its keep-alive
                    if inst.busy == 0:
                        inst.idle_since = now
                    continue
                inst.draining = True
                if inst.busy == 0:
                    self.instances.remove(inst)
        # pre-warm requests renew idle warm on-demand instances first, then start new ones
        pending = decision.prewarm
        for inst in self.instances:
            if pending == 0:
                break
            if not inst.reserved and not inst.draining:
                if inst.busy == 0:
                    inst.idle_since = max(inst.idle_since, now)
                pending -= 1
        for _ in range(pending):
            if not self._may_start_on_demand():
                break
            self._new_instance(False, now)

    # ----------------------------------------------------------------- the loop
    def _tick(self, now: float) -> None:
        interval = self.policy.interval_s
        rates = self.arrivals_since / interval
        reserved = [inst for inst in self.instances if inst.reserved and not inst.draining]
        ttfts = self.ttft_since
        obs = Observation(
            t_s=self.trace.start_of_day_s + now,
            interval_s=interval,
            hour_of_day=hour_of_day(self.trace.start_of_day_s + now),
            arrival_rate_rps=rates,
            in_flight=self.area_in_system / interval,
            reserved_instances=len(reserved),
            on_demand_instances=self._on_demand_count(),
            reserved_utilisation=(
                self.area_reserved_busy_slots / self.area_reserved_slots if self.area_reserved_slots else 0.0
            ),
            queue_length=len(self.queue),
            p95_latency_s=float(np.percentile(ttfts, 95)) if ttfts else None,
        )
        self.arrivals_since = 0
        self.area_in_system = self.area_reserved_busy_slots = self.area_reserved_slots = 0.0
        self.ttft_since = []
        decision, self.policy_state = self.policy.decide(obs, self.policy_state)
        self._apply(decision, now)

    def _sample(self, s: int) -> None:
        """Per-second usage sample at second ``s``; reap on-demand instances idle past keep-alive."""
        now = float(s)
        keep = self.provider.keep_alive_s
        kept: list[_Instance] = []
        for inst in self.instances:
            if (
                not inst.reserved
                and inst.busy == 0
                and inst.ready_at <= now
                and now - inst.idle_since >= keep
            ):
                continue
            kept.append(inst)
        self.instances = kept
        r_alive = r_busy = o_alive = o_busy = 0
        for inst in self.instances:
            if inst.reserved:
                r_alive += 1
                r_busy += inst.busy > 0 and inst.ready_at <= now
            else:
                o_alive += 1
                o_busy += inst.busy > 0 and inst.ready_at <= now
        self.reserved_alive[s], self.reserved_busy[s] = r_alive, r_busy
        self.od_alive[s], self.od_busy[s] = o_alive, o_busy

    def run(self) -> None:
        arrivals = self.trace.arrival_s
        assert arrivals is not None
        n = len(arrivals)
        interval = self.policy.interval_s
        next_tick = 0.0
        next_sample = 0
        horizon = self.trace.duration_s
        i = 0
        while True:
            t_arrival = float(arrivals[i]) if i < n else math.inf
            t_event = self.events[0][0] if self.events else math.inf
            t_tick = next_tick if next_tick < horizon else math.inf
            t_sample = float(next_sample) if next_sample < horizon else math.inf
            t_next = min(t_arrival, t_event, t_tick, t_sample)
            if t_next == math.inf or (t_next >= horizon and not self.queue):
                break  # past the horizon only queued requests are still followed to their start
            self._advance(t_next)
            if t_next == t_tick:
                self._tick(t_next)
                next_tick += interval
            elif t_next == t_sample:
                self._sample(next_sample)
                next_sample += 1
            elif t_next == t_event:
                _, _, kind, inst = heapq.heappop(self.events)
                self._event(kind, inst, t_next)  # type: ignore[arg-type]
            else:
                self.arrivals_since += 1
                self.in_system += 1
                if self.bucket.admit(t_arrival):
                    self._dispatch(i, t_arrival)
                else:
                    self.rejected[i] = True
                    self.in_system -= 1
                i += 1
        self.end_t = max(self.last_t, float(horizon))

    def _event(self, kind: int, inst: _Instance, now: float) -> None:
        if kind == _READY:
            if inst in self.instances:
                if inst.busy == 0:
                    inst.idle_since = now
                self._fill_from_queue(inst, now)
            return
        inst.busy -= 1
        self.in_system -= 1
        if inst.busy == 0:
            inst.idle_since = now
            if inst.draining:
                if inst in self.instances:
                    self.instances.remove(inst)
                return
        self._fill_from_queue(inst, now)

    def record(self) -> RunRecord:
        usage = Usage(
            reserved_alive=self.reserved_alive,
            reserved_busy=self.reserved_busy,
            on_demand_busy=self.od_busy,
            on_demand_alive=self.od_alive,
            on_demand_starts=self.od_starts,
            requests=int((~self.rejected & ~self.throttled).sum()),
        )
        served = ~self.rejected & ~self.throttled
        never = served & np.isnan(self.ttft)  # still queued when no capacity could ever come
        waited = self.end_t - self.trace.arrival_s[never]  # type: ignore[index]
        self.ttft[never] = self.e2e[never] = waited
        never_work = self.service.service_s(self.trace.input_tokens[never], self.trace.output_tokens[never])
        unfinished_work_s = self.unfinished_work_s + float(np.sum(never_work))
        return RunRecord(
            usage=usage,
            ttft_s=self.ttft[served],
            e2e_s=self.e2e[served],
            weights=np.ones(int(served.sum())),
            cold=self.cold[served],
            rejected=int(self.rejected.sum()),
            offered=len(self.rejected),
            work_s=self.work_s,
            second=self.trace.second[served],
            in_system_area_s=self.total_area,
            input_tokens=self.trace.input_tokens[served],
            output_tokens=self.trace.output_tokens[served],
            unfinished_requests=float(self.unfinished + never.sum()),
            unfinished_work_s=unfinished_work_s,
            backlog_peak=float(self.queue_peak),
            throttled=float(self.throttled.sum()),
        )

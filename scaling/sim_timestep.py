"""Time-step fidelity: a 1-second fluid model, vectorised with numpy, for multi-day traces.

Per trace (once, independent of the policy): each request group's service time, with the batch
taken as the mean occupancy of busy instances when it arrives (one fixed-point pass), and the mean
concurrency ``D`` in every second (an exact integral of the requests' service intervals).

Per policy, one control step of ``policy.interval_s`` seconds at a time, every second s gets:
busy instances ``ceil(D / c)``, served first by ready reserved instances; the rest by on-demand
instances while the platform and the policy allow them; the platform keeps an on-demand instance
for ``keep_alive_s`` after its last use, so the alive on-demand pool is the sliding maximum of the
on-demand need over that window (plus pre-warmed instances); a need above the pool is a cold
start. Requests arriving when the ready slots are full wait for the youngest cold start; demand
above all capacity queues (a fluid Lindley backlog in slot-seconds), or is throttled on a provider
that throttles (Lambda Managed Instances). The policy sees the same
:class:`~scaling.policies.Observation` as in the request-level fidelity.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable

import numpy as np

from scaling.policies import Observation, Policy
from scaling.providers import Provider, Usage
from scaling.service import ServiceModel
from scaling.sim_result import RunRecord, hour_of_day
from scaling.traces import Trace

_EPS = 1e-9


def _occupancy_per_second(start: np.ndarray, end: np.ndarray, weight: np.ndarray, horizon: int) -> np.ndarray:
    """Mean number of intervals [start, end) alive in each second 0..horizon-1 (weighted)."""
    k = np.arange(horizon + 1, dtype=float)

    def integral(points: np.ndarray) -> np.ndarray:  # sum_g w_g max(0, k - p_g) for every k
        order = np.argsort(points, kind="stable")
        p, w = points[order], weight[order]
        cum_w = np.concatenate(([0.0], np.cumsum(w)))
        cum_wp = np.concatenate(([0.0], np.cumsum(w * p)))
        idx = np.searchsorted(p, k, side="left")
        return k * cum_w[idx] - cum_wp[idx]

    area = integral(start) - integral(end)
    return np.diff(area)


def _ideal_packing(
    trace: Trace, service: ServiceModel, c: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pack the requests of a per-request trace onto instances the way the platform does (the
    busiest instance with a free slot; a new one when none), with no cold starts or queueing.

    Returns each request's service time (its batch = the instance's occupancy when it starts), the
    busy instances sampled at every whole second, and the peak concurrency and the peak busy
    instances within each second. An instance stays busy until its last request
    ends, so this counts the draining instances a fluid ceil(D / c) would miss.
    """
    assert trace.arrival_s is not None
    arrivals = trace.arrival_s.tolist()
    tin, tout = trace.input_tokens.tolist(), trace.output_tokens.tolist()
    prefill_rate, decode, slow = (
        service.prefill_tokens_per_s,
        service.decode_s_per_token,
        service.batch_slowdown,
    )
    by_load: list[list[int]] = [[] for _ in range(c)]  # free instance ids by occupancy 0..c-1
    occupancy: list[int] = []
    ends: list[tuple[float, int]] = []
    service_s = [0.0] * len(arrivals)
    busy_per_s = np.zeros(trace.duration_s)
    peak_per_s = np.zeros(trace.duration_s)
    busy_peak_per_s = np.zeros(trace.duration_s)
    busy = in_flight = 0
    next_second = 0

    def release(until: float) -> None:
        nonlocal busy, in_flight
        while ends and ends[0][0] <= until:
            _, inst = heapq.heappop(ends)
            in_flight -= 1
            k = occupancy[inst]
            if k < c:
                by_load[k].remove(inst)
            occupancy[inst] = k - 1
            by_load[k - 1].append(inst)
            if k == 1:
                busy -= 1

    for i, t in enumerate(arrivals):
        while next_second <= t:  # sample whole seconds up to this arrival
            release(next_second)
            busy_per_s[next_second] = busy_peak_per_s[next_second] = busy
            peak_per_s[next_second] = in_flight
            next_second += 1
        release(t)
        in_flight += 1
        second = next_second - 1
        peak_per_s[second] = max(peak_per_s[second], in_flight)
        inst = -1
        for k in range(c - 1, -1, -1):
            if by_load[k] and (k > 0 or inst < 0):
                inst = by_load[k].pop()
                break
        if inst < 0:
            inst = len(occupancy)
            occupancy.append(0)
        k = occupancy[inst] + 1
        occupancy[inst] = k
        if k == 1:
            busy += 1
            busy_peak_per_s[second] = max(busy_peak_per_s[second], busy)
        if k < c:
            by_load[k].append(inst)
        s = tin[i] / prefill_rate + tout[i] * decode * (1 + slow * (k - 1))
        service_s[i] = s
        heapq.heappush(ends, (t + s, inst))
    while next_second < trace.duration_s:
        release(next_second)
        busy_per_s[next_second] = busy_peak_per_s[next_second] = busy
        peak_per_s[next_second] = in_flight
        next_second += 1
    return np.asarray(service_s), busy_per_s, peak_per_s, busy_peak_per_s


class Demand:
    """Policy-independent per-second demand of a trace.

    Per-request traces: service times and busy instances from :func:`_ideal_packing`. Rate traces
    (no individual arrivals): the batch is the mean occupancy of ceil(D / c) busy instances, found
    by a short fixed-point iteration, and busy instances = ceil(D / c) (the few draining instances
    this misses are negligible beside the hundreds such traces need).
    """

    def __init__(self, trace: Trace, service: ServiceModel, c: int) -> None:
        horizon = trace.duration_s
        w = trace.count.astype(float)
        if trace.arrival_s is not None:
            start = trace.arrival_s
            self.service_s, self.busy, self.peak, self.busy_peak = _ideal_packing(trace, service, c)
            self.concurrency = _occupancy_per_second(start, start + self.service_s, w, horizon)
        else:
            start = trace.second + 0.5
            batch = np.ones(horizon)
            for _ in range(4):
                self.service_s = np.asarray(
                    service.service_s(trace.input_tokens, trace.output_tokens, batch[trace.second]),
                    dtype=float,
                )
                self.concurrency = _occupancy_per_second(start, start + self.service_s, w, horizon)
                self.busy = np.ceil(self.concurrency / c - _EPS)
                batch = np.clip(self.concurrency / np.maximum(self.busy, 1), 1, c)
            self.peak = self.concurrency
            self.busy_peak = self.busy
        self.start = np.asarray(start, dtype=float)
        self.prefill_s = np.asarray(service.prefill_s(trace.input_tokens), dtype=float)
        self.arrivals = trace.arrivals_per_second()
        self.work_s = float((self.service_s * w).sum())
        # requests of the same second that arrive after each group (to pick who finds slots full)
        cum = np.cumsum(w)
        first = np.searchsorted(trace.second, trace.second, side="left")
        before_incl = cum - np.where(first > 0, cum[first - 1], 0.0)
        self.after = self.arrivals[trace.second] - before_incl


def _sliding_max(values: np.ndarray, window: int) -> np.ndarray:
    """out[i] = max(values[max(0, i - window + 1) : i + 1]) by doubling (log2(window) passes)."""
    out = values.copy()
    span = 1
    while span < window:
        step = min(span, window - span)
        shifted = np.empty_like(out)
        shifted[:step] = out[:step]
        shifted[step:] = out[:-step]
        np.maximum(out, shifted, out=out)
        span += step
    return out


def simulate_timestep(
    trace: Trace,
    policy: Policy,
    provider: Provider,
    service: ServiceModel,
    control_step_s: float | None = None,
    on_step: Callable[[int], None] | None = None,
    demand: Demand | None = None,
    warm_reserved: int = 0,
) -> RunRecord:
    """Replay ``trace`` in 1-second steps under ``policy`` on ``provider``.

    warm_reserved: reserved instances already warm at t = 0 (a running deployment; default none).
    control_step_s: seconds between policy decisions; default ``policy.interval_s``. Longer steps
        trade the policy's reaction time for speed (a constant policy can use the whole trace).
    on_step: called with the seconds simulated so far after every control step (progress bars).
    demand: the trace's :class:`Demand` when already computed (it does not depend on the policy).
    """
    if demand is None:
        demand = Demand(trace, service, provider.concurrency_per_instance)
    step = max(1, round(control_step_s if control_step_s is not None else policy.interval_s))
    return _run(trace, demand, policy, provider, step, on_step, warm_reserved)


def _run(
    trace: Trace,
    demand: Demand,
    policy: Policy,
    provider: Provider,
    step: int,
    on_step: Callable[[int], None] | None,
    warm_reserved: int = 0,
) -> RunRecord:
    """Run ``policy`` over the trace one control step (``step`` whole seconds) at a time.

    Every per-second array below has one entry per second of the trace (index = second since the
    trace's start). Counts of instances are fractional only where the fluid demand makes them so.

    Phase 1 (the loop, one control step at a time): the policy decides from an :class:`Observation`
    of the previous step; the reserved timeline follows its target (instances warm for
    ``cold_start_s`` before they are ready); the on-demand need is what the ready reserved
    instances cannot serve, capped by the quota and the policy; a fluid backlog feeds the next
    observation. Phase 2 (vectorised over the whole trace, after the loop): the on-demand pool the
    platform keeps alive (keep-alive window, pre-warms), its cold starts and the requests that wait
    for one. Phase 3 (:func:`_latencies`): each request group's latency.
    """
    slots_per_instance = provider.concurrency_per_instance
    horizon_s = trace.duration_s
    cold_start_s = provider.cold_start_s
    cold_start_whole_s = math.ceil(cold_start_s)  # seconds an instance started at s is not yet ready
    keep_alive_whole_s = round(provider.keep_alive_s)  # seconds an idle on-demand instance stays alive
    # the trace's demand, independent of the policy
    busy_needed = demand.busy  # instances busy in each second under ideal packing (sampled at the second)
    busy_peak = demand.busy_peak  # most instances busy at once within each second
    concurrency = demand.concurrency  # mean requests in service in each second
    arrivals_cumsum = np.concatenate(([0.0], np.cumsum(demand.arrivals)))  # requests arrived before second s
    concurrency_cumsum = np.concatenate(([0.0], np.cumsum(concurrency)))  # request-seconds before second s
    # the timelines the loop fills in, instances per second
    reserved_alive = np.zeros(horizon_s)  # reserved instances existing (the policy's target)
    reserved_ready = np.zeros(horizon_s)  # reserved instances ready to serve
    on_demand_busy = np.zeros(horizon_s)  # busy on-demand instances (sampled each second, billed)
    # on-demand instances the second's peak concurrency needs (each one started)
    on_demand_for_peak = np.zeros(horizon_s)
    prewarmed_alive = np.zeros(horizon_s)  # on-demand instances pre-warm requests hold alive
    prewarmed_ready = np.zeros(horizon_s)  # of those, the ones past their cold start
    on_demand_cap = np.zeros(horizon_s)  # on-demand instances allowed (platform quota and policy cap)

    policy_state = policy.initial_state()
    reserved_ready_now = max(0, warm_reserved)  # reserved instances ready at the current step's start
    throttles = provider.throttles  # demand above the slots is rejected (429) instead of queued
    reserved_warming: list[list[float]] = []  # [ready at (seconds since start), instance count]
    prewarm_starts = 0  # on-demand instances started by pre-warm requests
    backlog_slot_s = 0.0  # demand waiting for a slot at the end of the last step, slot-seconds
    mean_service_s = demand.work_s / max(float(arrivals_cumsum[-1]), 1.0)  # seconds per request
    # what the last step observed, for the next decision
    arrival_rate_rps = in_flight = reserved_utilisation = 0.0
    on_demand_alive_now = 0
    step_start = 0  # seconds since the trace's start
    while step_start < horizon_s:
        now_s = float(step_start)
        alive = reserved_ready_now + int(sum(n for _, n in reserved_warming))
        observation = Observation(
            t_s=trace.start_of_day_s + now_s,
            interval_s=float(step),
            hour_of_day=hour_of_day(trace.start_of_day_s + now_s),
            arrival_rate_rps=arrival_rate_rps,
            in_flight=in_flight,
            reserved_instances=alive,
            on_demand_instances=on_demand_alive_now,
            reserved_utilisation=reserved_utilisation,
            queue_length=int(backlog_slot_s / max(mean_service_s, _EPS)),
        )
        decision, policy_state = policy.decide(observation, policy_state)
        # the reserved target: add warming instances, or remove warming ones first, then ready ones
        reserved_target = min(decision.reserved, provider.max_environments())
        if reserved_target > alive:
            reserved_warming.append([now_s + cold_start_s, float(reserved_target - alive)])
        elif reserved_target < alive:
            drop = alive - reserved_target
            while drop and reserved_warming:
                take = min(drop, int(reserved_warming[-1][1]))
                reserved_warming[-1][1] -= take
                drop -= take
                if reserved_warming[-1][1] == 0:
                    reserved_warming.pop()
            reserved_ready_now -= drop
        step_end = min(horizon_s, step_start + step)
        this_step = slice(step_start, step_end)  # the seconds of this control step
        reserved_alive[this_step] = reserved_target
        reserved_ready[this_step] = reserved_ready_now
        still_warming: list[list[float]] = []
        for ready_at_s, count in reserved_warming:
            first_ready_s = max(step_start, math.ceil(ready_at_s - _EPS))
            if first_ready_s < step_end:
                reserved_ready[first_ready_s:step_end] += count
                reserved_ready_now += int(count)
            else:
                still_warming.append([ready_at_s, count])
        reserved_warming = still_warming
        # on-demand instances the platform runs for the need above ready reserved capacity
        on_demand_cap_now = 0 if not provider.on_demand else max(0, provider.max_instances - reserved_target)
        if decision.max_on_demand is not None:
            on_demand_cap_now = min(on_demand_cap_now, decision.max_on_demand)
        if decision.prewarm and on_demand_cap_now:
            # pre-warm requests hold `prewarm` on-demand instances alive (renewing idle ones, starting
            # the rest) for a cold start and a keep-alive; until the new ones are ready only the
            # instances already alive are warm
            prewarm = min(decision.prewarm, on_demand_cap_now)
            prewarm_starts += max(0, prewarm - on_demand_alive_now)
            prewarm_end = min(horizon_s, step_start + cold_start_whole_s + keep_alive_whole_s)
            np.maximum(
                prewarmed_alive[step_start:prewarm_end], prewarm, out=prewarmed_alive[step_start:prewarm_end]
            )
            prewarm_ready_at = min(prewarm_end, step_start + cold_start_whole_s)
            np.maximum(
                prewarmed_ready[step_start:prewarm_ready_at],
                min(prewarm, on_demand_alive_now),
                out=prewarmed_ready[step_start:prewarm_ready_at],
            )
            np.maximum(
                prewarmed_ready[prewarm_ready_at:prewarm_end],
                prewarm,
                out=prewarmed_ready[prewarm_ready_at:prewarm_end],
            )
        on_demand_cap[this_step] = on_demand_cap_now
        reserved_ready_step = reserved_ready[this_step]
        if on_demand_cap_now:
            np.clip(
                busy_needed[this_step] - reserved_ready_step,
                0,
                on_demand_cap_now,
                out=on_demand_busy[this_step],
            )
            np.clip(
                np.maximum(busy_peak[this_step], busy_needed[this_step]) - reserved_ready_step,
                0,
                on_demand_cap_now,
                out=on_demand_for_peak[this_step],
            )
            # alive at the step's end: every instance used within the keep-alive window, or pre-warmed
            on_demand_alive_now = int(
                max(
                    on_demand_for_peak[max(0, step_end - 1 - keep_alive_whole_s) : step_end].max(),
                    prewarmed_alive[step_end - 1],
                )
            )
        else:
            on_demand_alive_now = 0
        # observation for the next decision
        step_capacity_slots = slots_per_instance * (reserved_ready_step + on_demand_busy[this_step])
        step_excess = concurrency[this_step] - step_capacity_slots  # demand above the slots, per second
        if not throttles and (backlog_slot_s > 0 or step_excess.max() > 0):
            net = np.cumsum(step_excess)  # Lindley: B_s = max(B_0 + S_s, S_s - min_{k<=s} S_k)
            step_backlog = np.maximum(backlog_slot_s + net, net - np.minimum.accumulate(net))
            backlog_slot_s, queued_mean = float(step_backlog[-1]), float(step_backlog.mean())
        else:
            queued_mean = 0.0
        reserved_slot_s = slots_per_instance * float(reserved_ready_step.sum())  # ready reserved slot-seconds
        reserved_utilisation = (
            min(
                1.0,
                max(
                    0.0,
                    float(np.minimum(concurrency[this_step], slots_per_instance * reserved_ready_step).sum())
                    / reserved_slot_s,
                ),
            )
            if reserved_slot_s > 0
            else 0.0
        )
        step_s = step_end - step_start
        arrival_rate_rps = float(arrivals_cumsum[step_end] - arrivals_cumsum[step_start]) / step_s
        in_flight = max(
            0.0,
            float(concurrency_cumsum[step_end] - concurrency_cumsum[step_start]) / step_s
            + queued_mean / max(mean_service_s, _EPS),
        )
        if throttles:  # only the requests served are in flight
            in_flight = min(in_flight, float(step_capacity_slots.mean()))
        if on_step is not None:
            on_step(step_end)
        step_start = step_end

    # Phase 2: what follows from the reserved and on-demand timelines, vectorised over the whole trace
    capacity_slots = slots_per_instance * (reserved_ready + on_demand_cap)  # slots that exist or may start
    cold_requests = np.zeros(horizon_s)  # requests of each second that wait for a cold start
    # a cold request from j seconds ago holds a slot the ideal packing had freed if its service
    # would have ended by now: weight j by the share of service times shorter than j seconds
    held_share = np.array(
        [0.0, *(float(np.mean(demand.service_s < j)) for j in range(1, cold_start_whole_s))]
    )
    for _ in range(2):
        # requests still waiting for a cold start make the platform start more instances in a
        # burst than the ideal packing needs: one correcting pass
        cold_waiting = np.convolve(cold_requests, held_share)[:horizon_s]  # requests, per second
        on_demand_started = np.minimum(
            on_demand_for_peak + np.ceil(cold_waiting / slots_per_instance - _EPS), on_demand_cap
        )
        # an instance stays alive for the keep-alive after its last use, or while pre-warmed
        on_demand_alive = np.maximum(_sliding_max(on_demand_started, keep_alive_whole_s + 1), prewarmed_alive)
        on_demand_alive_before = np.concatenate(([0.0], on_demand_alive[:-1]))
        on_demand_starts = np.maximum(on_demand_started - on_demand_alive_before, 0)  # cold starts per second
        # ready = alive a cold start ago (or pre-warmed and ready)
        on_demand_ready = np.maximum(
            np.concatenate((np.zeros(cold_start_whole_s), on_demand_alive))[:horizon_s], prewarmed_ready
        )
        warm_slots = slots_per_instance * (reserved_ready + on_demand_ready)
        beyond_warm = np.maximum(np.minimum(demand.peak, capacity_slots) - warm_slots, 0)  # requests
        cold_requests = np.minimum(demand.arrivals, np.ceil(beyond_warm - _EPS))
    cold_start_began = (on_demand_starts > 0) | (np.diff(prewarmed_alive, prepend=0.0) > 0)  # per second
    if throttles:
        backlog_per_s = np.zeros(horizon_s)  # nothing queues: the excess is throttled in _latencies
    else:
        net = np.cumsum(concurrency - capacity_slots)
        backlog_per_s = np.maximum(
            net, net - np.minimum.accumulate(net)
        )  # fluid Lindley backlog, slot-seconds

    usage = Usage(
        reserved_alive=reserved_alive,
        reserved_busy=np.minimum(busy_needed, reserved_ready),
        on_demand_busy=on_demand_busy,
        on_demand_alive=on_demand_alive,
        on_demand_starts=int(on_demand_starts.sum()) + prewarm_starts,
        requests=int(arrivals_cumsum[-1]),
    )
    record = _latencies(
        trace,
        demand,
        usage,
        cold_start_s,
        cold_requests,
        cold_start_began,
        capacity_slots,
        backlog_per_s,
        throttles,
    )
    usage.requests = max(0, usage.requests - round(record.throttled))  # throttled invocations: no fee
    return record


def _latencies(
    trace: Trace,
    demand: Demand,
    usage: Usage,
    cold_start_s: float,
    cold_requests: np.ndarray,
    cold_start_began: np.ndarray,
    capacity_slots: np.ndarray,
    backlog_slot_s: np.ndarray,
    throttles: bool = False,
) -> RunRecord:
    """Latency of every group, split into its part that found a warm slot and its part that waited
    for a cold start. Within a second the latest arrivals are the ones that find slots full:

    - cold: the last ``cold_requests`` arrivals of a second; a cold start begins at the first of them
      and each waits what is left of it at its own arrival;
    - queued: arrivals beyond all slots (peak concurrency above capacity) wait their turn, one mean
      service time per slot-full ahead of them, plus the fluid backlog carried from earlier seconds;
      where the provider ``throttles``, those arrivals are throttled instead (no latency, counted).

    Per second (index = second since the trace's start): cold_requests, requests that wait for a cold
    start; cold_start_began, whether an on-demand cold start began; capacity_slots, slots that exist or
    may start; backlog_slot_s, the fluid backlog in slot-seconds. Per request group (one entry per
    trace row, like the arrays of :class:`Demand`): ``sec`` its second, ``n`` its request count.
    """
    sec = trace.second
    n = trace.count.astype(float)
    horizon = trace.duration_s
    # the group's requests that find the warm slots full: the last cold_requests of its second
    cold_n = np.clip(cold_requests[sec] - demand.after, 0, n)
    slots = np.maximum(capacity_slots, 1.0)
    waiting = np.minimum(demand.arrivals, np.ceil(np.maximum(demand.peak - capacity_slots, 0) - _EPS))
    # requests beyond all slots: the last `waiting` arrivals of a second (throttled where nothing queues)
    throttled_n = np.clip(waiting[sec] - demand.after, 0, n - cold_n) if throttles else np.zeros(len(n))
    warm_n = n - cold_n - throttled_n
    # when each second's cold start began: the arrival of its first cold request (else the second)
    first_cold = np.full(horizon, np.inf)
    has_first = (cold_n > 0) & (demand.after + n >= cold_requests[sec])
    np.minimum.at(first_cold, sec[has_first], demand.start[has_first])
    seconds = np.arange(horizon, dtype=float)
    # when the latest cold start at or before each second began, seconds since the trace's start
    marks = np.where(cold_start_began, np.where(np.isfinite(first_cold), first_cold, seconds), -1e18)
    last_start = np.maximum.accumulate(marks)
    # what is left of that cold start at the group's arrival, seconds
    cold_wait = np.clip(cold_start_s - (demand.start - last_start[sec]), 0, cold_start_s)
    # queueing: requests beyond all slots at the second's peak, in arrival order, plus the backlog
    position = np.clip(waiting[sec] - demand.after, 0, None) * (not throttles)  # requests ahead of it
    mean_service = demand.work_s / max(float(n.sum()), 1.0)
    queue_wait = (position * mean_service + backlog_slot_s[sec]) / slots[sec]  # seconds
    ttft_warm = queue_wait + demand.prefill_s
    ttft_cold = queue_wait + cold_wait + demand.prefill_s
    # the warm part of every group, then its cold part (weights warm_n, cold_n), seconds
    ttft = np.concatenate((ttft_warm, ttft_cold))
    e2e = (
        ttft
        + np.concatenate((demand.service_s, demand.service_s))
        - np.concatenate((demand.prefill_s, demand.prefill_s))
    )
    weights = np.concatenate((warm_n, cold_n))
    keep = weights > 0
    cold = np.concatenate((np.zeros(len(sec), dtype=bool), np.ones(len(sec), dtype=bool)))
    tokens_in = np.concatenate((trace.input_tokens, trace.input_tokens))[keep]
    tokens_out = np.concatenate((trace.output_tokens, trace.output_tokens))[keep]
    left = float(backlog_slot_s[-1]) if horizon else 0.0  # slot-seconds still queued at the end
    return RunRecord(
        usage=usage,
        ttft_s=ttft[keep],
        e2e_s=e2e[keep],
        weights=weights[keep],
        cold=cold[keep],
        rejected=0,
        offered=int(n.sum()),
        work_s=demand.work_s,
        second=np.concatenate((sec, sec))[keep],
        input_tokens=tokens_in,
        output_tokens=tokens_out,
        unfinished_requests=left / max(mean_service, _EPS),
        unfinished_work_s=left,
        backlog_peak=float(backlog_slot_s.max()) / max(mean_service, _EPS) if horizon else 0.0,
        throttled=float(throttled_n.sum()),
    )

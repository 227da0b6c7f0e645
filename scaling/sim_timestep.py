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
above all capacity queues (a fluid Lindley backlog in slot-seconds). The policy sees the same
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
) -> RunRecord:
    """Replay ``trace`` in 1-second steps under ``policy`` on ``provider``.

    control_step_s: seconds between policy decisions; default ``policy.interval_s``. Longer steps
        trade the policy's reaction time for speed (a constant policy can use the whole trace).
    on_step: called with the seconds simulated so far after every control step (progress bars).
    demand: the trace's :class:`Demand` when already computed (it does not depend on the policy).
    """
    if demand is None:
        demand = Demand(trace, service, provider.concurrency_per_instance)
    step = max(1, round(control_step_s if control_step_s is not None else policy.interval_s))
    return _run(trace, demand, policy, provider, step, on_step)


def _run(
    trace: Trace,
    demand: Demand,
    policy: Policy,
    provider: Provider,
    step: int,
    on_step: Callable[[int], None] | None,
) -> RunRecord:
    c = provider.concurrency_per_instance
    horizon = trace.duration_s
    cold_s = provider.cold_start_s
    cold_steps = math.ceil(cold_s)
    keep = round(provider.keep_alive_s)
    need, d = demand.busy, demand.concurrency
    arrivals_cum = np.concatenate(([0.0], np.cumsum(demand.arrivals)))
    d_cum = np.concatenate(([0.0], np.cumsum(d)))
    reserved_alive = np.zeros(horizon)
    reserved_ready = np.zeros(horizon)
    od_need = np.zeros(horizon)  # busy on-demand instances (sampled each second, billed)
    od_peak = np.zeros(horizon)  # on-demand instances the second's peak concurrency needed (started)
    peak_need = demand.busy_peak
    pw_alive = np.zeros(horizon)
    pw_ready = np.zeros(horizon)
    od_cap_at = np.zeros(horizon)  # on-demand instances allowed (platform quota and policy cap)

    state = policy.initial_state()
    ready_now = 0  # reserved instances ready
    warming: list[list[float]] = []  # [ready_at_second, count]
    od_starts_prewarm = 0
    backlog = 0.0  # slot-seconds of demand waiting (for the observation)
    mean_service = demand.work_s / max(float(arrivals_cum[-1]), 1.0)
    rate = in_flight = util = 0.0
    od_now = 0
    t0 = 0
    while t0 < horizon:
        now = float(t0)
        alive = ready_now + int(sum(n for _, n in warming))
        obs = Observation(
            t_s=trace.start_of_day_s + now,
            interval_s=float(step),
            hour_of_day=hour_of_day(trace.start_of_day_s + now),
            arrival_rate_rps=rate,
            in_flight=in_flight,
            reserved_instances=alive,
            on_demand_instances=od_now,
            reserved_utilisation=util,
            queue_length=int(backlog / max(mean_service, _EPS)),
        )
        decision, state = policy.decide(obs, state)
        # the reserved target: add warming instances, or remove warming ones first, then ready ones
        target = min(decision.reserved, provider.max_instances)
        if target > alive:
            warming.append([now + cold_s, float(target - alive)])
        elif target < alive:
            drop = alive - target
            while drop and warming:
                take = min(drop, int(warming[-1][1]))
                warming[-1][1] -= take
                drop -= take
                if warming[-1][1] == 0:
                    warming.pop()
            ready_now -= drop
        t1 = min(horizon, t0 + step)
        sl = slice(t0, t1)
        reserved_alive[sl] = target
        reserved_ready[sl] = ready_now
        still: list[list[float]] = []
        for ready_at, n in warming:
            first = max(t0, math.ceil(ready_at - _EPS))
            if first < t1:
                reserved_ready[first:t1] += n
                ready_now += int(n)
            else:
                still.append([ready_at, n])
        warming = still
        # on-demand instances the platform runs for the need above ready reserved capacity
        od_cap = 0 if not provider.on_demand else max(0, provider.max_instances - target)
        if decision.max_on_demand is not None:
            od_cap = min(od_cap, decision.max_on_demand)
        if decision.prewarm and od_cap:
            # pre-warm requests hold p on-demand instances alive (renewing idle ones, starting the rest)
            p = min(decision.prewarm, od_cap)
            od_starts_prewarm += max(0, p - od_now)
            end = min(horizon, t0 + cold_steps + keep)
            np.maximum(pw_alive[t0:end], p, out=pw_alive[t0:end])
            warm_end = min(end, t0 + cold_steps)
            np.maximum(pw_ready[t0:warm_end], min(p, od_now), out=pw_ready[t0:warm_end])
            np.maximum(pw_ready[warm_end:end], p, out=pw_ready[warm_end:end])
        od_cap_at[sl] = od_cap
        r_ready = reserved_ready[sl]
        if od_cap:
            np.clip(need[sl] - r_ready, 0, od_cap, out=od_need[sl])
            np.clip(np.maximum(peak_need[sl], need[sl]) - r_ready, 0, od_cap, out=od_peak[sl])
            od_now = int(max(od_peak[max(0, t1 - 1 - keep) : t1].max(), pw_alive[t1 - 1]))
        else:
            od_now = 0
        # observation for the next decision
        capacity = c * (r_ready + od_need[sl])
        excess = d[sl] - capacity
        if backlog > 0 or excess.max() > 0:
            net = np.cumsum(excess)  # Lindley: B_s = max(B_0 + S_s, S_s - min_{k<=s} S_k)
            queue = np.maximum(backlog + net, net - np.minimum.accumulate(net))
            backlog, queued_mean = float(queue[-1]), float(queue.mean())
        else:
            queued_mean = 0.0
        cap_r = c * float(r_ready.sum())
        util = min(1.0, max(0.0, float(np.minimum(d[sl], c * r_ready).sum()) / cap_r)) if cap_r > 0 else 0.0
        rate = float(arrivals_cum[t1] - arrivals_cum[t0]) / (t1 - t0)
        in_flight = max(0.0, float(d_cum[t1] - d_cum[t0]) / (t1 - t0) + queued_mean / max(mean_service, _EPS))
        if on_step is not None:
            on_step(t1)
        t0 = t1

    # what follows from the reserved and on-demand timelines, vectorised over the whole trace
    capacity = c * (reserved_ready + od_cap_at)  # slots that exist or may be started now
    cold_req = np.zeros(horizon)
    # a cold request from j seconds ago holds a slot the ideal packing had freed if its service
    # would have ended by now: weight j by the share of service times shorter than j seconds
    held = np.array([0.0, *(float(np.mean(demand.service_s < j)) for j in range(1, cold_steps))])
    for _ in range(2):
        # requests still waiting for a cold start make the platform start more instances in a
        # burst than the ideal packing needs: one correcting pass
        waiting = np.convolve(cold_req, held)[:horizon]
        od_started = np.minimum(od_peak + np.ceil(waiting / c - _EPS), od_cap_at)
        od_alive = np.maximum(_sliding_max(od_started, keep + 1), pw_alive)
        prev_alive = np.concatenate(([0.0], od_alive[:-1]))
        starts = np.maximum(od_started - prev_alive, 0)
        od_ready = np.maximum(np.concatenate((np.zeros(cold_steps), od_alive))[:horizon], pw_ready)
        warm_slots = c * (reserved_ready + od_ready)
        excess_warm = np.maximum(np.minimum(demand.peak, capacity) - warm_slots, 0)
        cold_req = np.minimum(demand.arrivals, np.ceil(excess_warm - _EPS))
    started = (starts > 0) | (np.diff(pw_alive, prepend=0.0) > 0)
    net = np.cumsum(d - capacity)
    backlog_slot_s = np.maximum(net, net - np.minimum.accumulate(net))

    usage = Usage(
        reserved_alive=reserved_alive,
        reserved_busy=np.minimum(need, reserved_ready),
        on_demand_busy=od_need,
        on_demand_alive=od_alive,
        on_demand_starts=int(starts.sum()) + od_starts_prewarm,
        requests=int(arrivals_cum[-1]),
    )
    return _latencies(trace, demand, usage, cold_s, cold_req, started, capacity, backlog_slot_s)


def _latencies(
    trace: Trace,
    demand: Demand,
    usage: Usage,
    cold_s: float,
    cold_req: np.ndarray,
    started: np.ndarray,
    capacity: np.ndarray,
    backlog_slot_s: np.ndarray,
) -> RunRecord:
    """Latency of every group, split into its part that found a warm slot and its part that waited
    for a cold start. Within a second the latest arrivals are the ones that find slots full:

    - cold: the last ``cold_req`` arrivals of a second; a cold start begins at the first of them
      and each waits what is left of it at its own arrival;
    - queued: arrivals beyond all slots (peak concurrency above capacity) wait their turn, one mean
      service time per slot-full ahead of them, plus the fluid backlog carried from earlier seconds.
    """
    sec = trace.second
    n = trace.count.astype(float)
    horizon = trace.duration_s
    cold_n = np.clip(cold_req[sec] - demand.after, 0, n)
    warm_n = n - cold_n
    # when each second's cold start began: the arrival of its first cold request (else the second)
    first_cold = np.full(horizon, np.inf)
    has_first = (cold_n > 0) & (demand.after + n >= cold_req[sec])
    np.minimum.at(first_cold, sec[has_first], demand.start[has_first])
    seconds = np.arange(horizon, dtype=float)
    marks = np.where(started, np.where(np.isfinite(first_cold), first_cold, seconds), -1e18)
    last_start = np.maximum.accumulate(marks)
    cold_wait = np.clip(cold_s - (demand.start - last_start[sec]), 0, cold_s)
    # queueing: requests beyond all slots at the second's peak, in arrival order, plus the backlog
    slots = np.maximum(capacity, 1.0)
    waiting = np.minimum(demand.arrivals, np.ceil(np.maximum(demand.peak - capacity, 0) - _EPS))
    position = np.clip(waiting[sec] - demand.after, 0, None)
    mean_service = demand.work_s / max(float(n.sum()), 1.0)
    queue_wait = (position * mean_service + backlog_slot_s[sec]) / slots[sec]
    ttft_warm = queue_wait + demand.prefill_s
    ttft_cold = queue_wait + cold_wait + demand.prefill_s
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
    )

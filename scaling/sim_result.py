"""What one simulated run produced, and the summary figures both fidelities report the same way."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scaling.providers import Usage

SECONDS_PER_HOUR = 3600


def hour_of_day(t_s: float) -> int:
    """Hour of day (0-23) of ``t_s`` seconds after a midnight."""
    return int(t_s // SECONDS_PER_HOUR) % 24


def weighted_percentile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values`` where value i counts ``weights[i]`` times
    (inverted CDF: the smallest value with at least q % of the weight at or below it)."""
    if len(values) == 0 or weights.sum() <= 0:
        return float("nan")
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order])
    k = int(np.searchsorted(cum, q / 100 * cum[-1] - 1e-9 * cum[-1]))
    return float(values[order][min(k, len(order) - 1)])


@dataclass
class RunRecord:
    """A run: its usage (for billing) and its latencies.

    ttft_s / e2e_s: time to first token and end-to-end latency of served request groups, seconds.
    weights: requests in each group (1 per request at request-level fidelity).
    cold: whether the group waited for a cold start.
    rejected / offered: requests refused by admission / all requests offered.
    work_s: service seconds of all served requests (slot-seconds), for the oracle.
    second: the second (from the trace start) each group arrived in, for latency over time.
    in_system_area_s: request-seconds spent in the system (queued or served), integrated over time by
        the request-level simulator's clock (Little's L x duration); ``None`` from the time-step model.
    input_tokens / output_tokens: tokens per request of each group (for length-scaled SLOs and TPOT).
    unfinished_requests / unfinished_work_s: requests (and their slot-seconds of service) still
        waiting for a slot when the trace ends: the run did not bill that work.
    backlog_peak: most requests waiting for a slot at once.
    throttled: requests rejected (429) because every slot was busy on a platform that does not queue
        (Lambda Managed Instances); they count as missing every latency target.
    """

    usage: Usage
    ttft_s: np.ndarray
    e2e_s: np.ndarray
    weights: np.ndarray
    cold: np.ndarray
    rejected: int
    offered: int
    work_s: float
    second: np.ndarray
    in_system_area_s: float | None = None
    input_tokens: np.ndarray | None = None
    output_tokens: np.ndarray | None = None
    unfinished_requests: float = 0.0
    unfinished_work_s: float = 0.0
    backlog_peak: float = 0.0
    throttled: float = 0.0

    def percentile_ttft(self, q: float) -> float:
        """The q-th percentile of TTFT over served and throttled requests (a throttled one: never)."""
        if self.throttled <= 0:
            return weighted_percentile(self.ttft_s, self.weights, q)
        return weighted_percentile(np.append(self.ttft_s, np.inf), np.append(self.weights, self.throttled), q)

    @property
    def throttled_share(self) -> float:
        """Throttled requests / requests offered (served + throttled + rejected by admission)."""
        return self.throttled / self.offered if self.offered else 0.0

    def answered_share(self) -> float:
        """Served requests / served + throttled: scales a share of served requests to all of them."""
        total = self.served + self.throttled
        return self.served / total if total else 1.0

    def percentile_e2e(self, q: float) -> float:
        return weighted_percentile(self.e2e_s, self.weights, q)

    @property
    def served(self) -> float:
        return float(self.weights.sum())

    def cold_fraction(self) -> float:
        return float(self.weights[self.cold].sum() / self.served) if self.served else 0.0

    def slo_attainment(self, slo_s: float) -> float:
        """Share of served requests with TTFT <= ``slo_s``."""
        return float(self.weights[self.ttft_s <= slo_s].sum() / self.served) if self.served else 1.0

    def share_within(self, ok: np.ndarray) -> float:
        """Share of served requests (weighted) for which ``ok`` (one bool per group) holds."""
        return float(self.weights[ok].sum() / self.served) if self.served else 1.0

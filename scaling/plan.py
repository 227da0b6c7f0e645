"""The hybrid rule for reserved (provisioned) capacity, and its hourly schedule as cloud crons.

Little's law: mean concurrency L = arrival rate lambda (req/s) x time in system W (s). Reserved
instances for an hour = ceil(lambda_h x W_p95 / c x (1 + headroom)), clamped to [min, max], where c
is the number of concurrent requests one instance serves. The P95 in place of the mean time in
system is the seed's margin for variance. With a daily request count N, lambda = N / 86400.

On Lambda Managed Instances (LMI) the floor ``MinExecutionEnvironments`` has a second job: the
platform scales by itself but absorbs only traffic that at most doubles within five minutes, so the
floor for an hour is also at least what keeps the next five minutes' demand within one doubling of
the capacity in place: ceil(lambda_5min x W_p95 / (2 c)), lambda_5min being the highest 5-minute rate
the hour (or the next hour, which its last five minutes face) sees. :func:`lmi_floor_terms` gives both
terms per hour and which binds (scaling/README.md, "Lambda GPU (Managed Instances)").

Pure: no clock, no I/O. Shared by ``llmfn plan``, the simulator's hybrid policy, the scaler and
``infra/``, so a deployed schedule is exactly the planned one.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path

from core.errors import ScalingError
from scaling.bounds import ReservedBounds

HOURS_PER_DAY = 24
DEFAULT_P95_LATENCY_S = 0.76
"""Time in system at P95 the hybrid rule plans with unless told, seconds: 2 x the ~380 ms typical request
(docs/sources.md), slowed ~2x by batching (``HybridConfig.p95_latency_s``, ``llmfn plan --p95``)."""
_EPS = 1e-9  # tolerance so that 2.0000000001 instances does not round up to 3


@dataclass(frozen=True)
class ReservedRule:
    """Parameters of the hybrid rule.

    p95_latency_s: time in system at P95, seconds (queueing + cold start + service).
    concurrency_per_instance: concurrent requests one instance serves (c >= 1).
    headroom: fractional margin over the Little's-law concurrency (0.2 = +20 %).
    min_reserved / max_reserved: bounds on the reserved count.
    min_utilisation: reserve an instance only if its expected busy share exceeds this. With y
        instances' worth of load (the Little's-law figure above, headroom included) the k-th
        instance is busy min(1, y - k + 1) of the time, so ceil(y - min_utilisation) instances are
        reserved. 0 (the default) is plain ceil(y). Set it to the provider's break-even share, where
        a reserved instance costs what on-demand time would (Lambda: 0.6; SCF, whose busy reserved
        second costs the on-demand price and whose idle one costs extra: 1.0, reserving only
        the load that is always there).
    """

    p95_latency_s: float
    concurrency_per_instance: int = 1
    headroom: float = 0.2
    min_reserved: int = 0
    max_reserved: int = 50
    min_utilisation: float = 0.0

    def __post_init__(self) -> None:
        if not (self.p95_latency_s > 0 and math.isfinite(self.p95_latency_s)):
            raise ScalingError(
                f"p95_latency_s must be a positive number of seconds, got {self.p95_latency_s!r}"
            )
        if self.concurrency_per_instance < 1:
            raise ScalingError(
                f"concurrency_per_instance must be >= 1, got {self.concurrency_per_instance!r}"
            )
        if not (self.headroom >= 0 and math.isfinite(self.headroom)):
            raise ScalingError(
                f"must be >= 0 (a fraction, 0.2 = 20 %), got {self.headroom!r}",
                field="headroom",
                value=self.headroom,
            )
        if not 0 <= self.min_utilisation <= 1:
            raise ScalingError(
                f"min_utilisation must be in [0, 1] (a busy share), got {self.min_utilisation!r}"
            )
        self.bounds  # noqa: B018 (checks min_reserved / max_reserved: scaling.bounds)

    @cached_property
    def bounds(self) -> ReservedBounds:
        """``min_reserved`` / ``max_reserved`` as the one bounds type (checked, with ``clamp``)."""
        return ReservedBounds(self.min_reserved, self.max_reserved)


def littles_law_concurrency(rate_rps: float, time_in_system_s: float) -> float:
    """Mean number of requests in the system: L = lambda (req/s) x W (s)."""
    if rate_rps < 0 or time_in_system_s < 0:
        raise ScalingError("rate and time in system must be >= 0")
    return rate_rps * time_in_system_s


def instances_for_load(load: float, min_utilisation: float = 0.0) -> int:
    """Instances to reserve for ``load`` instances' worth of concurrency: those whose expected busy
    share min(1, load - k + 1) exceeds ``min_utilisation`` (0: ceil(load))."""
    return math.ceil(load - min_utilisation - _EPS) if load > min_utilisation + _EPS else 0


def reserved_instances(rate_rps: float, rule: ReservedRule) -> int:
    """Reserved instances for a mean arrival rate (req/s) under ``rule``."""
    if not (rate_rps >= 0 and math.isfinite(rate_rps)):
        raise ScalingError(f"rate must be a finite number of requests per second >= 0, got {rate_rps!r}")
    raw = littles_law_concurrency(rate_rps, rule.p95_latency_s) / rule.concurrency_per_instance
    needed = instances_for_load(raw * (1.0 + rule.headroom), rule.min_utilisation)
    return rule.bounds.clamp(needed)


def hourly_schedule(rates_by_hour: Sequence[float], rule: ReservedRule) -> list[int]:
    """Reserved instances for each hour of day from 24 mean rates (req/s), hour 0 first."""
    if len(rates_by_hour) != HOURS_PER_DAY:
        raise ScalingError(f"a rate profile needs exactly 24 hourly rates, got {len(rates_by_hour)}")
    return [reserved_instances(float(r), rule) for r in rates_by_hour]


def break_even_counts(
    busy_per_s: Sequence[float], hour_per_s: Sequence[int], min_utilisation: float
) -> list[int]:
    """Per hour of day, the instances whose measured busy share pays for reserving them: the k-th
    instance (packed first-fit) is busy in the seconds where at least k are, so k counts when the
    share of the hour's seconds with >= k busy exceeds ``min_utilisation``. Little's law with the
    fluid share min(1, y - k + 1) overstates it on bursty traffic (a mean of 1.6 busy instances can
    keep the first one busy only 30 % of the time); the simulator caps the hourly base with this.
    ``busy_per_s``: busy instances each second; ``hour_per_s``: each second's hour of day."""
    import numpy as np  # here, not at import: the scaler's package needs only the rule above

    busy = np.ceil(np.asarray(busy_per_s, dtype=float) - _EPS).astype(np.int64)
    hours = np.asarray(hour_per_s, dtype=np.int64)
    counts = []
    for h in range(HOURS_PER_DAY):
        in_hour = busy[hours == h]
        if len(in_hour) == 0:
            counts.append(0)
            continue
        at_least = np.cumsum(np.bincount(in_hour, minlength=1)[::-1])[::-1] / len(in_hour)  # share >= k
        counts.append(int((at_least[1:] > min_utilisation + _EPS).sum()))
    return counts


LMI_BURST_GROWTH = 2.0
"""Growth LMI absorbs within five minutes: "If your traffic more than doubles within 5 minutes, you
may see throttles" (AWS Lambda docs, "Scaling Lambda Managed Instances")."""


@dataclass(frozen=True)
class LmiFloorHour:
    """One hour of an LMI floor. rate_rps: the hour's mean rate; burst_rps: the highest 5-minute rate
    its next five minutes can see (req/s); littles_law / doubling: the two terms, environments;
    floor: the larger (clamped to the rule's bounds); binds: ``little``, ``doubling`` or ``both``."""

    hour: int
    rate_rps: float
    burst_rps: float
    littles_law: int
    doubling: int
    floor: int
    binds: str


def lmi_floor_terms(
    rates_by_hour: Sequence[float],
    rule: ReservedRule,
    burst_rates_by_hour: Sequence[float] | None = None,
) -> list[LmiFloorHour]:
    """The LMI floor of each hour of day: max(Little's law, the doubling term); see the module
    docstring. ``burst_rates_by_hour``: each hour's highest 5-minute rate (req/s, from a trace:
    :func:`scaling.forecasting.burst_rates_by_hour`); ``None`` = the hourly means only, so the term
    binds where the next hour more than doubles."""
    rates = [float(r) for r in rates_by_hour]
    if len(rates) != HOURS_PER_DAY:
        raise ScalingError(f"a rate profile needs exactly 24 hourly rates, got {len(rates)}")
    bursts = rates if burst_rates_by_hour is None else [float(r) for r in burst_rates_by_hour]
    if len(bursts) != HOURS_PER_DAY or any(not (b >= 0 and math.isfinite(b)) for b in bursts):
        raise ScalingError(f"burst rates need 24 finite rates >= 0 (req/s), got {list(bursts)[:30]!r}")
    hours = []
    for h in range(HOURS_PER_DAY):
        burst = max(bursts[h], rates[h], rates[(h + 1) % HOURS_PER_DAY])  # its last 5 min face the next hour
        little = reserved_instances(rates[h], rule)
        needed = math.ceil(
            littles_law_concurrency(burst, rule.p95_latency_s)
            / (rule.concurrency_per_instance * LMI_BURST_GROWTH)
            - _EPS
        )
        doubling = rule.bounds.clamp(needed)
        binds = "both" if little == doubling else "little" if little > doubling else "doubling"
        hours.append(LmiFloorHour(h, rates[h], burst, little, doubling, max(little, doubling), binds))
    return hours


def lmi_floor_schedule(
    rates_by_hour: Sequence[float], rule: ReservedRule, burst_rates_by_hour: Sequence[float] | None = None
) -> list[int]:
    """MinExecutionEnvironments for each hour of day (:func:`lmi_floor_terms`' floors), hour 0 first:
    what ``llmfn plan --provider lambda-gpu`` prints, the GPU stack deploys and the scaler moves."""
    return [h.floor for h in lmi_floor_terms(rates_by_hour, rule, burst_rates_by_hour)]


@dataclass(frozen=True)
class ScheduleChange:
    """From ``hour`` (0-23, in the profile's time zone) on, keep ``instances`` reserved."""

    hour: int
    instances: int


def schedule_changes(schedule: Sequence[int]) -> list[ScheduleChange]:
    """The hours where the reserved count changes, read cyclically over the day.

    A constant schedule gives one change at hour 0. Otherwise hour h is listed when its count
    differs from hour h-1 (hour 0 compared with hour 23), so the crons repeat cleanly every day.
    """
    if len(schedule) != HOURS_PER_DAY:
        raise ScalingError(f"a schedule needs exactly 24 hourly counts, got {len(schedule)}")
    if len(set(schedule)) == 1:
        return [ScheduleChange(0, int(schedule[0]))]
    return [
        ScheduleChange(h, int(schedule[h]))
        for h in range(HOURS_PER_DAY)
        if schedule[h] != schedule[h - 1]  # h - 1 == -1 wraps to hour 23
    ]


def _utc_hour(hour: int, utc_offset_hours: int) -> int:
    if not -12 <= utc_offset_hours <= 14:
        raise ScalingError(f"utc_offset_hours must be in [-12, 14], got {utc_offset_hours!r}")
    return (hour - utc_offset_hours) % HOURS_PER_DAY


def scf_cron(hour: int, utc_offset_hours: int = 0) -> str:
    """SCF ``TriggerActions`` cron, 7 fields ``sec min hour day month week year``, in UTC."""
    return f"0 0 {_utc_hour(hour, utc_offset_hours)} * * * *"


def aws_cron(hour: int, utc_offset_hours: int = 0) -> str:
    """Application Auto Scaling scheduled-action expression ``cron(min hour dom month dow year)``, UTC."""
    return f"cron(0 {_utc_hour(hour, utc_offset_hours)} * * ? *)"


def read_rate_profile(path: str | Path) -> list[float]:
    """Read 24 hourly mean rates (req/s, hour 0 first) from a rate-profile file.

    Formats: JSON, either a list of 24 numbers or ``{"rates_by_hour": [24 numbers]}``; or CSV with
    a header ``hour,rate_rps`` and one row per hour 0-23 (any order, each hour exactly once).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"rate profile not found: {path}")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ScalingError(f"{path}: not JSON ({exc})") from None
        rates = data.get("rates_by_hour") if isinstance(data, dict) else data
        if not isinstance(rates, list) or not all(isinstance(r, (int, float)) for r in rates):
            raise ScalingError(f'{path}: want a list of 24 numbers or {{"rates_by_hour": [...]}}')
        values = [float(r) for r in rates]
    else:
        rows = list(csv.reader(io.StringIO(text)))
        if not rows or [h.strip() for h in rows[0]] != ["hour", "rate_rps"]:
            raise ScalingError(f"{path}:1: want the header 'hour,rate_rps'")
        by_hour: dict[int, float] = {}
        for line, row in enumerate(rows[1:], start=2):
            if not row:
                continue
            try:
                hour, rate = int(row[0]), float(row[1])
            except (ValueError, IndexError):
                raise ScalingError(
                    f"{path}:{line}: want 'hour,rate_rps' with hour 0-23, got {row!r}"
                ) from None
            if not 0 <= hour < HOURS_PER_DAY or hour in by_hour:
                raise ScalingError(f"{path}:{line}: hour must be 0-23 and appear once, got {hour}")
            by_hour[hour] = rate
        if len(by_hour) != HOURS_PER_DAY:
            raise ScalingError(f"{path}: need all 24 hours, got {len(by_hour)}")
        values = [by_hour[h] for h in range(HOURS_PER_DAY)]
    if len(values) != HOURS_PER_DAY or any(not (v >= 0 and math.isfinite(v)) for v in values):
        raise ScalingError(f"{path}: need 24 finite rates >= 0 (req/s), got {len(values)} values")
    return values


def schedule_plan(
    rates_by_hour: Sequence[float],
    rule: ReservedRule,
    utc_offset_hours: int = 0,
    schedule: Sequence[int] | None = None,
) -> dict:
    """The schedule as JSON-able data: per-hour rates and counts, and each change with its crons.
    ``schedule``: the counts when not the plain rule's (the LMI floor's)."""
    schedule = list(schedule) if schedule is not None else hourly_schedule(rates_by_hour, rule)
    return {
        "rule": asdict(rule),
        "utc_offset_hours": utc_offset_hours,
        "rates_by_hour": [float(r) for r in rates_by_hour],
        "reserved_by_hour": schedule,
        "changes": [
            {
                "hour": change.hour,
                "instances": change.instances,
                "scf_cron": scf_cron(change.hour, utc_offset_hours),
                "aws_cron": aws_cron(change.hour, utc_offset_hours),
            }
            for change in schedule_changes(schedule)
        ],
    }

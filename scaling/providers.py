"""Providers: what the platform does (cold start, keep-alive, quotas, per-instance concurrency) and
how it bills (SCF, Lambda, Lambda GPU functions on Managed Instances, a fixed GPU server pool). Prices are configuration; every default
names its source. Policies never see any of this: it belongs to the platform, not to the user.

Both simulators describe a run as :class:`Usage` (per-second instance counts plus totals), and
:func:`cost` prices it, so the two fidelities share one billing code path.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from core.errors import ScalingError
from scaling.plan import HOURS_PER_DAY

Billing = Literal["scf", "lambda", "lambda-gpu", "fixed"]


@dataclass(frozen=True)
class Prices:
    """USD prices. Only the fields of the provider's billing model are used.

    active_per_gb_s / idle_per_gb_s (SCF): no public Tencent GPU price exists, so the defaults are
        Alibaba Function Compute's Tesla GPU list: 2.1 CU active and 0.5 CU idle per GB-s at
        USD 0.000020 per CU (docs/sources.md) = 0.000042 / 0.00001 USD per GB-s.
    provisioned_per_gb_s, provisioned_duration_per_gb_s, on_demand_per_gb_s, per_million_requests
        (Lambda, us-east-1 x86, docs/sources.md): 0.0000041667, 0.0000097222, 0.0000166667, 0.20.
    server_per_hour (fixed pool): AWS g5.xlarge (1x A10G) on-demand list price, us-east-1, 1.006.
    on_demand_idle_per_gb_s (SCF billing): idle-but-warm on-demand instances; 0 on SCF and Lambda,
        where that idle time is free; GPU "idle mode" platforms bill it (Alibaba FC: 0.5 CU x
        0.000020 = 0.00001 USD per GB-s).
    instance_per_hour, management_fee, environments_per_instance, instance_discount (Lambda GPU on
        Managed Instances): Lambda bills the EC2 instances of the capacity provider at EC2 prices plus
        a "Compute management fee: 15% premium on the EC2 on-demand instance price", and "$0.20 per
        million requests" (aws.amazon.com/lambda/pricing, "Lambda Managed Instances"; AWS News Blog,
        30 Nov 2025). instance_per_hour is the ON-DEMAND price (default g6.xlarge: 1x NVIDIA L4,
        24 GB, us-east-1, 0.8048 USD/h; one 24 GiB-accelerator execution environment per instance).
        Savings Plans / Reserved Instances go into instance_discount (fraction off the instance's
        on-demand price): they lower the instance part only, since the fee is charged on the
        on-demand price.
    """

    active_per_gb_s: float = 2.1 * 0.000020
    idle_per_gb_s: float = 0.5 * 0.000020
    provisioned_per_gb_s: float = 0.0000041667
    provisioned_duration_per_gb_s: float = 0.0000097222
    on_demand_per_gb_s: float = 0.0000166667
    per_million_requests: float = 0.20
    server_per_hour: float = 1.006
    on_demand_idle_per_gb_s: float = 0.0
    instance_per_hour: float = 0.8048
    management_fee: float = 0.15
    environments_per_instance: int = 1
    instance_discount: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.instance_discount < 1.0:
            raise ScalingError(
                f"prices instance_discount must be a fraction in [0, 1), got {self.instance_discount!r}"
            )

    def instance_per_s(self) -> float:
        """Lambda GPU: USD per Managed Instance-second (the EC2 on-demand price less any Savings Plan /
        RI discount, plus the management fee on the on-demand price)."""
        return self.instance_per_hour * (1 - self.instance_discount + self.management_fee) / 3600

    def instances_for(self, environments: np.ndarray | float) -> np.ndarray:
        """Instances that hold ``environments`` execution environments (packed, rounded up)."""
        return np.ceil(np.asarray(environments, dtype=float) / self.environments_per_instance - 1e-9)

    def environment_per_s(self) -> float:
        """Lambda GPU: USD per execution-environment-second (the instance share, less any Savings Plan /
        RI discount, plus the management fee on the on-demand price)."""
        per_instance_hour = self.instance_per_hour * (1 - self.instance_discount + self.management_fee)
        return per_instance_hour / self.environments_per_instance / 3600


@dataclass(frozen=True)
class LmiScaling:
    """How Lambda Managed Instances scale a GPU function's execution environments by themselves
    (scaling/README.md, "Lambda GPU (Managed Instances)"; each default's source is in
    ``scaling.profile``'s table, printed by ``llmfn simulate --show-profile``).

    target_utilisation: the share of an environment's slots (PerExecutionEnvironmentMaxConcurrency)
        the platform keeps busy; it adds environments above it and removes them below (0.4 = the
        documented default GPU utilisation target).
    doubling_s: capacity grows at most 2x per ``doubling_s`` seconds (300: traffic that more than
        doubles within 5 minutes is throttled).
    scale_in_per_min: share of the environments above the target that may go per minute (gradual
        scale-down; the rate is not published).
    from_zero_s: seconds from traffic (or a raised floor) arriving at zero environments to the first
        one serving (several minutes while GPU instances are provisioned).
    idle_to_zero_s: with a floor of 0, the last environment goes after this many seconds without
        traffic (scale-down is gradual; the figure is not published: 900 s assumed).
    publish_environments: environments a freshly published version starts with (three).
    """

    target_utilisation: float = 0.4
    doubling_s: float = 300.0
    scale_in_per_min: float = 0.1
    from_zero_s: float = 300.0
    idle_to_zero_s: float = 900.0
    publish_environments: int = 3

    def __post_init__(self) -> None:
        checks = {
            "target_utilisation": 0 < self.target_utilisation <= 1,
            "doubling_s": self.doubling_s > 0,
            "scale_in_per_min": 0 < self.scale_in_per_min <= 1,
            "from_zero_s": 0 <= self.from_zero_s <= 86_400,
            "idle_to_zero_s": 0 <= self.idle_to_zero_s <= 86_400,
            "publish_environments": self.publish_environments >= 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ScalingError(
                    f"lmi {name} out of range, got {getattr(self, name)!r}",
                    field=f"lmi.{name}",
                    value=getattr(self, name),
                    allowed="target_utilisation in (0, 1], doubling_s > 0, scale_in_per_min in (0, 1], "
                    "from_zero_s and idle_to_zero_s in [0, 86400], publish_environments >= 0",
                )


def environments_per_instance(
    instance_gpu_memory_gib: float,
    accelerator_memory_gib: float,
    instance_vcpus: float,
    environment_vcpus: float,
    instance_memory_gib: float,
    memory_gib_per_vcpu: float,
) -> int:
    """Execution environments one Managed Instance holds: each gets AcceleratorMemorySize of GPU
    memory, its vCPUs and vCPUs x ExecutionEnvironmentMemoryGiBPerVCpu of memory, so the count is
    the least of the three quotients (at least 0). g6.xlarge (1x L4 24 GB, 4 vCPU, 16 GiB) with
    24 GiB, 1 vCPU and 2 GiB/vCPU: min(1, 4, 8) = 1; with 12 GiB of accelerator memory: 2."""
    if min(accelerator_memory_gib, environment_vcpus, memory_gib_per_vcpu) <= 0:
        raise ScalingError(
            "accelerator memory, vCPUs and memory per vCPU of an environment must be > 0",
            field="environments_per_instance",
        )
    return max(
        0,
        min(
            math.floor(instance_gpu_memory_gib / accelerator_memory_gib + 1e-9),
            math.floor(instance_vcpus / environment_vcpus + 1e-9),
            math.floor(instance_memory_gib / (environment_vcpus * memory_gib_per_vcpu) + 1e-9),
        ),
    )


@dataclass(frozen=True)
class Provider:
    """Platform behaviour and billing.

    concurrency_per_instance: requests one instance serves at once (SCF multi-concurrency 8 =
        docs/sources.md's batch 8; a Lambda execution environment serves 1).
    cold_start_s: 2.8 s, the staged preload; 5.4 s without it (docs/sources.md, seeds/000 and 001).
    keep_alive_s: how long the platform keeps an idle on-demand instance warm (not public for SCF
        or Lambda; 600 s = docs/sources.md's seeds/002 "idle 10 min -> zero").
    max_instances: quota on reserved + on-demand instances (SCF: the function's concurrency quota).
    on_demand: whether the platform starts instances on demand (False for a server pool).
    memory_gb: billed memory per instance (16 GB GPU slice: 7.8 GB at batch 8 + KV room; Lambda's
        maximum is 10 GB).
    bills_init: whether an on-demand instance's start-up time is billed (AWS bills the INIT phase
        since 1 Aug 2025; SCF does not publish it, default False).
    idle_sample_s: SCF samples concurrency every 10 s for idle provisioned billing.
    provisioned_rounding_s: Lambda rounds provisioned periods up to 5 minutes.
    released_stay_warm: whether an instance whose reserved capacity is released stays on as a warm
        on-demand instance until its keep-alive ends (``llmfn dev``'s pool demotes it so) instead
        of stopping at once. Only the request-level simulator models it.
    lmi: Lambda Managed Instances' own scaling (:class:`LmiScaling`) for ``billing="lambda-gpu"``:
        the platform runs execution environments above the policy's floor, and a request finding
        every slot busy is throttled (429), never queued. ``None`` elsewhere.
    """

    name: str
    billing: Billing
    concurrency_per_instance: int
    cold_start_s: float = 2.8
    keep_alive_s: float = 600.0
    max_instances: int = 1000
    on_demand: bool = True
    memory_gb: float = 16.0
    bills_init: bool = False
    idle_sample_s: int = 10
    provisioned_rounding_s: int = 300
    released_stay_warm: bool = False
    prices: Prices = field(default_factory=Prices)
    lmi: LmiScaling | None = None

    def __post_init__(self) -> None:
        if self.concurrency_per_instance < 1:
            raise ScalingError(
                f"provider concurrency_per_instance must be >= 1, got {self.concurrency_per_instance!r}"
            )
        if self.cold_start_s < 0 or self.keep_alive_s < 0 or self.memory_gb <= 0 or self.max_instances < 1:
            raise ScalingError(
                "provider cold_start_s / keep_alive_s must be >= 0, memory_gb > 0, max_instances >= 1"
            )

    def busy_price_per_instance_s(self) -> float:
        """USD for the cheapest busy instance-second the provider sells: SCF's active rate; on Lambda
        a fully used provisioned second (provisioned + duration, below the on-demand rate); a server."""
        if self.billing == "scf":
            return self.prices.active_per_gb_s * self.memory_gb
        if self.billing == "lambda":
            return (
                self.prices.provisioned_per_gb_s + self.prices.provisioned_duration_per_gb_s
            ) * self.memory_gb
        if self.billing == "lambda-gpu":
            return self.prices.environment_per_s()
        return self.prices.server_per_hour / 3600

    def reserved_break_even(self) -> float:
        """The busy share above which a reserved instance-second costs no more than buying that busy
        time on demand: Lambda provisioned / (on-demand - duration) = 0.6; SCF 1.0 (a busy reserved
        second costs the on-demand price and an idle one extra, so only always-busy capacity breaks
        even); a server pool and Lambda GPU 0 (the floor is all they have: Managed Instances start
        no execution environment for a request)."""
        p = self.prices
        if self.billing == "lambda":
            return min(
                1.0,
                p.provisioned_per_gb_s / max(p.on_demand_per_gb_s - p.provisioned_duration_per_gb_s, 1e-18),
            )
        return 1.0 if self.billing == "scf" else 0.0  # fixed, lambda-gpu

    @property
    def throttles(self) -> bool:
        """Whether a request that finds every slot busy is rejected (429) rather than queued."""
        return self.lmi is not None

    def max_environments(self) -> int:
        """Most instances the simulators run: ``max_instances``, or on Lambda GPU the capacity
        provider's ``maxInstances`` x execution environments packed on one instance."""
        return self.max_instances * (self.prices.environments_per_instance if self.lmi is not None else 1)

    def with_overrides(self, **changes: object) -> Provider:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)


PROVIDERS: dict[str, Provider] = {
    "scf": Provider(name="scf", billing="scf", concurrency_per_instance=8),
    "lambda": Provider(
        name="lambda", billing="lambda", concurrency_per_instance=1, memory_gb=10.0, bills_init=True
    ),
    "fixed": Provider(
        name="fixed", billing="fixed", concurrency_per_instance=8, on_demand=False, memory_gb=24.0
    ),
    # Lambda GPU functions on Managed Instances: an execution environment serves many requests
    # (PerExecutionEnvironmentMaxConcurrency; 8 = docs/sources.md's batch 8); the policy's reserved count is
    # the floor MinExecutionEnvironments, and the platform's own asynchronous scaling (lmi) runs the
    # environments above it: "Lambda Managed Instances don't scale when invocations arrive and don't
    # support cold starts" (AWS Lambda docs, "Scaling Lambda Managed Instances"), so on_demand=False
    # and a request finding every slot busy is throttled. cold_start_s: how long a new environment
    # takes to serve (60 s assumed: image pull, preload; AWS publishes no figure).
    "lambda-gpu": Provider(
        name="lambda-gpu",
        billing="lambda-gpu",
        concurrency_per_instance=8,
        cold_start_s=60.0,
        on_demand=False,
        memory_gb=24.0,
        lmi=LmiScaling(),
    ),
}


def get_provider(name: str) -> Provider:
    """The provider called ``name`` (``scf``, ``lambda``, ``fixed`` or ``lambda-gpu``)."""
    if name not in PROVIDERS:
        raise ScalingError(f"unknown provider {name!r}; choose one of: {', '.join(PROVIDERS)}")
    return PROVIDERS[name]


@dataclass(frozen=True)
class FloorCost:
    """What a day of a reserved floor of execution environments costs on Lambda GPU (Managed Instances).

    environment_hours_per_day: environment-hours a day, the floor of each hour of day x 1 h.
    environment_price_per_hour: USD per environment-hour (:meth:`Prices.environment_per_s` x 3600:
        the instance share less any Savings Plan / RI discount, plus the 15 % management fee).
    estimated_cost_per_day: USD a day for the floor, rounded to 4 decimals (1/100 cent): the instances
        that hold each hour's environments (packed, ``environments_per_instance``) x 1 h. Request
        charges and Lambda's own scale-out above the floor are not included.
    """

    environment_hours_per_day: float
    environment_price_per_hour: float
    estimated_cost_per_day: float


def floor_cost_per_day(floor_by_hour: Sequence[int], provider: Provider) -> FloorCost:
    """The daily environment-hours and cost of ``floor_by_hour`` (24 MinExecutionEnvironments counts,
    hour 0 first) at ``provider``'s prices; the one computation ``llmfn plan --provider lambda-gpu``
    prints and the GPU stack exports (``reservedEnvironmentHoursPerDay``, ``estimatedReservedCostPerDay``)."""
    if provider.billing != "lambda-gpu":
        raise ScalingError(
            f"must be a provider billed per execution environment (lambda-gpu) for a floor's cost, "
            f"got {provider.name!r}",
            field="provider",
            value=provider.name,
            allowed="lambda-gpu",
        )
    if len(floor_by_hour) != HOURS_PER_DAY or any(n < 0 for n in floor_by_hour):
        raise ScalingError(f"a floor needs 24 hourly counts >= 0, got {list(floor_by_hour)!r}")
    hours = float(sum(floor_by_hour))
    per_hour = provider.prices.environment_per_s() * 3600
    instance_hours = float(provider.prices.instances_for(np.asarray(floor_by_hour, dtype=float)).sum())
    return FloorCost(hours, per_hour, round(instance_hours * provider.prices.instance_per_s() * 3600, 4))


@dataclass
class Usage:
    """What a run used, per second (index = second from the trace start) and in total.

    reserved_alive: reserved instances existing (warming, ready or draining).
    reserved_busy / on_demand_busy: instances with at least one request in service.
    on_demand_alive: on-demand instances existing (warming, busy or idle-warm).
    on_demand_starts: on-demand cold starts (pre-warms included); requests: admitted requests.
    """

    reserved_alive: np.ndarray
    reserved_busy: np.ndarray
    on_demand_busy: np.ndarray
    on_demand_alive: np.ndarray
    on_demand_starts: int
    requests: int


@dataclass(frozen=True)
class Cost:
    """USD by component; ``total`` is their sum."""

    busy: float
    reserved_idle: float
    init: float
    on_demand_idle: float
    requests: float

    @property
    def total(self) -> float:
        return self.busy + self.reserved_idle + self.init + self.on_demand_idle + self.requests


def cost(usage: Usage, provider: Provider) -> Cost:
    """Price ``usage`` with ``provider``'s billing model."""
    p, mem = provider.prices, provider.memory_gb
    reserved_idle_now = np.maximum(usage.reserved_alive - usage.reserved_busy, 0)
    init_s = usage.on_demand_starts * provider.cold_start_s if provider.bills_init else 0.0
    if provider.billing == "scf":
        sampled = reserved_idle_now[:: provider.idle_sample_s].sum() * provider.idle_sample_s
        busy_s = usage.reserved_busy.sum() + usage.on_demand_busy.sum()
        return Cost(
            busy=busy_s * mem * p.active_per_gb_s,
            reserved_idle=sampled * mem * p.idle_per_gb_s,
            init=init_s * mem * p.active_per_gb_s,
            on_demand_idle=float(np.maximum(usage.on_demand_alive - usage.on_demand_busy, 0).sum())
            * mem
            * p.on_demand_idle_per_gb_s,
            requests=0.0,
        )
    if provider.billing == "lambda":
        block = provider.provisioned_rounding_s
        n_blocks = math.ceil(len(usage.reserved_alive) / block)
        padded = np.zeros(n_blocks * block)
        padded[: len(usage.reserved_alive)] = usage.reserved_alive
        provisioned_s = padded.reshape(n_blocks, block).max(axis=1).sum() * block
        reserved_busy_s = usage.reserved_busy.sum()
        # the provisioned fee of busy seconds counts as busy cost; the rest (idle, rounding) as idle
        return Cost(
            busy=(
                reserved_busy_s * (p.provisioned_per_gb_s + p.provisioned_duration_per_gb_s)
                + usage.on_demand_busy.sum() * p.on_demand_per_gb_s
            )
            * mem,
            reserved_idle=(provisioned_s - reserved_busy_s) * mem * p.provisioned_per_gb_s,
            init=init_s * mem * p.on_demand_per_gb_s,
            on_demand_idle=0.0,
            requests=usage.requests * p.per_million_requests / 1e6,
        )
    if provider.billing == "lambda-gpu":
        # every Managed Instance alive is billed, busy or idle: the environments alive each second are
        # packed onto instances (environments_per_instance), busy ones first
        per_inst_s = p.instance_per_s()
        alive = usage.reserved_alive + usage.on_demand_alive
        busy = usage.reserved_busy + usage.on_demand_busy
        instance_s = float(p.instances_for(alive).sum())
        busy_instance_s = float(np.minimum(p.instances_for(busy), p.instances_for(alive)).sum())
        return Cost(
            busy=busy_instance_s * per_inst_s,
            reserved_idle=(instance_s - busy_instance_s) * per_inst_s,
            init=0.0,  # start-up time is alive time, already billed
            on_demand_idle=0.0,
            requests=usage.requests * p.per_million_requests / 1e6,
        )
    per_s = p.server_per_hour / 3600
    return Cost(
        busy=usage.reserved_busy.sum() * per_s,
        reserved_idle=reserved_idle_now.sum() * per_s,
        init=0.0,
        on_demand_idle=0.0,
        requests=0.0,
    )


def oracle_cost(
    total_work_s: float, provider: Provider, concurrency_per_s: np.ndarray | None = None
) -> float:
    """The lower bound: all service work packed perfectly (work / concurrency) at the cheapest busy price.

    ``concurrency_per_s`` (mean requests in service in each second): the oracle obeys the quota the
    policies obey, so the work of the seconds where it exceeds ``max_environments() x concurrency``
    slots is left out, as no policy can serve it then either."""
    c = provider.concurrency_per_instance
    if concurrency_per_s is not None and len(concurrency_per_s):
        over = np.maximum(np.asarray(concurrency_per_s, dtype=float) - provider.max_environments() * c, 0)
        total_work_s = max(0.0, total_work_s - float(over.sum()))
    return total_work_s / c * provider.busy_price_per_instance_s()

"""The worker pool: reserved workers kept warm, on-demand workers for bursts, a quota, reaping.

Requests lease slots on a ready worker. When none is free they wait (bounded in number and in time);
while the waiting demand exceeds what the workers already starting will bring, the pool starts an
on-demand worker (a real cold start: a new process that preloads the model), up to the quota.
On-demand workers idle for ``idle_timeout_s`` are reaped; the reserved count is the policy's to set.
Everything runs on one asyncio event loop; blocking process operations go to a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx

from core.errors import LlmfnError
from functions.secrets import reveal
from llmfn.local.client import auth_headers
from llmfn.local.config import DevConfig
from llmfn.local.worker import Worker, WorkerKind, WorkerState, spawn_worker, terminate, watch_cold_start

KEPT_RETIRED = 100
"""Stopped workers kept for ``/_llmfn/status`` (a long-running runtime must not grow without bound)."""


class QueueFull(LlmfnError):
    """Too many requests already wait for capacity: answer 429 with Retry-After."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"{retry_after_s:g}")
        self.retry_after_s = retry_after_s


class NoCapacity(LlmfnError):
    """No slot became free within the queue timeout: answer 503 with Retry-After."""


def prewarm_targets(workers: list[Worker], prewarm: int) -> tuple[list[Worker], int]:
    """How ``prewarm`` pre-warm requests land, as on the platform (``Decision.prewarm``): each goes to
    an idle on-demand worker that is alive (renewing its keep-alive) or else starts a new one.
    Returns the workers renewed and the number of workers to start."""
    idle = [
        w
        for w in workers
        if w.kind is WorkerKind.ON_DEMAND
        and w.state in (WorkerState.STARTING, WorkerState.READY)
        and w.in_flight == 0
    ]
    renewed = idle[: max(prewarm, 0)]
    return renewed, max(prewarm, 0) - len(renewed)


@dataclass
class Lease:
    """Slots held on one worker by one request. ``cold``: the worker became ready after the request
    arrived, so the request waited for (part of) its cold start."""

    worker: Worker
    slots: int
    cold: bool
    waited_s: float


@dataclass
class LoadIntegrals:
    """Time integrals of the pool's load since ``since`` (``time.monotonic()``), in x-seconds.

    in_system_s: requests in service or waiting; reserved_busy_slot_s / reserved_slot_s: busy and
    total slots of reserved workers. Differences over a tick divided by its length give means.
    """

    since: float
    in_system_s: float = 0.0
    reserved_busy_slot_s: float = 0.0
    reserved_slot_s: float = 0.0
    last_change: float = 0.0

    def __post_init__(self) -> None:
        self.last_change = self.since


@dataclass
class PoolCounters:
    """Cumulative counts since launch."""

    arrivals: int = 0
    completed: int = 0
    failed: int = 0
    rejected_queue_full: int = 0
    rejected_timeout: int = 0
    cold_starts: int = 0
    cold_start_failures: int = 0
    cold_waits: int = 0
    reaped: int = 0
    worker_deaths: int = 0


def pick_worker(
    workers: list[Worker], concurrency_per_instance: int, slots: int, tier: str, tier_exclusive: bool
) -> Worker | None:
    """The ready worker with room for ``slots``: reserved first, then the busiest (packing). With
    ``tier_exclusive`` a busy worker takes only requests of the tier it serves now."""
    fits = [
        w
        for w in workers
        if w.state is WorkerState.READY
        and concurrency_per_instance - w.in_flight >= slots
        and not (tier_exclusive and w.in_flight and w.tier != tier)
    ]
    if not fits:
        return None
    return min(fits, key=lambda w: (w.kind is not WorkerKind.RESERVED, -w.in_flight, w.worker_id))


class WorkerPool:
    """Owns every worker process; call ``start`` once, then ``acquire``/``release``, ``tick``, ``close``."""

    def __init__(self, config: DevConfig, log_dir: Path | None = None) -> None:
        self.config = config
        self.log_dir = log_dir or Path(tempfile.mkdtemp(prefix="llmfn-dev-"))
        self.workers: list[Worker] = []
        self.retired: list[Worker] = []
        """The latest ``KEPT_RETIRED`` stopped workers; older ones only add to ``_forgotten_seconds``."""
        self._forgotten_seconds = 0.0
        self.counters = PoolCounters()
        self.reserved_target = config.reserved
        self.max_on_demand: int | None = None
        self.load = LoadIntegrals(since=time.monotonic())
        self.started_at = time.monotonic()
        self._next_id = 0
        self._waiting_slots = 0
        self._waiters = 0
        self._in_service = 0
        self._changed = asyncio.Condition()
        self._client = httpx.AsyncClient(headers=auth_headers(reveal(config.api_key)))
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    # ---- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the reserved workers (they preload in parallel); does not wait for them."""
        async with self._changed:
            for _ in range(self.config.reserved):
                self._spawn(WorkerKind.RESERVED)

    async def wait_ready(self, count: int, timeout_s: float) -> bool:
        """Wait until ``count`` workers are ready; False on timeout."""
        deadline = time.monotonic() + timeout_s
        async with self._changed:
            while sum(w.state is WorkerState.READY for w in self.workers) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), remaining)
        return True

    async def close(self) -> None:
        """Stop every worker process (SIGTERM then SIGKILL on its process group) and wait for them."""
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        workers, self.workers = self.workers, []
        await asyncio.gather(*(asyncio.to_thread(terminate, w) for w in workers))
        self.retired.extend(workers)
        await self._client.aclose()

    # ---- leasing ---------------------------------------------------------------------------------
    def slots_for(self, tier: str) -> int:
        """Slots a request of ``tier`` holds: heavy (tier L) requests get a worker to themselves."""
        return self.config.concurrency_per_instance if tier == "L" else 1

    async def acquire(self, tier: str) -> Lease:
        """Lease slots for one request of ``tier``; raises QueueFull or NoCapacity (never waits forever)."""
        slots = self.slots_for(tier)
        arrived = time.monotonic()
        deadline = arrived + self.config.queue_timeout_s
        async with self._changed:
            self.counters.arrivals += 1
            worker = self._pick(slots, tier)
            if worker is None:
                if self._waiters >= self.config.max_queue:
                    self.counters.rejected_queue_full += 1
                    raise QueueFull(retry_after_s=1.0)
                self.account()
                self._waiters += 1
                self._waiting_slots += slots
                try:
                    worker = await self._wait_for_slot(slots, deadline, tier)
                finally:
                    self.account()
                    self._waiters -= 1
                    self._waiting_slots -= slots
            self.account()
            self._in_service += 1
            if worker.in_flight == 0:
                worker.tier = tier
            worker.in_flight += slots
            worker.idle_since = None
            cold = worker.ready_at is not None and worker.ready_at > arrived  # it waited for the cold start
            self.counters.cold_waits += cold
            return Lease(worker, slots, cold, waited_s=time.monotonic() - arrived)

    async def _wait_for_slot(self, slots: int, deadline: float, tier: str) -> Worker:
        while True:
            worker = self._pick(slots, tier)
            if worker is not None:
                return worker
            self._scale_out_for_waiters()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.counters.rejected_timeout += 1
                raise NoCapacity(f"no worker free within {self.config.queue_timeout_s:g} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def release(self, lease: Lease, ok: bool, broken: bool = False) -> None:
        """Return a lease. ``ok`` False: the request failed; ``broken``: the worker's connection broke,
        so the worker is retired at once (it is replaced by the pool's next tick or on demand)."""
        async with self._changed:
            worker = lease.worker
            self.account()
            self._in_service -= 1
            worker.in_flight -= lease.slots
            if ok:
                worker.served += 1
                self.counters.completed += 1
            else:
                self.counters.failed += 1
            if broken and worker in self.workers:
                worker.state = WorkerState.FAILED
                worker.failure = "connection to the worker broke during a request"
                self.counters.worker_deaths += 1
                self._retire(worker)
            if worker.in_flight == 0:
                worker.idle_since = time.monotonic()
            self._changed.notify_all()

    def _pick(self, slots: int, tier: str) -> Worker | None:
        return pick_worker(
            self.workers, self.config.concurrency_per_instance, slots, tier, self.config.tier_exclusive
        )

    def _scale_out_for_waiters(self) -> None:
        """Start on-demand workers while waiting demand exceeds the capacity already on its way."""
        coming = (
            sum(w.state is WorkerState.STARTING for w in self.workers) * self.config.concurrency_per_instance
        )
        while self._waiting_slots > coming and self._may_start_on_demand():
            self._spawn(WorkerKind.ON_DEMAND)
            coming += self.config.concurrency_per_instance

    # ---- supervision -----------------------------------------------------------------------------
    def _alive(self, kind: WorkerKind | None = None) -> int:
        return sum(
            w.state in (WorkerState.STARTING, WorkerState.READY) and kind in (None, w.kind)
            for w in self.workers
        )

    def _may_start_on_demand(self) -> bool:
        """Within the quota and within the policy's cap on on-demand workers."""
        under_cap = self.max_on_demand is None or self._alive(WorkerKind.ON_DEMAND) < self.max_on_demand
        return under_cap and self._alive() < self.config.max_instances

    def account(self) -> None:
        """Advance the time integrals of load to now (call before any change of what they measure)."""
        now = time.monotonic()
        dt = now - self.load.last_change
        reserved_slots = self._alive(WorkerKind.RESERVED) * self.config.concurrency_per_instance
        self.load.in_system_s += dt * (self._in_service + self._waiters)
        self.load.reserved_busy_slot_s += dt * min(
            reserved_slots, sum(w.in_flight for w in self.workers if w.kind is WorkerKind.RESERVED)
        )
        self.load.reserved_slot_s += dt * reserved_slots
        self.load.last_change = now

    def _spawn(self, kind: WorkerKind) -> Worker:
        self.account()
        self._next_id += 1
        worker = spawn_worker(self.config, self._next_id, kind, self.log_dir)
        self.workers.append(worker)
        if self._next_id > self.config.reserved:
            self.counters.cold_starts += 1
        task = asyncio.get_running_loop().create_task(self._watch(worker))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return worker

    async def _watch(self, worker: Worker) -> None:
        ready = await watch_cold_start(worker, self._client, self.config.cold_start_timeout_s)
        async with self._changed:
            if not ready:
                self.counters.cold_start_failures += 1
                self._retire(worker)
            self._changed.notify_all()

    def _retire(self, worker: Worker) -> None:
        """Remove a worker from the pool and stop its processes in the background. Its instance-seconds
        end now, as a platform stops billing an instance when it reaps it (not when it has exited)."""
        self.account()
        if worker.stopped_at is None:
            worker.stopped_at = time.monotonic()
        if worker in self.workers:
            self.workers.remove(worker)
            self.retired.append(worker)
            while len(self.retired) > KEPT_RETIRED:
                old = self.retired.pop(0)
                self._forgotten_seconds += old.alive_seconds(time.monotonic())
        if not self._closed:
            task = asyncio.get_running_loop().create_task(asyncio.to_thread(terminate, worker))
            self._tasks.add(task)  # type: ignore[arg-type]
            task.add_done_callback(self._tasks.discard)  # type: ignore[arg-type]

    def _check_exits(self) -> None:
        """Retire workers whose process has exited (killed, crashed)."""
        for worker in list(self.workers):
            if worker.state is WorkerState.READY and worker.exited():
                worker.state = WorkerState.FAILED
                worker.failure = f"exited with {worker.process.returncode}"
                self.counters.worker_deaths += 1
                self._retire(worker)

    async def apply(self, reserved: int, prewarm: int = 0, max_on_demand: int | None = None) -> None:
        """Actuate a policy decision: the reserved count (kept until the next decision), ``prewarm``
        on-demand workers started now, the cap on on-demand workers (None: only the quota)."""
        async with self._changed:
            self.account()
            self.reserved_target = max(0, min(reserved, self.config.max_instances))
            self.max_on_demand = max_on_demand
            self._apply_reserved_target()
            renew, spawn = prewarm_targets(self.workers, prewarm)
            now = time.monotonic()
            for worker in renew:  # a pre-warm request lands on an idle warm instance: its keep-alive restarts
                if worker.idle_since is not None:
                    worker.idle_since = now
            for _ in range(spawn):
                if not self._may_start_on_demand():
                    break
                self._spawn(WorkerKind.ON_DEMAND)
            self._changed.notify_all()

    async def supervise(self) -> None:
        """One supervision step: retire dead workers, heal the reserved count, reap idle on-demand ones."""
        async with self._changed:
            self.account()
            self._check_exits()
            self._apply_reserved_target()
            self._reap_idle()
            self._changed.notify_all()

    def _apply_reserved_target(self) -> None:
        live = [w for w in self.workers if w.state in (WorkerState.STARTING, WorkerState.READY)]
        reserved = [w for w in live if w.kind is WorkerKind.RESERVED]
        missing = self.reserved_target - len(reserved)
        # Promote warm on-demand workers first (no cold start), then start new ones within the quota.
        for worker in sorted((w for w in live if w.kind is WorkerKind.ON_DEMAND), key=lambda w: w.state):
            if missing <= 0:
                break
            worker.kind, missing = WorkerKind.RESERVED, missing - 1
        while missing > 0 and self._alive() < self.config.max_instances:
            self._spawn(WorkerKind.RESERVED)
            missing -= 1
        # Surplus reserved workers become on-demand: the keep-alive reaps them once idle.
        for worker in sorted(reserved, key=lambda w: w.in_flight)[: max(0, -missing)]:
            worker.kind = WorkerKind.ON_DEMAND
            if worker.in_flight == 0:
                worker.idle_since = time.monotonic()

    def _reap_idle(self) -> None:
        now = time.monotonic()
        for worker in list(self.workers):
            if (
                worker.kind is WorkerKind.ON_DEMAND
                and worker.state is WorkerState.READY
                and worker.in_flight == 0
                and worker.idle_since is not None
                and now - worker.idle_since >= self.config.idle_timeout_s
            ):
                worker.state = WorkerState.STOPPING
                self.counters.reaped += 1
                self._retire(worker)

    # ---- observation -----------------------------------------------------------------------------
    def instance_seconds(self) -> float:
        """Worker-seconds accumulated by every worker ever started (spawn to stop), seconds."""
        now = time.monotonic()
        return self._forgotten_seconds + sum(w.alive_seconds(now) for w in self.workers + self.retired)

    def state_counts(self) -> dict[str, int]:
        """Live workers by ``kind/state``."""
        return dict(Counter(f"{w.kind.value}/{w.state.value}" for w in self.workers))

    @property
    def waiting(self) -> int:
        """Requests waiting for a slot right now."""
        return self._waiters

    def busy_slots(self) -> int:
        return sum(w.in_flight for w in self.workers)

    def snapshot(self) -> dict[str, object]:
        """JSON-ready pool state for ``/_llmfn/status``."""
        now = time.monotonic()
        return {
            "uptime_s": round(now - self.started_at, 3),
            "reserved_target": self.reserved_target,
            "quota": self.config.max_instances,
            "max_on_demand": self.max_on_demand,
            "slots_per_worker": self.config.concurrency_per_instance,
            "waiting": self._waiters,
            "busy_slots": self.busy_slots(),
            "instance_seconds": round(self.instance_seconds(), 3),
            "counters": vars(self.counters).copy(),
            "workers": [w.snapshot(now) for w in self.workers],
            "retired": [w.snapshot(now) for w in self.retired[-20:]],
            "log_dir": str(self.log_dir),
        }

"""The admission chain of a generation request: token bucket -> bounded queue -> circuit breaker.

:meth:`Admission.check_rate` answers 429 + ``Retry-After`` (whole seconds) when the bucket is empty;
:meth:`Admission.enter` waits for a concurrency slot (429 when the queue is full or the wait exceeds the
queue timeout) and then takes a breaker permit (503 + ``Retry-After`` while the breaker is open, the slot
given back); :meth:`Admission.leave` gives the slot back. Each refusal is counted in
``llmfn_rejections_total`` by reason; the queue length and held sessions gauges follow the pool.
"""

from __future__ import annotations

import math

from functions.errors import APIError
from functions.guards.breaker import BreakerOpenError, BreakerPermit, CircuitBreaker
from functions.guards.slots import QueueFullError, SlotPool
from functions.guards.token_bucket import TokenBucket
from functions.metrics import ServeMetrics
from functions.settings import ServeSettings


class Admission:
    """The bucket, the slot pool and the breaker of one app, configured from ``settings``."""

    def __init__(self, settings: ServeSettings, metrics: ServeMetrics) -> None:
        self.metrics = metrics
        self.bucket = TokenBucket(settings.rate_per_s, settings.burst)
        self.slots = SlotPool(
            settings.max_concurrency,
            settings.max_queue,
            settings.queue_timeout_s,
            hold_s=settings.session_hold_s,
            max_held=settings.max_held_sessions,
        )
        self.breaker = CircuitBreaker(
            settings.breaker_failure_threshold, settings.breaker_recovery_s, on_change=metrics.on_breaker
        )

    def check_rate(self) -> None:
        """Take a token from the bucket, or refuse with 429 + the seconds until the next one."""
        admission = self.bucket.try_acquire()
        if not admission.admitted:
            self.metrics.rejections.labels("rate_limited").inc()
            raise APIError(
                429,
                "Rate limit reached; retry after the Retry-After seconds.",
                code="rate_limit_exceeded",
                headers={"Retry-After": admission.retry_after_header},
            )

    async def enter(self, session: str | None) -> BreakerPermit:
        """Wait for a slot (``session`` may hold one between its requests), then take a breaker permit."""
        self.metrics.queue_length.set(self.slots.queued + 1)
        try:
            await self.slots.acquire(session)
        except QueueFullError as exc:
            self.metrics.rejections.labels(exc.reason).inc()
            raise APIError(
                429,
                "The server is at capacity; retry after the Retry-After seconds.",
                code=exc.reason,
                headers={"Retry-After": str(max(1, math.ceil(self.bucket.time_until())))},
            ) from None
        finally:
            self.metrics.queue_length.set(self.slots.queued)
        try:
            permit = self.breaker.acquire()
        except BreakerOpenError as exc:
            self.slots.release(session)
            self.metrics.rejections.labels("breaker_open").inc()
            raise APIError(
                503,
                "The engine is failing; requests are paused while it recovers.",
                code="engine_unavailable",
                headers={"Retry-After": str(max(1, math.ceil(exc.retry_after_s)))},
            ) from None
        self.metrics.in_flight.inc()
        self.metrics.held_sessions.set(self.slots.held_sessions())
        return permit

    def leave(self, session: str | None) -> None:
        """Give back the slot of a request that :meth:`enter` admitted."""
        self.slots.release(session)
        self.metrics.in_flight.dec()

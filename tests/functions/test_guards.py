"""The guards as plain objects, with a fake monotonic clock."""

from __future__ import annotations

import asyncio

import pytest

from functions.guards.breaker import BreakerOpenError, BreakerState, CircuitBreaker
from functions.guards.slots import QueueFullError, SlotPool
from functions.guards.token_bucket import TokenBucket
from functions.stop_sequences import StopScanner


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_admits_the_burst_then_says_when_to_retry() -> None:
    clock = Clock()
    bucket = TokenBucket(rate_per_s=2.0, capacity=3, clock=clock)
    assert all(bucket.try_acquire().admitted for _ in range(3))
    refused = bucket.try_acquire()
    assert not refused.admitted
    assert refused.retry_after_s == pytest.approx(0.5)
    assert refused.retry_after_header == "1"
    clock.now += 0.5
    assert bucket.try_acquire().admitted
    clock.now += 100
    assert bucket.available == 3  # never above capacity


def test_token_bucket_retry_after_rounds_up_whole_seconds() -> None:
    clock = Clock()
    bucket = TokenBucket(rate_per_s=0.25, capacity=1, clock=clock)
    assert bucket.try_acquire().admitted
    refused = bucket.try_acquire()
    assert refused.retry_after_s == pytest.approx(4.0)
    clock.now += 1.5
    assert bucket.try_acquire().retry_after_header == "3"


def test_token_bucket_rejects_bad_configuration() -> None:
    with pytest.raises(ValueError, match="rate_per_s"):
        TokenBucket(0, 5)
    with pytest.raises(ValueError, match="capacity"):
        TokenBucket(1, 0)


def test_breaker_opens_after_consecutive_failures_only() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=3, recovery_s=10, clock=clock)
    breaker.acquire().failure()
    breaker.acquire().failure()
    breaker.acquire().success()  # resets the count
    breaker.acquire().failure()
    breaker.acquire().failure()
    assert breaker.state is BreakerState.CLOSED
    breaker.acquire().failure()
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(BreakerOpenError) as refused:
        breaker.acquire()
    assert refused.value.retry_after_s == pytest.approx(10)


def test_breaker_half_open_admits_exactly_one_probe() -> None:
    clock = Clock()
    changes: list[BreakerState] = []
    breaker = CircuitBreaker(failure_threshold=1, recovery_s=5, clock=clock, on_change=changes.append)
    breaker.acquire().failure()
    clock.now += 5
    probe = breaker.acquire()
    assert probe.is_probe and breaker.state is BreakerState.HALF_OPEN
    for _ in range(100):  # the seed's breaker let all of these through
        with pytest.raises(BreakerOpenError):
            breaker.acquire()
    probe.success()
    assert breaker.state is BreakerState.CLOSED
    assert not breaker.acquire().is_probe
    assert changes == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]


def test_breaker_failed_probe_reopens_for_a_full_recovery_time() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=2, recovery_s=5, clock=clock)
    breaker.acquire().failure()
    breaker.acquire().failure()
    clock.now += 6
    breaker.acquire().failure()
    assert breaker.state is BreakerState.OPEN
    clock.now += 4.9
    with pytest.raises(BreakerOpenError):
        breaker.acquire()
    clock.now += 0.1
    assert breaker.acquire().is_probe


def test_breaker_abandoned_probe_lets_the_next_caller_probe() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, recovery_s=1, clock=clock)
    breaker.acquire().failure()
    clock.now += 1
    breaker.acquire().abandon()
    second = breaker.acquire()
    assert second.is_probe
    second.success()
    assert breaker.state is BreakerState.CLOSED


def test_breaker_ignores_late_failures_of_calls_admitted_before_the_trip() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, recovery_s=1, clock=clock)
    early = breaker.acquire()
    breaker.acquire().failure()
    clock.now += 1
    probe = breaker.acquire()
    early.failure()  # reports after the trip: no effect on the probe's verdict
    probe.success()
    assert breaker.state is BreakerState.CLOSED


def test_slot_pool_bounds_concurrency_and_queue() -> None:
    async def scenario() -> None:
        pool = SlotPool(limit=1, max_queue=1, timeout_s=5)
        await pool.acquire()
        waiter = asyncio.ensure_future(pool.acquire())
        await asyncio.sleep(0)
        assert pool.queued == 1
        with pytest.raises(QueueFullError) as full:
            await pool.acquire()
        assert full.value.reason == "queue_full"
        pool.release()
        await waiter
        assert pool.in_use == 1 and pool.queued == 0

    asyncio.run(scenario())


def test_slot_pool_queue_timeout() -> None:
    async def scenario() -> None:
        pool = SlotPool(limit=1, max_queue=4, timeout_s=0.05)
        await pool.acquire()
        with pytest.raises(QueueFullError) as slow:
            await pool.acquire()
        assert slow.value.reason == "queue_timeout"
        assert pool.queued == 0 and pool.in_use == 1

    asyncio.run(scenario())


def test_session_hold_reserves_a_slot_until_it_expires() -> None:
    async def scenario() -> None:
        clock = Clock()
        pool = SlotPool(limit=2, max_queue=0, timeout_s=1, hold_s=120, max_held=1, clock=clock)
        await pool.acquire("alice")
        pool.release("alice")
        assert pool.held_sessions() == 1
        await pool.acquire()  # the shared slot
        with pytest.raises(QueueFullError):
            await pool.acquire("bob")  # alice's slot is held for her
        await pool.acquire("alice")  # ... and she gets it without waiting
        pool.release("alice")
        pool.release()
        clock.now += 121
        assert pool.held_sessions() == 0
        await pool.acquire("bob")
        await pool.acquire()

    asyncio.run(scenario())


def test_session_hold_keeps_one_shared_slot_and_evicts_the_oldest() -> None:
    async def scenario() -> None:
        clock = Clock()
        pool = SlotPool(limit=2, max_queue=0, timeout_s=1, hold_s=60, max_held=5, clock=clock)
        assert pool.max_held == 1  # at least one slot stays shared
        for session in ("a", "b"):
            await pool.acquire(session)
            pool.release(session)
            clock.now += 1
        assert pool.held_sessions() == 1
        await pool.acquire("b")  # b's hold survived, a's was evicted
        await pool.acquire("a")

    asyncio.run(scenario())


def test_stop_scanner_cuts_at_the_first_stop_across_chunks() -> None:
    scanner = StopScanner(["END", "\n\n"])
    emitted = []
    for piece in ["hello wo", "rld E", "ND more"]:
        text, stopped = scanner.feed(piece)
        emitted.append(text)
        if stopped:
            break
    assert "".join(emitted) == "hello world "
    assert stopped


def test_stop_scanner_without_stop_releases_everything() -> None:
    scanner = StopScanner(["STOP"])
    out = "".join(scanner.feed(p)[0] for p in ["ab", "cST", "O"]) + scanner.flush()
    assert out == "abcSTO"
    assert StopScanner([]).feed("x") == ("x", False)

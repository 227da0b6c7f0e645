"""Circuit breaker around the engine: closed -> open -> half-open with exactly one probe at a time.

Time comes from a monotonic ``clock``; nothing runs in the background: the open -> half-open move
happens when a caller asks after ``recovery_s``. The seed's breaker flips to half-open on a timer
thread and then lets every caller through; here the first caller after the recovery time becomes the
single probe, every other caller is refused until the probe reports success (-> closed) or failure
(-> open again, for another ``recovery_s``). A probe that ends without a verdict (the client went
away) frees the probe slot and the next caller probes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from enum import StrEnum

from core.errors import InputError, LlmfnError


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


BREAKER_STATE_VALUE = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}
"""Numeric value of each state for the ``llmfn_breaker_state`` gauge."""


class BreakerOpenError(LlmfnError):
    """The breaker refuses the call; ``retry_after_s`` says when a probe may run."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"engine circuit open; retry after {retry_after_s:.1f} s")
        self.retry_after_s = retry_after_s


class BreakerPermit:
    """One admitted call. Report exactly one of ``success()`` / ``failure()``, or ``abandon()``."""

    __slots__ = ("_breaker", "_done", "is_probe")

    def __init__(self, breaker: CircuitBreaker, is_probe: bool) -> None:
        self._breaker = breaker
        self.is_probe = is_probe
        self._done = False

    def success(self) -> None:
        if not self._done:
            self._done = True
            self._breaker._on_success(self.is_probe)

    def failure(self) -> None:
        if not self._done:
            self._done = True
            self._breaker._on_failure(self.is_probe)

    def abandon(self) -> None:
        """The call ended without saying anything about the engine's health."""
        if not self._done:
            self._done = True
            self._breaker._on_abandon(self.is_probe)


class CircuitBreaker:
    """Opens after ``failure_threshold`` consecutive failures; one probe after ``recovery_s`` seconds."""

    def __init__(
        self,
        failure_threshold: int = 5,
        recovery_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[BreakerState], None] | None = None,
    ) -> None:
        if failure_threshold < 1:
            raise InputError(f"failure_threshold: must be >= 1, got {failure_threshold}")
        if recovery_s <= 0:
            raise InputError(f"recovery_s: must be > 0, got {recovery_s}")
        self.failure_threshold = failure_threshold
        self.recovery_s = recovery_s
        self._clock = clock
        self._on_change = on_change
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe_in_flight = False

    @property
    def state(self) -> BreakerState:
        """The stored state (an open breaker past its recovery time still reads open until asked)."""
        return self._state

    def acquire(self) -> BreakerPermit:
        """Admit one call or raise ``BreakerOpenError``."""
        with self._lock:
            if self._state is BreakerState.CLOSED:
                return BreakerPermit(self, is_probe=False)
            if self._state is BreakerState.OPEN:
                waited = self._clock() - self._opened_at
                if waited < self.recovery_s:
                    raise BreakerOpenError(self.recovery_s - waited)
                self._set(BreakerState.HALF_OPEN)
            if self._probe_in_flight:
                raise BreakerOpenError(self.recovery_s)
            self._probe_in_flight = True
            return BreakerPermit(self, is_probe=True)

    def _set(self, state: BreakerState) -> None:
        if state is not self._state:
            self._state = state
            if self._on_change is not None:
                self._on_change(state)

    def _on_success(self, is_probe: bool) -> None:
        with self._lock:
            self._failures = 0
            if is_probe:
                self._probe_in_flight = False
                self._set(BreakerState.CLOSED)

    def _on_failure(self, is_probe: bool) -> None:
        with self._lock:
            if is_probe:
                self._probe_in_flight = False
                self._trip()
                return
            if self._state is not BreakerState.CLOSED:
                return  # a call admitted before the trip: the breaker already knows
            self._failures += 1
            if self._failures >= self.failure_threshold:
                self._trip()

    def _on_abandon(self, is_probe: bool) -> None:
        if is_probe:
            with self._lock:
                self._probe_in_flight = False

    def _trip(self) -> None:
        self._failures = 0
        self._opened_at = self._clock()
        self._set(BreakerState.OPEN)

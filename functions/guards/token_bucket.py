"""Token-bucket admission: ``rate_per_s`` refill, ``capacity`` burst, monotonic clock, no threads."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from core.errors import InputError


@dataclass(frozen=True)
class Admission:
    """Outcome of one ``try_acquire``: admitted, else the seconds until enough tokens refill."""

    admitted: bool
    retry_after_s: float = 0.0

    @property
    def retry_after_header(self) -> str:
        """``Retry-After`` value: whole seconds, rounded up, at least 1."""
        return str(max(1, math.ceil(self.retry_after_s)))


class TokenBucket:
    """Classic token bucket; thread-safe, lazily refilled from ``clock`` (seconds, monotonic)."""

    def __init__(
        self, rate_per_s: float, capacity: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate_per_s <= 0:
            raise InputError(f"rate_per_s: must be > 0, got {rate_per_s}")
        if capacity < 1:
            raise InputError(f"capacity: must be >= 1, got {capacity}")
        self.rate_per_s = float(rate_per_s)
        self.capacity = float(capacity)
        self._clock = clock
        self._tokens = float(capacity)
        self._updated = clock()
        self._lock = threading.Lock()

    def _refill(self, now: float) -> None:
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate_per_s)
        self._updated = now

    def try_acquire(self, tokens: float = 1.0) -> Admission:
        """Take ``tokens`` if available; otherwise say how long until they will be (nothing taken)."""
        if tokens > self.capacity:
            raise InputError(f"tokens: {tokens} exceeds the bucket capacity {self.capacity}")
        with self._lock:
            self._refill(self._clock())
            if self._tokens >= tokens:
                self._tokens -= tokens
                return Admission(True)
            return Admission(False, (tokens - self._tokens) / self.rate_per_s)

    def time_until(self, tokens: float = 1.0) -> float:
        """Seconds until ``tokens`` are available (0 if they are now)."""
        with self._lock:
            self._refill(self._clock())
            return max(0.0, (tokens - self._tokens) / self.rate_per_s)

    @property
    def available(self) -> float:
        """Tokens in the bucket now."""
        with self._lock:
            self._refill(self._clock())
            return self._tokens

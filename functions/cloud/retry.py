"""Retries with exponential backoff and full jitter for transient cloud errors (throttling, 5xx, timeouts)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass
class RetryPolicy:
    """How transient errors are retried.

    attempts: calls in all (first + retries) before the error is raised.
    initial_s / max_s: first backoff and its cap, seconds; the backoff doubles per retry.
    jitter_s: up to this many seconds of random jitter added to each backoff.
    retried: ``"operation: error"`` for every retry taken (the JSON reports list them).
    """

    attempts: int = 6
    initial_s: float = 0.5
    max_s: float = 20.0
    jitter_s: float = 0.5
    retried: list[str] = field(default_factory=list)

    def call(self, operation: str, fn: Callable[[], T], is_transient: Callable[[BaseException], bool]) -> T:
        """Run ``fn``; retry it while it raises an error ``is_transient`` accepts, then re-raise."""

        def note(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            self.retried.append(f"{operation}: {error}")
            log.warning("retrying %s after attempt %d: %s", operation, state.attempt_number, error)

        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential_jitter(multiplier=self.initial_s, max=self.max_s, jitter=self.jitter_s),
            retry=retry_if_exception(is_transient),
            before_sleep=note,
            reraise=True,
        )
        return retrying(fn)

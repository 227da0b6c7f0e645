"""Fault injection shared by the cloud stand-ins: a queue of faults per operation, consumed one per call."""

from __future__ import annotations

import threading
from collections import defaultdict, deque
from typing import Literal

FaultKind = Literal["throttle", "5xx", "timeout", "lost"]


class FaultPlan:
    """Faults the next calls of an operation will suffer, e.g. ``plan.inject("UpdateAlias", "5xx", times=2)``.

    A ``timeout`` fault makes the stand-in hold the request for ``timeout_delay_s`` seconds and then close
    the connection without answering (the request is not applied), so a client whose read timeout is
    shorter sees a timeout. A ``lost`` fault is the same after the request was applied: only its
    answer is lost (what makes retried writes need to be idempotent).
    """

    def __init__(self, timeout_delay_s: float = 0.5) -> None:
        self.timeout_delay_s = timeout_delay_s
        self._queued: dict[str, deque[FaultKind]] = defaultdict(deque)
        self._lock = threading.Lock()
        self.injected: list[tuple[str, FaultKind]] = []

    def inject(self, operation: str, kind: FaultKind, times: int = 1) -> None:
        """Queue ``times`` faults of ``kind`` for the next calls of ``operation``."""
        with self._lock:
            self._queued[operation].extend([kind] * times)

    def take(self, operation: str) -> FaultKind | None:
        """The fault the current call of ``operation`` suffers, if any (recorded in ``injected``)."""
        with self._lock:
            queue = self._queued.get(operation)
            if not queue:
                return None
            kind = queue.popleft()
            self.injected.append((operation, kind))
            return kind

    def pending(self) -> int:
        """Faults queued but not yet suffered."""
        with self._lock:
            return sum(len(q) for q in self._queued.values())

"""Provisioned capacity as both stand-ins model it, and the log that checks traffic only reaches warm versions.

Instances requested for a qualifier become ready ``warmup_s`` seconds later (a raise keeps the ready
ones until then; a cut applies at once). Every alias change is logged with the ready capacity of each
routed version, so a test can assert that no traffic ever reached a version with none.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class _Request:
    requested: int
    previous_ready: int
    requested_at: float  # clock seconds


class WarmCapacity:
    """Provisioned instances per qualifier of one or more functions, keyed ``(function, qualifier)``."""

    def __init__(self, warmup_s: float = 0.05, clock: Callable[[], float] = time.monotonic) -> None:
        self.warmup_s = warmup_s
        self.clock = clock  # seconds; tests may replace it
        self.requests: dict[tuple[str, str], _Request] = {}
        self.alias_updates: list[dict[str, Any]] = []

    def request(self, function: str, qualifier: str, instances: int) -> None:
        """Ask for ``instances`` (a change of the amount only)."""
        current = self.requests.get((function, qualifier))
        if current is not None and current.requested == instances:
            return
        ready = self.ready(function, qualifier)
        now = self.clock()
        self.requests[(function, qualifier)] = _Request(
            instances, ready, now if instances > ready else now - self.warmup_s
        )

    def prewarm(self, function: str, qualifier: str, instances: int) -> None:
        """Capacity that is warm already (the stack's state before a test)."""
        self.requests[(function, qualifier)] = _Request(instances, instances, self.clock() - self.warmup_s)

    def release(self, function: str, qualifier: str) -> None:
        self.requests.pop((function, qualifier), None)

    def requested(self, function: str, qualifier: str) -> int:
        request = self.requests.get((function, qualifier))
        return request.requested if request else 0

    def ready(self, function: str, qualifier: str) -> int:
        """Instances of ``function:qualifier`` that are warm now."""
        request = self.requests.get((function, qualifier))
        if request is None:
            return 0
        if self.clock() - request.requested_at >= self.warmup_s:
            return request.requested
        return min(request.previous_ready, request.requested)

    def qualifiers(self, function: str) -> list[str]:
        return sorted(q for f, q in self.requests if f == function)

    def log_alias(self, function: str, alias: str, primary: str, weights: dict[str, float]) -> None:
        """Record an alias change with the ready capacity of each version it routes to."""
        routing = {primary: 1.0 - sum(weights.values()), **weights}
        ready = {v: self.ready(function, v) for v in routing}
        self.alias_updates.append({"alias": alias, "routing": routing, "ready": ready})

    def unwarmed_routes(self) -> list[dict[str, Any]]:
        """Alias changes that sent traffic to a version with no warm provisioned instance."""
        return [
            u for u in self.alias_updates if any(u["ready"][v] < 1 for v, w in u["routing"].items() if w > 0)
        ]

"""The bounds on the reserved (provisioned) count, declared once: ``min_reserved`` / ``max_reserved``.

Every reader of the bounds checks and clamps through :class:`ReservedBounds`: the policy config
(``scaling.policies.types.PolicyConfig``, whose wrapper clamps each policy's count), the hybrid rule
(``scaling.plan.ReservedRule``, whose schedule is clamped) and the stack (``llmfn:minInstances`` /
``llmfn:maxInstances``, ``infra/config.py``). README.md, "Configuration: one mechanism, one name per
concept", has the names per place.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import ScalingError

BOUNDS_ALLOWED = "0 <= min_reserved <= max_reserved (instances)"


def bounds_problem(min_reserved: int, max_reserved: int) -> str | None:
    """Why ``[min_reserved, max_reserved]`` (instances) are no bounds, or None when they are."""
    if min_reserved < 0 or max_reserved < min_reserved:
        return f"need {BOUNDS_ALLOWED}, got {min_reserved!r}..{max_reserved!r}"
    return None


@dataclass(frozen=True)
class ReservedBounds:
    """``min_reserved`` <= the reserved count <= ``max_reserved`` (instances); checked on construction."""

    min_reserved: int = 0
    max_reserved: int = 50

    def __post_init__(self) -> None:
        problem = bounds_problem(self.min_reserved, self.max_reserved)
        if problem is not None:
            field = "min_reserved" if self.min_reserved < 0 else "max_reserved"
            raise ScalingError(problem, field=field, value=getattr(self, field), allowed=BOUNDS_ALLOWED)

    def clamp(self, count: int) -> int:
        """``count`` moved into the bounds."""
        return max(self.min_reserved, min(self.max_reserved, count))

"""Capacity policies behind one contract (see :mod:`scaling.policies.types` for the full text).

``make_policy(name, config)`` returns a runnable policy wrapped in the shared bounds and delays;
``POLICY_NAMES`` lists every name the simulator knows, ``oracle`` included (a lower bound the
simulator computes, not a policy that can run: ``make_policy("oracle")`` raises).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from core.errors import ScalingError
from scaling.policies.baselines import FixedPool, KnativeKpa, OnDemandOnly, ReactiveLoadScore, TargetTracking
from scaling.policies.config_for import compact, policy_config_for
from scaling.policies.hybrid import Hybrid, hybrid_rule, hybrid_schedule
from scaling.policies.types import (
    Decision,
    HybridConfig,
    KpaConfig,
    Observation,
    Policy,
    PolicyConfig,
    ReactiveConfig,
    State,
    TargetTrackingConfig,
)
from scaling.policies.wrappers import BoundedPolicy

ORACLE = "oracle"
_FACTORIES: dict[str, Callable[[PolicyConfig], Policy]] = {
    "fixed": FixedPool,
    "on-demand": OnDemandOnly,
    "reactive": ReactiveLoadScore,
    "target-tracking": TargetTracking,
    "kpa": KnativeKpa,
    "hybrid": Hybrid,
}
RUNNABLE_POLICY_NAMES: tuple[str, ...] = tuple(_FACTORIES)
POLICY_NAMES: tuple[str, ...] = (*RUNNABLE_POLICY_NAMES, ORACLE)


def make_policy(name: str, config: PolicyConfig | Mapping[str, Any] | None = None) -> Policy:
    """The policy called ``name`` with ``config`` (a :class:`PolicyConfig` or its JSON mapping),
    wrapped in :class:`BoundedPolicy` so bounds and delays apply the same way to all."""
    if name == ORACLE:
        raise ScalingError(
            "policy 'oracle' is a lower bound the simulator computes; it cannot run as a scaler"
        )
    if name not in _FACTORIES:
        raise ScalingError(f"unknown policy {name!r}; choose one of: {', '.join(POLICY_NAMES)}")
    if config is None:
        config = PolicyConfig()
    elif not isinstance(config, PolicyConfig):
        config = PolicyConfig.from_mapping(dict(config))
    return BoundedPolicy(_FACTORIES[name](config), config)


__all__ = [
    "ORACLE",
    "POLICY_NAMES",
    "RUNNABLE_POLICY_NAMES",
    "BoundedPolicy",
    "Decision",
    "HybridConfig",
    "KpaConfig",
    "Observation",
    "Policy",
    "PolicyConfig",
    "ReactiveConfig",
    "State",
    "TargetTrackingConfig",
    "compact",
    "hybrid_rule",
    "hybrid_schedule",
    "make_policy",
    "policy_config_for",
]

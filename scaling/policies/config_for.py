"""The one place a :class:`PolicyConfig` is built from what a deployment knows about its traffic.

The simulator (``scaling.simulate``), the local runtime (``llmfn.local.autoscaler``), the stack
(``infra.common``, which passes the result to the scaler as ``LLMFN_POLICY_CONFIG``) and the scaler
(``functions.scaler.run``) all call :func:`policy_config_for`, so a parameter derived from a trace or a
profile reaches every policy the same way (scaling/README.md, "Policy contract").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from scaling.policies.types import PolicyConfig

_SECTIONS = ("reactive", "target_tracking", "kpa", "hybrid")


def _given(**values: Any) -> dict[str, Any]:
    """The keyword arguments that were given (``None`` = the model's default)."""
    return {key: value for key, value in values.items() if value is not None}


def _merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` on top; a policy section (``hybrid``, ...) merges key by key."""
    merged = dict(base)
    for key, value in overrides.items():
        if key in _SECTIONS and isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def policy_config_for(
    *,
    concurrency_per_instance: int | None = None,
    cold_start_s: float | None = None,
    min_reserved: int | None = None,
    max_reserved: int | None = None,
    fixed_instances: int | None = None,
    rates_by_hour: Sequence[float] | None = None,
    p95_latency_s: float | None = None,
    headroom: float | None = None,
    min_utilisation: float | None = None,
    lmi_floor: bool | None = None,
    burst_rates_by_hour: Sequence[float] | None = None,
    break_even_by_hour: Sequence[int] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> PolicyConfig:
    """The validated :class:`PolicyConfig` of the given values (``None`` keeps the model's default),
    with ``overrides`` (a ``PolicyConfig`` mapping: a ``--policy-config`` file, the scaler's
    ``LLMFN_POLICY_CONFIG``) on top, each policy section merged key by key. A bad or unknown key
    raises a ``ScalingError`` naming it. :func:`compact` gives the JSON form that holds only what was
    given (what the stack passes to the scaler).

    Units: ``cold_start_s`` / ``p95_latency_s`` seconds, ``rates_by_hour`` / ``burst_rates_by_hour``
    24 req/s values hour 0 first, ``break_even_by_hour`` 24 instance counts; the rest as in
    :class:`PolicyConfig` and :class:`scaling.policies.types.HybridConfig`.
    """
    base = _given(
        concurrency_per_instance=concurrency_per_instance,
        cold_start_s=cold_start_s,
        min_reserved=min_reserved,
        max_reserved=max_reserved,
        fixed_instances=fixed_instances,
    )
    hybrid = _given(
        rates_by_hour=None if rates_by_hour is None else list(rates_by_hour),
        p95_latency_s=p95_latency_s,
        headroom=headroom,
        min_utilisation=min_utilisation,
        lmi_floor=lmi_floor,
        burst_rates_by_hour=None if burst_rates_by_hour is None else list(burst_rates_by_hour),
        break_even_by_hour=None if break_even_by_hour is None else list(break_even_by_hour),
    )
    if hybrid:
        base["hybrid"] = hybrid
    return PolicyConfig.from_mapping(_merge(base, overrides or {}))


def compact(config: PolicyConfig) -> dict[str, Any]:
    """``config``'s JSON mapping with only the values that were given (defaults left to the reader),
    which :func:`policy_config_for` (``overrides=``) turns back into an equal config."""
    return config.model_dump(mode="json", exclude_unset=True)

"""What the scaler scales and how, validated once: from ``llmfn scale`` flags or the function's env."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from functions import contract as c
from functions.cloud.connect import CloudTarget
from functions.errors import InputError

DEFAULT_STATE_KEY = "llmfn/scaler-state.json"


class SettingsError(InputError):
    """A scaler setting is missing or wrong; the message names it and what is allowed."""


@dataclass(frozen=True)
class ScalerSettings:
    """target: the function alias to scale. state_bucket / state_key: where the state JSON lives (S3,
    or COS through its S3 API); state_endpoint: override URL for that API. policy / policy_config:
    ``scaling.policies.make_policy`` arguments. window_s: tick and metric window, seconds (a multiple
    of 60, the clouds' metric period). utc_offset_hours: time zone of the hybrid policy's hourly rates.
    """

    target: CloudTarget
    state_bucket: str
    state_key: str = DEFAULT_STATE_KEY
    state_endpoint: str | None = None
    policy: str = "hybrid"
    policy_config: Mapping[str, Any] = field(default_factory=dict)
    window_s: float = 60.0
    utc_offset_hours: float = 0.0

    def __post_init__(self) -> None:
        if not self.state_bucket:
            raise SettingsError("is required (env LLMFN_STATE_BUCKET)", field="state_bucket")
        if self.window_s < 60 or self.window_s % 60:
            raise SettingsError(
                f"must be a multiple of 60 seconds, got {self.window_s}",
                field="window_s",
                value=self.window_s,
            )
        if not -12 <= self.utc_offset_hours <= 14:
            raise SettingsError(
                f"must be in [-12, 14] hours, got {self.utc_offset_hours}",
                field="utc_offset_hours",
                value=self.utc_offset_hours,
                allowed="[-12, 14] hours",
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ScalerSettings:
        """Settings from ``LLMFN_*`` variables (the deployed scaler function's environment):
        LLMFN_CLOUD, LLMFN_FUNCTION, LLMFN_ALIAS, LLMFN_REGION, LLMFN_NAMESPACE, LLMFN_CLOUD_ENDPOINT,
        LLMFN_STATE_BUCKET, LLMFN_STATE_KEY, LLMFN_STATE_ENDPOINT, LLMFN_POLICY, LLMFN_POLICY_CONFIG
        (JSON), LLMFN_WINDOW_S, LLMFN_UTC_OFFSET_HOURS, LLMFN_RESERVED_CAPACITY; Tencent keys from TENCENTCLOUD_SECRETID /
        TENCENTCLOUD_SECRETKEY / TENCENTCLOUD_SESSIONTOKEN."""
        env = os.environ if env is None else env
        try:
            policy_config = json.loads(env.get(c.ENV_POLICY_CONFIG) or "{}")
        except json.JSONDecodeError as exc:
            raise SettingsError(f"LLMFN_POLICY_CONFIG is not JSON: {exc}") from exc
        target = CloudTarget(
            cloud=env.get(c.ENV_CLOUD, ""),  # type: ignore[arg-type]
            function=env.get(c.ENV_FUNCTION, ""),
            alias=env.get(c.ENV_ALIAS, ""),
            region=env.get(c.ENV_REGION) or env.get("AWS_REGION") or env.get("TENCENTCLOUD_REGION", ""),
            namespace=env.get(c.ENV_NAMESPACE) or "default",
            endpoint=env.get(c.ENV_CLOUD_ENDPOINT) or None,
            reserved_capacity=env.get(c.ENV_RESERVED_CAPACITY) or c.PROVISIONED_CONCURRENCY,  # type: ignore[arg-type]
            **CloudTarget.tencent_credentials(env),  # type: ignore[arg-type]
        )
        return cls(
            target=target,
            state_bucket=env.get(c.ENV_STATE_BUCKET, ""),
            state_key=env.get(c.ENV_STATE_KEY) or DEFAULT_STATE_KEY,
            state_endpoint=env.get(c.ENV_STATE_ENDPOINT) or None,
            policy=env.get(c.ENV_POLICY) or "hybrid",
            policy_config=policy_config,
            window_s=float(env.get(c.ENV_WINDOW_S) or 60),
            utc_offset_hours=float(env.get(c.ENV_UTC_OFFSET_HOURS) or 0),
        )

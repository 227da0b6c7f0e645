"""What the scaler scales and how, validated once: from ``llmfn scale`` flags or the function's env."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from pydantic import Field, InstanceOf, model_validator

from core import contract as c
from core.validated import FrozenModel, env_values
from functions.cloud.connect import CloudTarget
from functions.settings import SettingsError

DEFAULT_STATE_KEY = "llmfn/scaler-state.json"

__all__ = ["DEFAULT_STATE_KEY", "ScalerSettings", "SettingsError"]


class ScalerSettings(FrozenModel):
    """target: the function alias to scale. state_bucket / state_key: where the state JSON lives (S3,
    or COS through its S3 API); state_endpoint: override URL for that API. prewarm_url: the alias's HTTP
    endpoint that pre-warm requests go to (Tencent: SCF web functions take no asynchronous invocation,
    so without it the scaler sends none; AWS: None, asynchronous ``Invoke``). policy / policy_config:
    ``scaling.policies.make_policy`` arguments. window_s: tick and metric window, seconds (a multiple
    of 60, the clouds' metric period). utc_offset_hours: time zone of the hybrid policy's hourly rates.

    A frozen pydantic model; an invalid value raises :class:`SettingsError` naming the setting.
    """

    error_type = SettingsError

    target: InstanceOf[CloudTarget]
    state_bucket: str
    state_key: str = DEFAULT_STATE_KEY
    state_endpoint: str | None = None
    prewarm_url: str | None = None
    policy: str = "hybrid"
    policy_config: dict[str, Any] = Field(default_factory=dict)
    window_s: float = 60.0
    utc_offset_hours: float = 0.0

    @model_validator(mode="after")
    def _check(self) -> ScalerSettings:
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
        return self

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ScalerSettings:
        """Settings from ``LLMFN_*`` variables (the deployed scaler function's environment):
        LLMFN_CLOUD, LLMFN_FUNCTION, LLMFN_ALIAS, LLMFN_REGION, LLMFN_NAMESPACE, LLMFN_CLOUD_ENDPOINT,
        LLMFN_RESERVED_CAPACITY for the target; LLMFN_<FIELD> for the fields above (LLMFN_STATE_BUCKET,
        LLMFN_STATE_KEY, LLMFN_STATE_ENDPOINT, LLMFN_PREWARM_URL, LLMFN_POLICY, LLMFN_POLICY_CONFIG (JSON),
        LLMFN_WINDOW_S, LLMFN_UTC_OFFSET_HOURS); Tencent keys from TENCENTCLOUD_SECRETID /
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
        scalars = env_values(cls.model_fields.keys() - {"target", "policy_config"}, env, c.ENV_PREFIX)
        return cls.from_data(
            {"state_bucket": "", **scalars, "target": target, "policy_config": policy_config}, c.ENV_PREFIX
        )

"""Entry points of the deployed scaler function; settings come from its ``LLMFN_*`` environment.

- SCF timer trigger: ``functions.scaler.handler.main_handler`` (event ``{"Type": "Timer", "Time": ...}``).
- AWS EventBridge schedule: ``functions.scaler.handler.lambda_handler`` (event ``{"time": ...}``).

The event's own time picks the tick, so a re-delivered event is recognised and skipped.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from functions.scaler.run import Scaler
from functions.scaler.settings import ScalerSettings

log = logging.getLogger(__name__)


def event_time(event: dict[str, Any] | None) -> datetime:
    """The scheduled time an SCF timer (``Time``) or EventBridge (``time``) event carries; now otherwise."""
    text = (event or {}).get("Time") or (event or {}).get("time")
    if not text:
        return datetime.now(UTC)
    moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _run(event: dict[str, Any] | None, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    outcome = Scaler.from_settings(ScalerSettings.from_env(env)).run_once(event_time(event))
    log.info("scaler tick: %s", json.dumps(outcome.as_dict()))
    return outcome.as_dict()


def tencent_env(context: Any) -> dict[str, str]:
    """The environment with this invocation's Tencent keys: an SCF image function gets its role's
    temporary keys per request (``context["credentials"]``, from the ``X-Scf-*`` headers that
    ``functions.cloud.tencent.entry_web`` reads), not in its environment; a tick uses them, never a cached set."""
    env = dict(os.environ)
    credentials = (context or {}).get("credentials") if isinstance(context, dict) else None
    if credentials:
        env["TENCENTCLOUD_SECRETID"] = credentials["secret_id"]
        env["TENCENTCLOUD_SECRETKEY"] = credentials["secret_key"]
        if credentials.get("session_token"):
            env["TENCENTCLOUD_SESSIONTOKEN"] = credentials["session_token"]
        else:
            env.pop("TENCENTCLOUD_SESSIONTOKEN", None)
    return env


def main_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """SCF timer trigger entry point (credentials: :func:`tencent_env`)."""
    return _run(event, tencent_env(context))


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """AWS Lambda (EventBridge schedule) entry point."""
    return _run(event)

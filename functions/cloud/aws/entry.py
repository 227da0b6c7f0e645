"""AWS Lambda entry point: ``functions.cloud.aws.entry.handler`` (API Gateway HTTP API v2 events).

Configured by ``LLMFN_*`` environment variables; the app is built and its preload started on the
first invocation of the execution environment (or at import when ``LLMFN_EAGER_INIT=1``, so that it
runs during Lambda's init phase) and reused afterwards.
"""

from __future__ import annotations

from functions.readiness import mark_entry

mark_entry()  # the entry point's first line: ends the timeline's ``interpreter`` step

import os  # noqa: E402
from typing import Any  # noqa: E402

from core.contract import ENV_EAGER_INIT  # noqa: E402
from functions.events import Handler, make_event_handler, settings_from_env  # noqa: E402

_handler: Handler | None = None


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda handler: an API Gateway (HTTP API v2 or REST) event in, its proxy response out."""
    global _handler
    if _handler is None:
        _handler = make_event_handler(settings_from_env())
    return _handler(event, context)


if os.environ.get(ENV_EAGER_INIT) == "1":
    _handler = make_event_handler(settings_from_env())

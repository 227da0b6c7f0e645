"""Server-Sent Events framing of OpenAI's streams: one ``data: <JSON>`` event per chunk, ``data: [DONE]`` last.

The JSON is ``json.dumps`` of the chunk (ASCII only: non-ASCII text and any lone surrogate an engine
may produce are ``\\u`` escapes), each event ends with a blank line (``\\n\\n``) as the SSE format wants.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

MEDIA_TYPE = "text/event-stream"
DONE = b"data: [DONE]\n\n"
"""The last event of every stream that ends normally (OpenAI's terminator)."""


def sse_event(payload: BaseModel | dict[str, Any]) -> bytes:
    """One SSE event carrying ``payload`` (a wire model, or an error body) as JSON."""
    data = payload.model_dump() if isinstance(payload, BaseModel) else payload
    return b"data: " + json.dumps(data).encode() + b"\n\n"

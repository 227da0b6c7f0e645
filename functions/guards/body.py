"""Request bodies read within a byte limit and parsed into a JSON object, or refused in OpenAI's format.

Shared by the inference app and the ``llmfn dev`` gateway, so that both refuse the same bodies the same
way: over ``limit`` bytes -> 413 (from ``Content-Length`` before reading, else while reading); not JSON,
nested deeper than Python's parser can go, ``NaN`` / ``Infinity`` (not JSON, though Python accepts
them), a string holding a lone UTF-16 surrogate (``"\\ud800"``: no UTF-8 encoding exists, so no tokenizer
can take it) or not an object -> 400.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import Request

from core.errors import InputError
from functions.errors import APIError

_ESCAPED_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")
"""A ``\\uD800``-``\\uDFFF`` escape in the raw body: only then can a parsed string hold a surrogate."""


def too_large(limit: int) -> APIError:
    """The 413 for a body over ``limit`` bytes."""
    return APIError(413, f"Request body exceeds {limit} bytes.", code="request_too_large", param="body")


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 once it passes ``limit`` bytes (never read further)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _not_a_number(token: str) -> Any:
    raise InputError(f"{token} is not a JSON number")


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """``raw`` as a JSON object, or an ``APIError`` 400 (code ``invalid_json``) saying what is wrong."""
    try:
        body = json.loads(raw, parse_constant=_not_a_number)
    except RecursionError:
        raise APIError(400, "The JSON body is nested too deeply.", code="invalid_json") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise APIError(400, f"Could not parse the JSON body: {exc}", code="invalid_json") from None
    if not isinstance(body, dict):
        raise APIError(400, "The JSON body must be an object.", code="invalid_json")
    if _ESCAPED_SURROGATE.search(raw):
        where = lone_surrogate_path(body)
        if where is not None:
            raise APIError(
                400,
                f"{where or 'body'}: the string holds a lone UTF-16 surrogate (such as \\ud800), "
                "which is not valid Unicode text.",
                code="invalid_json",
                param=where or None,
            )
    return body


def lone_surrogate_path(value: Any) -> str | None:
    """Dotted path of the first string (or key) holding a lone surrogate; None when there is none."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if not _encodable(item):
                return path
        elif isinstance(item, dict):
            for key, child in item.items():
                child_path = f"{path}.{key}" if path else str(key)
                if not _encodable(key):
                    return path or "body"
                stack.append((child_path, child))
        elif isinstance(item, list):
            stack.extend((f"{path}.{i}" if path else str(i), child) for i, child in enumerate(item))
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True

"""Bounds on a request's header fields, shared by ``llmfn serve``'s app and the ``llmfn dev`` gateway.

Two layers (README.md, "Security"):

- at the HTTP parser, before anything is buffered without bound: :func:`server_options` runs uvicorn's
  h11 protocol with h11's ``max_incomplete_event_size``, which "mostly sets a limit on the maximum size
  of the request/response line + headers. If this is exceeded, then next_event() will raise
  RemoteProtocolError" (h11's ``Connection`` docstring); uvicorn answers that with a 400 and closes the
  connection. uvicorn's default protocol (httptools) has no such bound: it read a 200 MB header in full.
- in the app (:class:`HeaderLimits`): more than ``MAX_HEADER_COUNT`` fields, or more than
  ``MAX_HEADER_BYTES`` of them under a server that did not bound them, is a 431 in OpenAI's format
  (RFC 6585 section 5: "The 431 status code indicates that the server is unwilling to process the
  request because its header fields are too large"), answered before any route runs.
"""

from __future__ import annotations

from typing import Any

from functions.errors import APIError

MAX_HEADER_BYTES = 16 * 1024
"""Request line and header fields, bytes: h11's own default (``DEFAULT_MAX_INCOMPLETE_EVENT_SIZE``),
also Node.js's default ``--max-http-header-size``. An API key is at most 4096 characters."""

MAX_HEADER_COUNT = 100
"""Header fields per request: Apache httpd's default ``LimitRequestFields 100``. An OpenAI client sends
about ten; 10,000 fields stalled the gateway's event loop for seconds (quadratic copying in httpx)."""


def server_options() -> dict[str, Any]:
    """``uvicorn.Config`` keywords that bound the request head at the parser (see the module's docstring)."""
    return {"http": "h11", "h11_max_incomplete_event_size": MAX_HEADER_BYTES}


def header_problem(headers: list[tuple[bytes, bytes]], max_count: int, max_bytes: int) -> str | None:
    """Why ``headers`` (an ASGI scope's) are refused, or None. Bytes count ``name: value\\r\\n``."""
    if len(headers) > max_count:
        return f"{len(headers)} header fields, more than {max_count}"
    size = sum(len(name) + len(value) + 4 for name, value in headers)
    if size > max_bytes:
        return f"{size} bytes of header fields, more than {max_bytes}"
    return None


class HeaderLimits:
    """ASGI middleware: a 431 in OpenAI's format for too many or too large header fields."""

    def __init__(
        self, app: Any, max_count: int = MAX_HEADER_COUNT, max_bytes: int = MAX_HEADER_BYTES
    ) -> None:
        self.app = app
        self.max_count = max_count
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            problem = header_problem(scope["headers"], self.max_count, self.max_bytes)
            if problem is not None:
                error = APIError(
                    431,
                    f"Request header fields too large: {problem}.",
                    code="request_header_fields_too_large",
                )
                await error.response()(scope, receive, send)
                return
        await self.app(scope, receive, send)

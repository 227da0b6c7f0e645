"""OpenAI's error format for the errors llmfn answers over HTTP.

The root of every error of ours, ``LlmfnError``, and its ``InputError`` branch live in ``core.errors``
(README.md, "Errors"); this module adds the run-time signal the serving code answers with
(:class:`APIError`, a subclass of the root) and the framework's routing errors (:func:`http_error`).

This module imports nothing heavy at import time (starlette only when a response is built).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from core.errors import LlmfnError

if TYPE_CHECKING:
    from starlette.responses import Response


ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    431: "invalid_request_error",
    500: "server_error",
    503: "service_unavailable",
}


class APIError(LlmfnError):
    """An error answered to the client; ``headers`` carries e.g. ``Retry-After``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.field = param  # the body field at fault; str() stays the message alone
        self.status = status
        self.code = code
        self.param = param
        self.headers = headers or {}

    def body(self) -> dict[str, dict[str, str | None]]:
        return {
            "error": {
                "message": self.message,
                "type": ERROR_TYPES.get(self.status, "server_error"),
                "param": self.param,
                "code": self.code,
            }
        }

    def response(self, request_id: str | None = None) -> Response:
        from starlette.responses import Response

        headers = dict(self.headers)
        if request_id:
            headers["x-request-id"] = request_id
        return Response(json.dumps(self.body()), self.status, headers, media_type="application/json")


HTTP_ERROR_CODES = {404: "not_found", 405: "method_not_allowed"}


def http_error(status: int, detail: str) -> APIError:
    """A routing error of the framework (unknown path, wrong method) in OpenAI's format."""
    return APIError(status, detail, code=HTTP_ERROR_CODES.get(status, f"http_{status}"))

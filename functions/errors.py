"""The roots of llmfn's errors, and OpenAI's error format for the ones answered over HTTP.

Roots. README.md's layout rule (``scaling/`` and ``preload/`` import nothing of ours) forbids one base
class for the whole project, so each independent package has its own root, all with the same shape
(``llmfn.errors.FieldError``: ``message``, ``field``, ``value``, ``allowed``, ``path``):

- ``LlmfnError`` here: every error class of ``functions/``, ``infra/``, ``layers/`` and ``llmfn/``;
  ``InputError`` (also a ``ValueError``) is its branch for bad input (flags, config, files, request
  bodies), the others are run-time signals (``APIError``, a full queue, a cloud call that failed);
- ``preload.errors.PreloadError``: a checkpoint or source the preload refuses (a ``ValueError``);
- ``scaling.errors.ScalingError``: a policy config, trace or profile the scaling core refuses.

``llmfn.errors`` is the one place that turns ``InputError``, ``PreloadError`` and ``ScalingError`` into the
CLI's one ``error: ...`` line (exit 2), naming the CLI flag for a field. Library code names its *field*
(``max_instances``), never a CLI flag (``--max``): the flag is the CLI's business.

This module imports nothing heavy at import time (starlette only when a response is built), so
``infra/`` and ``layers/`` can import the roots without the serving stack.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.responses import Response


class LlmfnError(Exception):
    """Root of every error class of ``functions/``, ``infra/``, ``layers/`` and ``llmfn/``.

    ``message`` says what is wrong without the field's name; ``field`` names the setting it is about
    (a config key, a request-body field); ``value`` is what was given, ``allowed`` what would be
    accepted (in words), ``path`` the file. ``str()`` is ``"<field> <message>"`` when ``field`` is set.
    """

    def __init__(
        self,
        message: str = "",
        *,
        field: str | None = None,
        value: object = None,
        allowed: str | None = None,
        path: str | Path | None = None,
    ) -> None:
        self.message = message
        self.field = field
        self.value = value
        self.allowed = allowed
        self.path = str(path) if path is not None else None
        # Exception's own __init__, not super(): SettingsError is also a scaling.validated.ConfigError
        # (a ScalingError), whose __init__ must not reset these attributes
        Exception.__init__(self, f"{field} {message}" if field else message)


class InputError(LlmfnError, ValueError):
    """Bad input (a flag, a config value, a file, a request body): the CLI prints it as one line, exit 2."""


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

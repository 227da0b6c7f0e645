"""Tencent SCF event function entry point: ``functions.cloud.tencent.entry_event.main_handler``.

SCF's API gateway trigger sends ``{"httpMethod", "path", "headers", "queryString" /
"queryStringParameters", "body", "isBase64Encoded", "requestContext": {"serviceId", "stage", ...}}``
and expects ``{"isBase64Encoded", "statusCode", "headers", "body"}`` back ("integrated response").
The event is close to AWS API Gateway REST's, so Mangum's REST handler does the work; this module only
teaches Mangum to recognise it and shapes the answer. Configured by ``LLMFN_*`` variables.
"""

from __future__ import annotations

from functions.readiness import mark_entry

mark_entry()  # the entry point's first line: ends the timeline's ``interpreter`` step

from typing import Any  # noqa: E402

from mangum.handlers.api_gateway import APIGateway  # noqa: E402

from functions.events import Handler, make_event_handler, settings_from_env  # noqa: E402


class ScfApiGateway(APIGateway):
    """Mangum handler for SCF API gateway events."""

    @classmethod
    def infer(cls, event: dict[str, Any], context: Any, config: Any) -> bool:
        request = event.get("requestContext")
        return isinstance(request, dict) and "serviceId" in request and "httpMethod" in event

    def __init__(self, event: dict[str, Any], context: Any, config: Any) -> None:
        if not event.get("queryStringParameters") and event.get("queryString"):
            event = {**event, "queryStringParameters": event["queryString"]}
        super().__init__(event, context, config)

    def __call__(self, response: Any) -> dict[str, Any]:
        answer = super().__call__(response)
        headers = dict(answer.get("headers") or {})
        for name, values in (answer.get("multiValueHeaders") or {}).items():
            headers[name] = ",".join(values)
        return {
            "isBase64Encoded": answer["isBase64Encoded"],
            "statusCode": answer["statusCode"],
            "headers": headers,
            "body": answer["body"],
        }


_handler: Handler | None = None


def main_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """SCF handler (``main_handler`` is SCF's default name)."""
    global _handler
    if _handler is None:
        _handler = make_event_handler(settings_from_env(), custom_handlers=[ScfApiGateway])
    return _handler(event, context)

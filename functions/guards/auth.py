"""The Bearer API key check shared by the inference app and the ``llmfn dev`` gateway."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from functions.errors import APIError


def check_bearer(headers: Mapping[str, str], key: bytes | None) -> None:
    """Raise a 401 in OpenAI's format unless ``headers`` carry ``Authorization: Bearer <key>``
    (compared in constant time); ``key`` None: every request passes. An empty token never passes
    (``Bearer`` or ``Bearer   ``), even against a key that is empty (``functions.secrets.ApiKey``
    refuses such a key where it is read; this is the second line)."""
    if key is None:
        return
    scheme, _, token = headers.get("authorization", "").partition(" ")
    presented = token.strip().encode("latin-1")
    if scheme.lower() != "bearer" or not presented or not hmac.compare_digest(presented, key):
        raise APIError(
            401,
            "Incorrect or missing API key. Send it as 'Authorization: Bearer <key>'.",
            code="invalid_api_key",
        )

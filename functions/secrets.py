"""Secrets as types: an API key and cloud credentials are pydantic ``SecretStr`` values, whose ``repr``
and ``str`` are ``'**********'``, so a log line, an error or a traceback's locals never show them.
The API key's one type, ``ApiKey``, and its rule live in ``core.secrets`` (the stack checks it too).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pydantic import SecretStr

from core.contract import ENV_API_KEY


def as_secret(value: Any) -> SecretStr | None:
    """``value`` (a string, a ``SecretStr`` or None) as a ``SecretStr``; None and "" stay None."""
    if value is None or isinstance(value, SecretStr):
        return value
    return SecretStr(value) if value else None


def reveal(secret: SecretStr | None) -> str | None:
    """The secret's text, for the one call that sends it (a signed request, an ``Authorization`` header)."""
    return None if secret is None else secret.get_secret_value()


def api_key_given(flag: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """The key a command was given: ``flag`` (``--api-key``), else ``LLMFN_API_KEY`` when it is set,
    empty included (click drops an empty variable, which would serve open what was meant to be guarded;
    returned as it is, the settings refuse it)."""
    if flag is not None:
        return flag
    return (os.environ if environ is None else environ).get(ENV_API_KEY)

"""The one API-key type: what ``llmfn:apiKey`` (the stack), ``llmfn serve`` / the cloud entry points'
``LLMFN_API_KEY`` (``functions.settings.ServeSettings``) and ``llmfn dev`` (``llmfn.local.config``) accept.

``ApiKey`` is a pydantic ``SecretStr`` (its ``repr`` and ``str`` are ``'**********'``, so a log line, an
error or a traceback's locals never show it) of 1 to 4096 visible ASCII characters. An empty or blank
key, or one with a space, a newline or another control character, is no key and is refused where it is
read (README.md, "Security"): a client cannot send it in ``Authorization: Bearer <key>`` (RFC 6750
section 2.1: the token is ``1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="``, at least
one character and no whitespace; RFC 9110 section 5.5: a field value is visible characters, never a CR
or LF), and ``Bearer `` with an empty key would otherwise pass. Problems never echo the key.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, SecretStr

from core.errors import InputError

API_KEY_MAX_CHARS = 4096
"""Lambda keeps all of a function's environment variables within 4 KB (the key travels in one)."""

API_KEY_ALLOWED = (
    f"1 to {API_KEY_MAX_CHARS} visible ASCII characters (no spaces, newlines or control characters)"
)


def api_key_problem(key: str) -> str | None:
    """What makes ``key`` unusable as a Bearer key (never echoing it), or None when it is usable."""
    if not key.strip():
        return "is empty or whitespace: an empty key is no key"
    if len(key) > API_KEY_MAX_CHARS:
        return f"is {len(key)} characters long, more than {API_KEY_MAX_CHARS}"
    bad = next((ch for ch in key if not "\x21" <= ch <= "\x7e"), None)
    if bad is not None:
        return f"holds {_describe(bad)}, which a client cannot send in 'Authorization: Bearer <key>'"
    return None


def _describe(ch: str) -> str:
    names = {" ": "a space", "\n": "a newline", "\r": "a carriage return", "\t": "a tab"}
    if ch <= "\x20" or ch == "\x7f":  # whitespace or a control character (a newline?)
        return f"whitespace or a control character ({names.get(ch, f'U+{ord(ch):04X}')})"
    return f"the character U+{ord(ch):04X}"


def _check_api_key(value: SecretStr) -> SecretStr:
    problem = api_key_problem(value.get_secret_value())
    if problem is not None:
        raise InputError(f"{problem}; allowed: {API_KEY_ALLOWED}")
    return value


ApiKey = Annotated[SecretStr, AfterValidator(_check_api_key)]
"""A Bearer API key: a ``SecretStr`` checked by :func:`api_key_problem`."""


def validate_api_key(key: str | SecretStr, field: str = "api_key") -> SecretStr:
    """``key`` as a checked ``SecretStr``, or an ``InputError`` naming ``field`` (never the key)."""
    secret = key if isinstance(key, SecretStr) else SecretStr(key)
    problem = api_key_problem(secret.get_secret_value())
    if problem is not None:
        raise InputError(problem, field=field, allowed=API_KEY_ALLOWED)
    return secret

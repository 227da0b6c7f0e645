"""The project's one configuration mechanism: immutable pydantic models whose errors are one line.

Every configuration class (policy config, ``llmfn dev``'s config, the scaler's settings, the serve
settings, the stack config) is a pydantic model validated once where it is built. A
``FrozenModel`` refuses unknown keys, cannot be changed after construction, and turns pydantic's
multi-line ``ValidationError`` (which repeats every input value, secrets included) into a
:class:`ConfigError` of one line per bad field: ``field: what is allowed, got VALUE``.

:func:`describe_errors` is the formatter the others share; ``env_prefix`` names the environment
variable a field was read from (``LLMFN_WINDOW_S``) for settings parsed by :func:`env_values`.
This module imports nothing of the project's (``scaling/`` is the bottom layer).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, ValidationError


class ConfigError(ValueError):
    """A configuration value is missing or wrong; the message names the field and what is allowed."""


def describe_errors(exc: ValidationError, env_prefix: str | None = None) -> list[str]:
    """One entry per error: ``field: message, got VALUE`` (``field (LLMFN_FIELD)`` with
    ``env_prefix``); a model-level check that names its own field is kept as written."""
    parts = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "settings"
        if env_prefix is not None and err["loc"]:
            field = f"{field} ({env_prefix}{str(err['loc'][0]).upper()})"
        message = err["msg"].removeprefix("Value error, ")
        if "input" in err and err["type"] != "value_error":
            message = f"{message}, got {err['input']!r}"
        if not err["loc"] or message.startswith(field.split(" ")[0] + ":"):
            parts.append(message)
        else:
            parts.append(f"{field}: {message}")
    return parts


def env_values(names: Iterable[str], env: Mapping[str, str], prefix: str) -> dict[str, str]:
    """The set, non-empty ``<prefix><NAME>`` variables of ``names`` (``window_s`` -> ``LLMFN_WINDOW_S``),
    keyed by name, as strings for the model to validate and convert."""
    values = {}
    for name in names:
        raw = env.get(prefix + name.upper())
        if raw is not None and raw != "":
            values[name] = raw
    return values


class FrozenModel(BaseModel):
    """Base of the configuration models: frozen, unknown keys refused, errors as :class:`ConfigError`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    error_type: ClassVar[type[ConfigError]] = ConfigError
    """The error raised for invalid values (a subclass may name its own, e.g. ``SettingsError``)."""

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise self.error_type("; ".join(describe_errors(exc))) from None

    @classmethod
    def from_data(cls, data: Mapping[str, Any], env_prefix: str | None = None) -> Self:
        """Validate a mapping (JSON, TOML, environment) like keyword construction does; with
        ``env_prefix`` the errors name the variable too (``window_s (LLMFN_WINDOW_S)``)."""
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            raise cls.error_type("; ".join(describe_errors(exc, env_prefix))) from None

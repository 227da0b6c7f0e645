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

Problem = tuple[tuple[str, ...], str]
"""One validation problem: the field's path (empty: the whole model) and what is wrong with it."""


class ConfigError(ValueError):
    """A configuration value is missing or wrong; the message names the field and what is allowed.

    problems: the same as (field path, message) pairs, so a caller can name the field differently
    (its environment variable) or nest it under its parent's field.
    """

    def __init__(self, message: str, problems: tuple[Problem, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems


def problems_of(exc: ValidationError) -> tuple[Problem, ...]:
    """Each error as (field path, message, ``got VALUE`` appended for type errors); a nested
    model's own :class:`ConfigError` is unfolded under its field (``kpa.tick_s``)."""
    problems: list[Problem] = []
    for err in exc.errors():
        loc = tuple(str(p) for p in err["loc"])
        inner = err.get("ctx", {}).get("error")
        if isinstance(inner, ConfigError) and inner.problems:
            problems.extend((loc + sub_loc, message) for sub_loc, message in inner.problems)
            continue
        message = err["msg"].removeprefix("Value error, ")
        if "input" in err and err["type"] != "value_error":
            message = f"{message}, got {err['input']!r}"
        problems.append((loc, message))
    return tuple(problems)


def render(problems: tuple[Problem, ...], env_prefix: str | None = None) -> list[str]:
    """One entry per problem: ``field: message`` (``field (LLMFN_FIELD)`` with ``env_prefix``); a
    model-level check that names its own field is kept as written."""
    parts = []
    for loc, message in problems:
        field = ".".join(loc) or "settings"
        if env_prefix is not None and loc:
            field = f"{field} ({env_prefix}{loc[0].upper()})"
        if not loc or message.startswith(field.split(" ")[0] + ":"):
            parts.append(message)
        else:
            parts.append(f"{field}: {message}")
    return parts


def describe_errors(exc: ValidationError, env_prefix: str | None = None) -> list[str]:
    """:func:`render` of :func:`problems_of`: one line per bad field."""
    return render(problems_of(exc), env_prefix)


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
    error_prefix: ClassVar[str] = ""
    """Words before the problems in the message (``"invalid settings: "``)."""

    def __init__(self, **data: Any) -> None:
        # pydantic calls an overridden __init__ for model_validate and for nested models too
        try:
            super().__init__(**data)
        except ValidationError as exc:
            problems = problems_of(exc)
            raise self.error_type(self.error_prefix + "; ".join(render(problems)), problems) from None

    @classmethod
    def from_data(cls, data: Mapping[str, Any], env_prefix: str | None = None) -> Self:
        """Validate a mapping (JSON, TOML, environment) like keyword construction does; with
        ``env_prefix`` the errors name the variable too (``window_s (LLMFN_WINDOW_S)``)."""
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:  # the overridden __init__'s ConfigError, wrapped by pydantic
            problems = problems_of(exc)
        except ConfigError as exc:
            if not exc.problems:
                raise
            problems = exc.problems
        raise cls.error_type(cls.error_prefix + "; ".join(render(problems, env_prefix)), problems) from None

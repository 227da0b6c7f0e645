"""The project's one configuration mechanism: immutable pydantic models whose errors are one line.

Every configuration class (policy config, ``llmfn dev``'s config, the scaler's settings, the serve
settings, the stack config) is a pydantic model validated once where it is built. A
``FrozenModel`` refuses unknown keys, cannot be changed after construction, and turns pydantic's
multi-line ``ValidationError`` (which repeats every input value, secrets included) into a
:class:`ConfigError` of one line per bad field: ``field: what is allowed, got VALUE``.

:func:`describe_errors` is the formatter the others share; ``env_prefix`` names the environment
variable a field was read from (``LLMFN_WINDOW_S``) for settings parsed by :func:`env_values`.
It imports nothing of ours but :mod:`core.errors` (``core/`` is the bottom layer).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, ValidationError

from core.errors import InputError

Problem = tuple[tuple[str, ...], str]
"""One validation problem: the field's path (empty: the whole model) and what is wrong with it."""


class ConfigError(InputError):
    """A configuration value is missing or wrong; the message names the field and what is allowed.

    An ``InputError`` (a ``ValueError``). problems: the same as (field path,
    message) pairs, so a caller can name the field differently (its environment variable) or nest it
    under its parent's field. The message names the fields itself; ``field`` (``value``, ``allowed``)
    is set only when the one problem is a validator's own error that named its field.
    """

    def __init__(self, message: str, problems: tuple[Problem, ...] = (), **fields: Any) -> None:
        super().__init__(message, **fields)
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
            error = self.error_type(self.error_prefix + "; ".join(render(problems)), problems)
            raise _with_field(error, _field_error_of(exc)) from None

    @classmethod
    def from_data(cls, data: Mapping[str, Any], env_prefix: str | None = None) -> Self:
        """Validate a mapping (JSON, TOML, environment) like keyword construction does; with
        ``env_prefix`` the errors name the variable too (``window_s (LLMFN_WINDOW_S)``)."""
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:  # the overridden __init__'s ConfigError, wrapped by pydantic
            problems = problems_of(exc)
            origin = _field_error_of(exc)
        except ConfigError as exc:
            if not exc.problems:
                raise
            problems, origin = exc.problems, exc
        error = cls.error_type(cls.error_prefix + "; ".join(render(problems, env_prefix)), problems)
        raise _with_field(error, origin) from None


def _field_error_of(exc: ValidationError) -> Exception | None:
    """The one error a validator raised when it is the only problem (it may carry a ``field``)."""
    errors = exc.errors()
    if len(errors) != 1:
        return None
    inner = errors[0].get("ctx", {}).get("error")
    return inner if isinstance(inner, Exception) else None


def _with_field(error: ConfigError, origin: Exception | None) -> ConfigError:
    """``error`` carrying the ``field``, ``value``, ``allowed`` and ``message`` of the validator's own
    field-carrying error (a root's shape), so the CLI can word the field as its flag; ``str()`` is
    kept (it already names the field first)."""
    field = getattr(origin, "field", None)
    if isinstance(field, str) and str(error).startswith(field):
        error.field = field
        error.value = getattr(origin, "value", None)
        error.allowed = getattr(origin, "allowed", None)
        error.message = getattr(origin, "message", error.message)
    return error

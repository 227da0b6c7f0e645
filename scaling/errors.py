"""The root of every error the scaling core raises (it imports nothing of ours, so it has its own).

``ScalingError`` has the same field-carrying shape as ``functions.errors.LlmfnError`` and
``preload.errors.PreloadError`` (see ``llmfn.errors.FieldError``): ``message`` says what is wrong,
``field`` names the setting it is about (a ``PolicyConfig`` field, a trace column), ``value`` is what was
given, ``allowed`` what would be accepted, ``path`` the file. It derives from ``ValueError`` because every
scaling error is bad input (a config, a trace, a profile), so ``except ValueError`` keeps working.
"""

from __future__ import annotations

from pathlib import Path


class ScalingError(ValueError):
    """Bad input to the scaling core; ``str()`` is ``"<field> <message>"`` when ``field`` is set."""

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        value: object = None,
        allowed: str | None = None,
        path: str | Path | None = None,
    ) -> None:
        self.message = message
        """What is wrong, without the field's name."""
        self.field = field
        self.value = value
        self.allowed = allowed
        self.path = str(path) if path is not None else None
        # Exception's own __init__, not super(): a class deriving from two roots (functions.settings'
        # SettingsError is an InputError and a scaling.validated.ConfigError) must not have the other
        # root's __init__ reset these attributes
        Exception.__init__(self, f"{field} {message}" if field else message)

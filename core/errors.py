"""The one root of llmfn's errors, and its branches for bad input.

Every exception class of ours derives from :class:`LlmfnError`, which carries the fields a user needs
to fix the fault (README.md, "Errors"): ``message`` says what is wrong without the field's name,
``field`` names the setting it is about (a config key, a request-body field, a trace column),
``value`` is what was given, ``allowed`` what would be accepted (in words), ``path`` the file.
``str()`` is ``"<field> <message>"`` when ``field`` is set.

Branches:

- :class:`InputError` (also a ``ValueError``): bad input (flags, config, files, request bodies); the
  CLI prints it as one ``error: ...`` line, exit 2 (``llmfn/errors.py``); the others are run-time
  signals (``functions.errors.APIError``, a full queue, a cloud call that failed);
- :class:`ScalingError`: a policy config, trace or profile the scaling core (``scaling/``) refuses;
- :class:`PreloadError`: a checkpoint or source the preload (``preload/``) refuses, located by
  ``file`` (its ``path``), ``tensor`` and ``offset``.

Library code names its *field* (``max_instances``), never a CLI flag (``--max``): the flag is the
CLI's business. ``core/`` imports nothing of ours, so every package may import this module.
"""

from __future__ import annotations

from pathlib import Path


class LlmfnError(Exception):
    """Root of every error class of ours; see the module docstring for the fields."""

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
        """What is wrong, without the field's name."""
        self.field = field
        self.value = value
        self.allowed = allowed
        self.path = str(path) if path is not None else None
        super().__init__(self.text())

    def text(self) -> str:
        """What ``str()`` says: the field first, then the message."""
        return f"{self.field} {self.message}" if self.field else self.message


class InputError(LlmfnError, ValueError):
    """Bad input (a flag, a config value, a file, a request body): the CLI prints it as one line, exit 2."""


class ScalingError(InputError):
    """Bad input to the scaling core (a policy config, a trace, a profile)."""


class PreloadError(InputError):
    """A checkpoint, or its source, that cannot be loaded as asked.

    ``file``, ``tensor`` and ``offset`` (absolute byte offset in ``file``) say where, when known; the
    message always names them too, so the CLI's one-line ``error:`` is enough to find the fault.
    ``path`` is ``file``; ``field`` is the setting or header key the error is about (e.g. ``dtype``).
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        tensor: str | None = None,
        offset: int | None = None,
        field: str | None = None,
        value: object = None,
        allowed: str | None = None,
    ) -> None:
        self.file = str(file) if file is not None else None
        self.tensor = tensor
        self.offset = offset
        super().__init__(message, field=field, value=value, allowed=allowed, path=file)

    def text(self) -> str:
        """The field and message, then where: ``(file F, tensor 'T', offset N)``."""
        where = [
            f"file {self.file}" if self.file is not None else "",
            f"tensor {self.tensor!r}" if self.tensor is not None else "",
            f"offset {self.offset}" if self.offset is not None else "",
        ]
        located = ", ".join(w for w in where if w)
        text = super().text()
        return f"{text} ({located})" if located else text

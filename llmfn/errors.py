"""The one place that turns an error of ours into the CLI's one ``error: ...`` line (exit 2).

The root is ``core.errors.LlmfnError``; bad input is its ``InputError`` branch (the scaling
core's ``ScalingError`` and the preload's ``PreloadError`` under it), a ``ValueError`` with
the ``FieldError`` shape.
The printer handles exactly these and the operating system's "that path is wrong" errors; any other
exception (a ``KeyError``, a plain ``ValueError`` from a bug) keeps its traceback, so bugs are not
dressed up as user errors.

Library code words its messages with its own field names (``max_instances must be an integer >= 1``);
``FLAGS`` maps, per subcommand, the fields the user typed as flags to those flags, so the user reads
``--max must be an integer >= 1``. A field that came from a file (``--policy-config``) is not in the
table and keeps its name, which is what the user wrote in the file.
"""

from __future__ import annotations

import re
from typing import Protocol, runtime_checkable

from core.errors import InputError, LlmfnError
from llmfn.commands.fields import FLAGS_OF

ROOTS: tuple[type[Exception], ...] = (LlmfnError,)
"""Every exception class defined in our packages derives from this one root (tests/test_errors.py)."""

USER_ERRORS: tuple[type[BaseException], ...] = (
    InputError,
    FileNotFoundError,
    NotADirectoryError,
    IsADirectoryError,
    PermissionError,
)
"""What the CLI prints as one line: our input branch and the OS's wrong-path errors."""


@runtime_checkable
class FieldError(Protocol):
    """The shape of the root: what is wrong, about which field, given what, allowing what, where."""

    message: str
    """What is wrong; with ``field`` set, without the field's name (``str()`` puts it first)."""
    field: str | None
    """The setting, config key or request field at fault (a library name, never a CLI flag)."""
    value: object
    """The value given, when one was."""
    allowed: str | None
    """What would be accepted, in words (``"an integer >= 1"``)."""

    @property
    def path(self) -> str | None:
        """The file at fault, when there is one."""
        ...


FLAGS: dict[str, dict[str, str]] = {
    "load": {
        "url": "--url",
        "rps": "--rps",
        "duration_s": "--duration",
        "time_scale": "--time-scale",
        "token_scale": "--token-scale",
        "start_s": "--start",
        "allow_remote": "--allow-remote",
    },
    **FLAGS_OF,  # the commands whose options llmfn.commands.fields builds
    "preload": {
        "device": "--device",
        "workers": "--workers",
        "revision": "--revision",
    },
    "serve": {
        "device": "--device",
        "revision": "--revision",
    },
    "promote": {
        "steps": "--steps",
        "model_revision": "--model-revision",
        "interval_s": "--interval",
        "canary_capacity": "--canary-capacity",
        "max_error_rate": "--max-error-rate",
        "max_p95_s": "--max-p95",
        "outputs": "--outputs",
        "cloud": "--cloud",
    },
    "scale": {
        "state_bucket": "--state-bucket",
        "window_s": "--window",
        "utc_offset_hours": "--utc-offset",
        "cloud": "--cloud",
    },
}
"""Per subcommand: library field name -> the CLI flag the user typed for it. The one mapping table."""


def cli_message(exc: BaseException, command: str | None = None) -> str:
    """The text of the CLI's ``error:`` line for ``exc``: its message, field names as the user's flags.

    The error's own ``field``, which ``str()`` puts first, becomes its flag. Any other field of
    ``command``'s table with an underscore in its name (``max_instances``, never an English word) that
    the message names as a word of its own becomes its flag too, so a rule over two fields
    (``min_reserved <= max_reserved``) reads ``--min <= --max``. One-word fields (``device``,
    ``port``) are mapped only as the error's own field, so prose ("FIFO or device?") and the user's
    data are never rewritten; neither is a name inside a quoted value or a path.
    """
    text = str(exc)
    table = FLAGS.get(command or "", {})
    field = getattr(exc, "field", None)
    if isinstance(field, str) and field in table and text.startswith(field):
        text = table[field] + text[len(field) :]
    wordy = sorted((name for name in table if "_" in name), key=len, reverse=True)
    if wordy:
        names = "|".join(map(re.escape, wordy))
        pattern = re.compile(rf"(?<![\w\-/.'\"])({names})(?![\w\-/.'\"])")
        text = pattern.sub(lambda m: table[m.group(1)], text)
    return text


def command_of(argv: list[str]) -> str | None:
    """The subcommand named in ``argv`` (its first word that is not an option), or None."""
    return next((a for a in argv if not a.startswith("-")), None)

"""The one error the preload raises for a checkpoint it refuses: the root of ``preload/``'s errors.

``preload/`` imports nothing of ours (README.md, Layout), so it has its own root with the same field-carrying
shape as ``functions.errors.LlmfnError`` and ``scaling.errors.ScalingError`` (see
``llmfn.errors.FieldError``); ``path`` is ``file``.
"""

from __future__ import annotations

from pathlib import Path


class PreloadError(ValueError):
    """A checkpoint, or its source, that cannot be loaded as asked.

    ``file``, ``tensor`` and ``offset`` (absolute byte offset in ``file``) say where, when known; the
    message always names them too, so the CLI's one-line ``error:`` is enough to find the fault.
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
        self.message = message
        """What is wrong, without the location."""
        self.file = str(file) if file is not None else None
        self.tensor = tensor
        self.offset = offset
        self.field = field
        """The setting or header key the error is about, when it is one (e.g. ``dtype``)."""
        self.value = value
        self.allowed = allowed
        where = [
            f"file {self.file}" if self.file is not None else "",
            f"tensor {tensor!r}" if tensor is not None else "",
            f"offset {offset}" if offset is not None else "",
        ]
        located = ", ".join(w for w in where if w)
        text = f"{field} {message}" if field else message
        super().__init__(f"{text} ({located})" if located else text)

    @property
    def path(self) -> str | None:
        """The file, under the name every root of ours gives it."""
        return self.file

"""The one error the preload raises for a checkpoint it refuses."""

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
    ) -> None:
        self.message = message
        """What is wrong, without the location."""
        self.file = str(file) if file is not None else None
        self.tensor = tensor
        self.offset = offset
        where = [
            f"file {self.file}" if self.file is not None else "",
            f"tensor {tensor!r}" if tensor is not None else "",
            f"offset {offset}" if offset is not None else "",
        ]
        located = ", ".join(w for w in where if w)
        super().__init__(f"{message} ({located})" if located else message)

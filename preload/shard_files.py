"""Reading planned shard files, shared by every load backend (:mod:`preload.loader`, :mod:`preload.staged`).

:func:`open_checked` opens a file of a :class:`~preload.plan.PreloadPlan` and refuses it when its size
(bytes) changed since planning; :func:`truncated` is the :class:`~core.errors.PreloadError` for a chunk
read short, naming the file, the first tensor not fully read and the byte offset where the file ends.
"""

from __future__ import annotations

import os

from core.errors import PreloadError
from preload.chunks import Chunk
from preload.plan import ShardFile


def open_checked(shard: ShardFile) -> int:
    """Open a planned file read-only (its resolved, confined path: a link swapped after planning is not
    followed), refusing it when it changed size since it was planned."""
    try:
        fd = os.open(shard.open_path, os.O_RDONLY)
    except FileNotFoundError:
        raise PreloadError("shard file disappeared after planning", file=shard.path) from None
    size = os.fstat(fd).st_size
    if size != shard.size:
        os.close(fd)
        raise PreloadError(
            f"file changed size since planning: {shard.size} B -> {size} B", file=shard.path, offset=size
        )
    return fd


def truncated(chunk: Chunk, got: int, file_size: int) -> PreloadError:
    """The error for a chunk that read ``got`` bytes short of a file now ``file_size`` bytes long: names
    the first tensor not fully read and the offset where the file ends (a chunk that starts beyond the
    new end reads nothing: the offset is the file's end, not the chunk's start)."""
    read_end = chunk.start + got
    tensor = next(
        p.tensor.name for p in chunk.pieces if p.tensor.start + p.tensor_start + p.length > read_end
    )
    return PreloadError(
        f"file ended while reading: got {got} of {chunk.nbytes} B",
        file=chunk.file.path,
        tensor=tensor,
        offset=min(read_end, file_size),
    )

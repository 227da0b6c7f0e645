"""Work units of the loader: a stage's bytes cut into file-contiguous chunks, in reading order."""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import PreloadError
from preload.plan import ShardFile, Stage, TensorEntry

DEFAULT_CHUNK_BYTES = 16 * 1024 * 1024
"""16 MiB: large enough for full-speed sequential reads, small enough to balance workers."""


@dataclass(frozen=True)
class Piece:
    """The part of one tensor a chunk covers: tensor bytes ``tensor_start``..``tensor_start + length``."""

    tensor: TensorEntry
    tensor_start: int
    length: int


@dataclass(frozen=True)
class Chunk:
    """Bytes ``start``..``end`` (absolute offsets) of one file, and the tensor pieces they hold, in order."""

    file: ShardFile
    start: int
    end: int
    pieces: tuple[Piece, ...]

    @property
    def nbytes(self) -> int:
        """Bytes the chunk reads."""
        return self.end - self.start


def stage_chunks(
    stage: Stage, files: tuple[ShardFile, ...], chunk_bytes: int = DEFAULT_CHUNK_BYTES
) -> list[Chunk]:
    """Cut ``stage`` into chunks of at most ``chunk_bytes``, in the stage's reading order.

    Tensors adjacent in the same file are merged into one run before cutting, so a chunk may hold the
    end of one tensor and the start of the next; no chunk spans two files. Workers take chunks from the
    front of this list, so concurrent reads stay close together in file-offset order.
    """
    if chunk_bytes <= 0:
        raise PreloadError(f"chunk_bytes must be positive, got {chunk_bytes}")
    by_path = {f.path: f for f in files}
    runs: list[list[TensorEntry]] = []
    for tensor in stage.tensors:
        if tensor.nbytes == 0:
            continue
        if runs and runs[-1][-1].file == tensor.file and runs[-1][-1].end == tensor.start:
            runs[-1].append(tensor)
        else:
            runs.append([tensor])
    chunks: list[Chunk] = []
    for run in runs:
        shard = by_path[run[0].file]
        start, run_end = run[0].start, run[-1].end
        while start < run_end:
            end = min(start + chunk_bytes, run_end)
            pieces = tuple(
                Piece(t, max(start, t.start) - t.start, min(end, t.end) - max(start, t.start))
                for t in run
                if t.start < end and t.end > start
            )
            chunks.append(Chunk(shard, start, end, pieces))
            start = end
    return chunks


def lanes(chunks: list[Chunk], *, per_file: bool) -> list[list[Chunk]]:
    """Group chunks into lanes, each read in order by one worker; lanes run in parallel.

    ``per_file``: one lane per file (its chunks in file-offset order), so each file is one sequential
    stream and the kernel's readahead stays effective (for mappings, whose readahead state is per
    file); otherwise every chunk is its own lane and workers share the stage chunk by chunk.
    """
    if not per_file:
        return [[chunk] for chunk in chunks]
    by_file: dict[object, list[Chunk]] = {}
    for chunk in chunks:
        by_file.setdefault(chunk.file.path, []).append(chunk)
    return list(by_file.values())

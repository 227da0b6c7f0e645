"""Work units: chunks cover every tensor byte exactly once; lanes keep files sequential; errors stop all."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from preload import plan_checkpoint
from preload.chunks import Chunk, lanes, stage_chunks
from preload.loader import run_lanes
from tests.preload.helpers import sample_tensors, write_checkpoint


@pytest.fixture
def plan(tmp_path: Path):  # -> PreloadPlan
    return plan_checkpoint(
        write_checkpoint(tmp_path, sample_tensors(torch.float32, tied=False, layers=5), shards=3)
    )


def test_chunks_cover_each_tensor_exactly_once_within_one_file(plan) -> None:
    for stage in plan.stages:
        chunks = stage_chunks(stage, plan.files, chunk_bytes=200)
        assert all(0 < c.nbytes <= 200 for c in chunks)
        covered: dict[str, int] = {}
        for chunk in chunks:
            assert sum(p.length for p in chunk.pieces) == chunk.nbytes
            assert all(p.tensor.file == chunk.file.path for p in chunk.pieces)
            position = chunk.start
            for piece in chunk.pieces:
                assert (
                    piece.tensor.start + piece.tensor_start == position
                )  # pieces are contiguous in the file
                assert covered.get(piece.tensor.name, 0) == piece.tensor_start  # and in order within a tensor
                covered[piece.tensor.name] = piece.tensor_start + piece.length
                position += piece.length
        assert covered == {t.name: t.nbytes for t in stage.tensors}


def test_lanes_are_one_per_file_in_order_or_one_per_chunk(plan) -> None:
    blocks = next(s for s in plan.stages if s.name == "blocks")
    chunks = stage_chunks(blocks, plan.files, chunk_bytes=128)
    per_file = lanes(chunks, per_file=True)
    assert len(per_file) == len({c.file.path for c in chunks})
    for lane in per_file:
        assert len({c.file.path for c in lane}) == 1
        assert [c.start for c in lane] == sorted(c.start for c in lane)
    assert lanes(chunks, per_file=False) == [[c] for c in chunks]


def test_first_error_stops_every_lane_and_is_raised(plan) -> None:
    blocks = next(s for s in plan.stages if s.name == "blocks")
    chunks = stage_chunks(blocks, plan.files, chunk_bytes=32)
    processed: list[Chunk] = []
    lock = threading.Lock()

    def process(chunk: Chunk) -> int:
        with lock:
            processed.append(chunk)
            if len(processed) == 3:
                raise OSError("disk gone")
        return chunk.nbytes

    reported: list[int] = []
    with ThreadPoolExecutor(2) as pool, pytest.raises(OSError, match="disk gone"):
        run_lanes(pool, lanes(chunks, per_file=True), process, reported.append)
    assert len(processed) < len(chunks)  # the others stopped at their next chunk
    assert reported == sorted(reported) and len(reported) <= 2

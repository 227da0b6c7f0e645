"""The loader: bit-exact against safetensors for every method, dtype and layout; events; refusals."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from llmfn.errors import cli_message
from preload import (
    STAGES,
    PreloadError,
    StageEvent,
    load_checkpoint,
    log_stage_event,
    plan_checkpoint,
    prefetch_to_page_cache,
)
from preload.chunks import stage_chunks
from preload.loader import MappedBackend, run_plan
from preload.shard_files import truncated
from preload.staged import StagedBackend
from tests.preload.helpers import DeferredTransfer, sample_tensors, write_checkpoint


def reference(model_dir: Path) -> dict[str, torch.Tensor]:
    tensors: dict[str, torch.Tensor] = {}
    for path in sorted(model_dir.glob("*.safetensors")):
        tensors.update(load_file(path))
    return tensors


def assert_bit_exact(loaded: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert loaded.keys() == expected.keys()
    for name, tensor in expected.items():
        got = loaded[name]
        assert got.dtype == tensor.dtype and got.shape == tensor.shape, name
        assert torch.equal(got.reshape(-1).view(torch.uint8), tensor.reshape(-1).view(torch.uint8)), name


@pytest.mark.parametrize("method", ["mmap", "read"])
@pytest.mark.parametrize("shards", [1, 3])
@pytest.mark.parametrize("tied", [True, False], ids=["tied", "untied"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32, torch.int8], ids=str)
def test_loaded_tensors_are_bit_exact(
    tmp_path: Path, dtype: torch.dtype, tied: bool, shards: int, method: str
) -> None:
    model_dir = write_checkpoint(tmp_path, sample_tensors(dtype, tied=tied), shards=shards)
    # tiny chunks so that chunks cut through tensors and several workers share a stage
    loaded = load_checkpoint(model_dir, workers=3, method=method, chunk_bytes=100)
    assert_bit_exact(loaded.tensors, reference(model_dir))
    assert ("lm_head.weight" in loaded.tensors) is not tied


def test_mixed_dtypes_and_unaligned_tensors_are_exact(tmp_path: Path) -> None:
    tensors = {
        "a.int8": torch.arange(7, dtype=torch.int8),  # 7 bytes: the next tensor starts unaligned
        "b.bf16": torch.randn(5, 3).to(torch.bfloat16),
        "c.f64": torch.randn(3, dtype=torch.float64),
        "d.bool": torch.tensor([True, False, True]),
        "e.empty": torch.empty(0, 4),
        "f.scalar": torch.tensor(3.5),
    }
    model_dir = write_checkpoint(tmp_path, tensors)
    for method in ("mmap", "read"):
        loaded = load_checkpoint(model_dir, method=method, workers=2, chunk_bytes=8)
        assert_bit_exact(loaded.tensors, reference(model_dir))


def test_mapped_tensors_are_writable_without_touching_the_file(tmp_path: Path) -> None:
    model_dir = write_checkpoint(tmp_path, sample_tensors(torch.float32, tied=True))
    before = (model_dir / "model.safetensors").read_bytes()
    loaded = load_checkpoint(model_dir)
    loaded.tensors["model.norm.weight"].fill_(42.0)
    assert (model_dir / "model.safetensors").read_bytes() == before


def test_stage_events_arrive_in_order_and_end_with_all_bytes(tmp_path: Path) -> None:
    model_dir = write_checkpoint(tmp_path, sample_tensors(torch.bfloat16, tied=False), shards=2)
    events: list[StageEvent] = []
    loaded = load_checkpoint(model_dir, workers=2, chunk_bytes=64, on_event=events.append)
    plan = plan_checkpoint(model_dir)
    ends = [e for e in events if e.kind == "end"]
    assert [e.stage for e in ends] == list(STAGES[:4])
    assert all(e.total_stages == len(STAGES) and STAGES[e.index] == e.stage for e in events)
    by_stage = {s.name: s.nbytes for s in plan.stages}
    for end in ends[1:]:
        assert end.bytes == end.total_bytes == by_stage[end.stage]
        progress = [e.bytes for e in events if e.stage == end.stage and e.kind == "progress"]
        assert progress == sorted(progress) and progress[-1] == end.bytes
    assert [t.stage for t in loaded.timings] == list(STAGES[:4])
    assert loaded.seconds_until("final") == pytest.approx(sum(t.seconds for t in loaded.timings))


def test_staged_path_waits_for_each_copy_before_reusing_a_buffer(tmp_path: Path) -> None:
    model_dir = write_checkpoint(tmp_path, sample_tensors(torch.bfloat16, tied=False, layers=6), shards=3)
    plan = plan_checkpoint(model_dir)
    transfer = DeferredTransfer()
    backend = StagedBackend(plan, transfer, workers=2, chunk_bytes=48)
    tensors, timings = run_plan(plan, backend, workers=2, verify=False, on_event=None, chunk_bytes=48)
    backend.close()
    assert_bit_exact(tensors, reference(model_dir))
    assert transfer.staging_buffers == 4  # 2 workers x 2 buffers, allocated once in the runtime stage
    assert transfer.waits > 0 and transfer.copies_run >= len(tensors)
    assert [t.stage for t in timings] == list(STAGES[:4])


def test_cuda_device_without_cuda_is_a_clear_error(tmp_path: Path) -> None:
    model_dir = write_checkpoint(tmp_path, sample_tensors(torch.float32, tied=True))
    with pytest.raises(ValueError, match="CUDA is not available"):
        load_checkpoint(model_dir, device="cuda")
    with pytest.raises(ValueError, match=r"^device must be 'cpu'") as refused:
        load_checkpoint(model_dir, device="tpu")
    assert cli_message(refused.value, "preload").startswith("--device must be 'cpu'")
    with pytest.raises(ValueError, match=r"^workers must be at least 1") as refused:
        load_checkpoint(model_dir, workers=0)
    assert cli_message(refused.value, "preload").startswith("--workers must be at least 1")


def test_verify_accepts_matching_sums_and_refuses_a_flipped_byte(tmp_path: Path) -> None:
    model_dir = write_checkpoint(tmp_path, sample_tensors(torch.float16, tied=True), shards=2)
    shards = sorted(model_dir.glob("*.safetensors"))
    sums = "".join(f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}\n" for p in shards)
    (model_dir / "SHA256SUMS").write_text(sums)
    assert load_checkpoint(model_dir, verify=True, workers=2).verified
    data = bytearray(shards[1].read_bytes())
    data[-1] ^= 0xFF
    shards[1].write_bytes(bytes(data))
    events: list[StageEvent] = []
    with pytest.raises(PreloadError, match="sha256") as info:
        load_checkpoint(model_dir, verify=True, on_event=events.append)
    assert info.value.file == str(shards[1])
    assert "final" not in {e.stage for e in events if e.kind == "end"}  # never reported ready


def test_verify_without_known_sums_says_how_to_fix_it(tmp_path: Path) -> None:
    model_dir = write_checkpoint(tmp_path, sample_tensors(torch.float16, tied=True))
    with pytest.raises(PreloadError, match="SHA256SUMS"):
        load_checkpoint(model_dir, verify=True)


def test_verify_uses_the_hub_cache_blob_name(tmp_path: Path) -> None:
    source = write_checkpoint(tmp_path / "src", sample_tensors(torch.float16, tied=True))
    data = (source / "model.safetensors").read_bytes()
    repo = tmp_path / "models--org--name"  # the hub cache's layout: snapshots/<commit>/ links into blobs/
    blobs, snapshot = repo / "blobs", repo / "snapshots" / ("c" * 40)
    blobs.mkdir(parents=True)
    snapshot.mkdir(parents=True)
    (blobs / hashlib.sha256(data).hexdigest()).write_bytes(data)
    os.symlink(blobs / hashlib.sha256(data).hexdigest(), snapshot / "model.safetensors")
    assert load_checkpoint(snapshot, verify=True).verified


def test_file_changed_since_planning_is_refused_in_the_runtime_stage(tmp_path: Path) -> None:
    model_dir = write_checkpoint(tmp_path, sample_tensors(torch.float32, tied=True), shards=2)
    plan = plan_checkpoint(model_dir)
    victim = plan.files[0].path
    os.truncate(victim, plan.files[0].size - 3)
    with pytest.raises(PreloadError, match="changed size") as info:
        run_plan(plan, MappedBackend(plan), workers=2, verify=False, on_event=None)
    assert info.value.file == str(victim)


def test_a_chunk_starting_beyond_the_new_end_reports_the_end_of_the_file(tmp_path: Path) -> None:
    """Workers read chunks out of order: one may start past where the file now ends and read nothing."""
    model_dir = write_checkpoint(tmp_path, sample_tensors(torch.float32, tied=True, layers=8), shards=2)
    plan = plan_checkpoint(model_dir)
    last = max(
        (c for stage in plan.stages for c in stage_chunks(stage, plan.files, 64)), key=lambda c: c.start
    )
    error = truncated(last, 0, last.start - 36)
    assert error.offset == last.start - 36 and error.file == str(last.file.path)
    assert error.tensor == last.pieces[0].tensor.name
    partial = truncated(last, 10, last.start + 10)  # a short read ends where the file ends
    assert partial.offset == last.start + 10


@pytest.mark.parametrize("method", ["mmap", "read"])
def test_file_truncated_while_loading_is_refused_and_never_ready(tmp_path: Path, method: str) -> None:
    model_dir = write_checkpoint(tmp_path, sample_tensors(torch.float32, tied=True, layers=8), shards=2)
    plan = plan_checkpoint(model_dir)
    victim = max(plan.files, key=lambda f: f.size)
    events: list[StageEvent] = []

    def truncate_when_reading_starts(event: StageEvent) -> None:
        events.append(event)
        if event.stage == "embedding" and event.kind == "start":
            os.truncate(victim.path, victim.size - 100)

    with pytest.raises(PreloadError, match=r"file ended|changed size while loading") as info:
        load_checkpoint(
            model_dir, method=method, workers=2, chunk_bytes=64, on_event=truncate_when_reading_starts
        )
    assert info.value.file == str(victim.path)
    assert "file ended" not in str(info.value) or info.value.tensor is not None
    assert info.value.offset is not None and info.value.offset <= victim.size - 100
    assert not any(e.kind == "end" and e.stage == "final" for e in events)


def test_prefetch_brings_every_stage_into_the_page_cache(tmp_path: Path) -> None:
    model_dir = write_checkpoint(tmp_path, sample_tensors(torch.bfloat16, tied=True), shards=2)
    events: list[StageEvent] = []
    timings = prefetch_to_page_cache(model_dir, workers=2, on_event=events.append)
    assert [t.stage for t in timings] == list(STAGES[:4])
    assert sum(t.bytes for t in timings[1:]) == plan_checkpoint(model_dir).total_bytes


def test_stage_events_as_structured_log_lines(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    model_dir = write_checkpoint(tmp_path, sample_tensors(torch.bfloat16, tied=True))
    with caplog.at_level(logging.INFO, logger="llmfn.preload"):
        load_checkpoint(model_dir, on_event=log_stage_event)
    lines = [json.loads(record.getMessage()) for record in caplog.records]
    assert [(line["stage"], line["kind"]) for line in lines] == [
        (s, k) for s in STAGES[:4] for k in ("start", "end")
    ]
    blocks_end = lines[5]
    assert blocks_end["event"] == "preload_stage" and blocks_end["bytes"] == blocks_end["total_bytes"] > 0
    assert set(blocks_end) >= {"seconds", "gb_per_s", "index", "total_stages"}

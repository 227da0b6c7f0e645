"""Streaming a checkpoint from S3 (moto's server, a fault proxy in front) straight into memory."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from preload import PreloadError, StageEvent, build_causal_lm, plan_checkpoint
from preload.chunks import stage_chunks
from preload.stream import open_remote, stream_checkpoint
from tests.preload.conftest import BUCKET, upload
from tests.preload.helpers import sample_tensors, write_checkpoint
from tests.preload.s3_faults import S3FaultProxy


@pytest.fixture
def repo_dir(tmp_path: Path) -> Path:
    return write_checkpoint(tmp_path / "repo", sample_tensors(torch.bfloat16, tied=False, layers=4), shards=2)


def _expected(repo_dir: Path) -> dict[str, torch.Tensor]:
    tensors: dict[str, torch.Tensor] = {}
    for shard in sorted(repo_dir.glob("*.safetensors")):
        tensors.update(load_file(shard))
    return tensors


def test_stream_loads_every_byte_into_memory_embedding_first_without_shards_on_disk(
    s3, s3_faults: S3FaultProxy, repo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    upload(s3, repo_dir, "m", with_sha256=True)
    monkeypatch.setattr("preload.stream.HEADER_PROBE_BYTES", 16)  # a second GET for the rest of each header
    events: list[StageEvent] = []
    remote = open_remote(f"s3://{BUCKET}/m", tmp_path / "local", endpoint_url=s3_faults.url)
    assert not remote.cached
    probes = len(s3_faults.ranges)
    loaded = stream_checkpoint(remote, workers=3, on_event=events.append, verify=True)
    assert loaded.verified and loaded.method == "stream"
    expected = _expected(repo_dir)
    assert loaded.tensors.keys() == expected.keys()
    for name, tensor in expected.items():
        assert torch.equal(loaded.tensors[name], tensor), name
    assert [e.stage for e in events if e.kind == "end"] == ["runtime", "embedding", "blocks", "final"]
    assert sorted(p.name for p in (tmp_path / "local").iterdir() if not p.name.startswith(".")) == [
        "model.safetensors.index.json"
    ]  # the metadata only: no shard written to disk
    # ranges are taken in stage order (the embedding's first, then the layers) by 3 workers at once, so
    # a GET taken later may reach the server up to 2 places earlier: every embedding range is among the
    # first len(embedding) + 2 data requests
    plan = plan_checkpoint(repo_dir)
    embedding = {(c.file.path.name, c.start) for c in stage_chunks(plan.stages[0], plan.files)}
    data = [
        (path.rsplit("/", 1)[-1], int(r.removeprefix("bytes=").split("-")[0]))
        for path, r in s3_faults.ranges[probes:]
    ]
    assert embedding <= set(data[: len(embedding) + 3 - 1]), (embedding, data[: len(embedding) + 2])
    assert len(data) > len(embedding) + 2  # the layers' ranges came after: the window above is a real bound


def test_stream_resumes_ranges_cut_mid_body_and_retries_5xx(
    s3, s3_faults: S3FaultProxy, repo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    upload(s3, repo_dir, "m", with_sha256=True)
    monkeypatch.setattr("preload.objectstore.RETRY_BASE_S", 0.0)
    remote = open_remote(f"s3://{BUCKET}/m", tmp_path / "local", endpoint_url=s3_faults.url)
    s3_faults.inject("cut", min_offset=100)  # a tensor range in the middle of a shard
    s3_faults.inject("5xx")
    s3_faults.inject("cut")
    loaded = stream_checkpoint(remote, workers=2, verify=True, chunk_bytes=256)
    assert s3_faults.pending() == 0 and [f for f, _, _ in s3_faults.broken] == ["cut", "5xx", "cut"]
    for name, tensor in _expected(repo_dir).items():
        assert torch.equal(loaded.tensors[name], tensor), name
    assert loaded.verified


def test_stream_refuses_a_shard_whose_sha256_differs(
    s3, repo_dir: Path, tmp_path: Path, moto_server_url: str
) -> None:
    upload(s3, repo_dir, "m", with_sha256=False)
    shard = "model-00002-of-00002.safetensors"
    s3.put_object(
        Bucket=BUCKET,
        Key=f"m/{shard}",
        Body=(repo_dir / shard).read_bytes(),
        Metadata={"sha256": hashlib.sha256(b"another file").hexdigest()},
    )
    remote = open_remote(f"s3://{BUCKET}/m", tmp_path / "local", endpoint_url=moto_server_url)
    with pytest.raises(PreloadError, match="sha256 is") as info:
        stream_checkpoint(remote, workers=2)  # verify=None: checks every digest that is known
    assert info.value.file == f"s3://{BUCKET}/m/{shard}"
    with pytest.raises(PreloadError, match="no sha256 known for this object") as info:
        stream_checkpoint(remote, workers=2, verify=True)
    assert info.value.file == f"s3://{BUCKET}/m/model-00001-of-00002.safetensors"
    assert not stream_checkpoint(remote, workers=2, verify=False).verified


def test_stream_names_the_object_of_a_corrupt_header(
    s3, repo_dir: Path, tmp_path: Path, moto_server_url: str
) -> None:
    upload(s3, repo_dir, "m", with_sha256=False)
    shard = "model-00001-of-00002.safetensors"
    s3.put_object(Bucket=BUCKET, Key=f"m/{shard}", Body=(10**9).to_bytes(8, "little") + b"{}")
    with pytest.raises(PreloadError, match="does not fit") as info:
        open_remote(f"s3://{BUCKET}/m", tmp_path / "local", endpoint_url=moto_server_url)
    assert info.value.file == f"s3://{BUCKET}/m/{shard}" and info.value.offset == 0


def test_stream_with_cache_keeps_the_shards_and_loads_them_from_disk_next_time(
    s3, repo_dir: Path, tmp_path: Path, moto_server_url: str
) -> None:
    upload(s3, repo_dir, "m", with_sha256=True)
    local = tmp_path / "local"
    loaded = stream_checkpoint(
        open_remote(f"s3://{BUCKET}/m", local, endpoint_url=moto_server_url), cache=True
    )
    assert loaded.cache_writer is not None
    loaded.cache_writer.join(timeout=30)
    for shard in repo_dir.glob("*.safetensors"):
        assert (local / shard.name).read_bytes() == shard.read_bytes()
    again = open_remote(f"s3://{BUCKET}/m", local, endpoint_url=moto_server_url)
    assert again.cached
    from_disk = stream_checkpoint(again, cache=True)
    assert from_disk.method == "mmap"
    for name, tensor in _expected(repo_dir).items():
        assert torch.equal(from_disk.tensors[name], tensor), name


def test_streamed_tiny_qwen3_gives_the_logits_of_from_pretrained(
    s3, tiny_model_dir: Path, tmp_path: Path, moto_server_url: str
) -> None:
    upload(s3, tiny_model_dir, "tiny", with_sha256=True)
    remote = open_remote(f"cos://{BUCKET}/tiny", tmp_path / "local", endpoint_url=moto_server_url)
    model = build_causal_lm(stream_checkpoint(remote, workers=2, verify=True))
    reference = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    ids = torch.tensor([[1, 5, 7, 9, 100, 3, 42, 17]])
    with torch.inference_mode():
        assert torch.equal(model(input_ids=ids).logits, reference(input_ids=ids).logits)


def test_stream_refuses_an_object_replaced_after_it_was_planned(
    s3, repo_dir: Path, tmp_path: Path, moto_server_url: str
) -> None:
    """Every ranged GET carries If-Match: the object's ETag when it was listed ("Return the object only if
    its entity tag (ETag) is the same as the one specified; otherwise, return a 412 (precondition
    failed) error", S3 GetObject, If-Match), so a range is never taken from a newer version."""
    upload(s3, repo_dir, "m", with_sha256=False)
    remote = open_remote(f"s3://{BUCKET}/m", tmp_path / "local", endpoint_url=moto_server_url)
    shard = "model-00002-of-00002.safetensors"
    data = bytearray((repo_dir / shard).read_bytes())
    data[-1] ^= 0xFF
    s3.put_object(Bucket=BUCKET, Key=f"m/{shard}", Body=bytes(data))
    with pytest.raises(PreloadError, match="object changed while it was read") as info:
        stream_checkpoint(remote, workers=2, verify=False)
    assert info.value.file == f"s3://{BUCKET}/m/{shard}"

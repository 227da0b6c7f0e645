"""Plans: headers and index validated; every corrupt checkpoint refused by file, tensor and offset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from preload import PreloadError, plan_checkpoint
from tests.preload.helpers import sample_tensors, write_checkpoint, write_raw

F32_4 = {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}


def refused(model_dir: Path) -> PreloadError:
    with pytest.raises(PreloadError) as info:
        plan_checkpoint(model_dir)
    return info.value


def test_plan_groups_tensors_into_stages_in_layer_order(tmp_path: Path) -> None:
    tensors = sample_tensors(torch.bfloat16, tied=False, layers=12)
    plan = plan_checkpoint(write_checkpoint(tmp_path, tensors, shards=3))
    stages = {s.name: [t.name for t in s.tensors] for s in plan.stages}
    assert [s.name for s in plan.stages] == ["embedding", "blocks", "final"]
    assert sorted(stages["embedding"]) == ["lm_head.weight", "model.embed_tokens.weight"]
    assert stages["final"] == ["model.norm.weight"]
    layers = [int(name.split(".")[2]) for name in stages["blocks"]]
    assert layers == sorted(layers) and set(layers) == set(range(12))  # layer 10 after 9, not after 1
    assert plan.total_bytes == sum(t.numel() * t.element_size() for t in tensors.values())
    assert plan.file_bytes == sum(p.stat().st_size for p in tmp_path.glob("*.safetensors"))


def test_truncated_file_is_refused_naming_the_last_tensor(tmp_path: Path) -> None:
    path = write_checkpoint(tmp_path, sample_tensors(torch.float16, tied=True)) / "model.safetensors"
    size = path.stat().st_size
    path.write_bytes(path.read_bytes()[:-5])
    error = refused(tmp_path)
    assert "truncated" in str(error) and error.file == str(path) and error.offset == size - 5
    assert error.tensor is not None and error.tensor in str(error)


def test_header_length_beyond_the_file_is_refused(tmp_path: Path) -> None:
    write_raw(tmp_path / "model.safetensors", {"a": F32_4}, bytes(16), header_len=10**6)
    error = refused(tmp_path)
    assert error.offset == 0 and "header length" in str(error)


def test_file_shorter_than_eight_bytes_is_refused(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"\x01\x02")
    assert refused(tmp_path).offset == 0


@pytest.mark.parametrize(
    "header", [b"{not json", b"\xff\xfe{}", b"[1, 2]"], ids=["bad-json", "not-utf8", "not-object"]
)
def test_corrupt_header_is_refused(tmp_path: Path, header: bytes) -> None:
    write_raw(tmp_path / "model.safetensors", header, b"")
    error = refused(tmp_path)
    assert error.offset == 8 and error.file == str(tmp_path / "model.safetensors")


def test_overlapping_offsets_are_refused(tmp_path: Path) -> None:
    header = {"a": F32_4, "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}}
    write_raw(tmp_path / "model.safetensors", header, bytes(24))
    error = refused(tmp_path)
    assert "overlaps" in str(error) and error.tensor == "b"
    assert error.offset == 8 + len(json.dumps(header)) + 8


def test_gap_between_tensors_is_refused(tmp_path: Path) -> None:
    header = {"a": F32_4, "b": {"dtype": "F32", "shape": [4], "data_offsets": [20, 36]}}
    write_raw(tmp_path / "model.safetensors", header, bytes(36))
    error = refused(tmp_path)
    assert "gap" in str(error) and error.tensor == "b"


def test_dtype_times_shape_must_equal_byte_length(tmp_path: Path) -> None:
    header = {"w": {"dtype": "BF16", "shape": [3, 3], "data_offsets": [0, 16]}}
    write_raw(tmp_path / "model.safetensors", header, bytes(16))
    error = refused(tmp_path)
    assert error.tensor == "w" and "18 B" in str(error) and "16 B" in str(error)


def test_unknown_dtype_is_refused(tmp_path: Path) -> None:
    write_raw(
        tmp_path / "model.safetensors",
        {"w": {"dtype": "F12", "shape": [1], "data_offsets": [0, 2]}},
        bytes(2),
    )
    assert refused(tmp_path).tensor == "w"


def test_trailing_bytes_after_the_data_are_refused(tmp_path: Path) -> None:
    write_raw(tmp_path / "model.safetensors", {"a": F32_4}, bytes(20))
    error = refused(tmp_path)
    assert "unexpected bytes" in str(error) and error.tensor == "a"


def test_duplicate_tensor_in_one_header_is_refused(tmp_path: Path) -> None:
    raw = b'{"a": ' + json.dumps(F32_4).encode() + b', "a": ' + json.dumps(F32_4).encode() + b"}"
    write_raw(tmp_path / "model.safetensors", raw, bytes(16))
    error = refused(tmp_path)
    assert error.tensor == "a" and "twice" in str(error)


def test_duplicate_tensor_across_shards_is_refused(tmp_path: Path) -> None:
    write_raw(tmp_path / "s1.safetensors", {"a": F32_4}, bytes(16))
    write_raw(tmp_path / "s2.safetensors", {"a": F32_4}, bytes(16))
    (tmp_path / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"a": "s1.safetensors", "b": "s2.safetensors"}})
    )
    error = refused(tmp_path)
    assert error.tensor == "a" and error.file == str(tmp_path / "s2.safetensors")


def test_missing_shard_is_refused(tmp_path: Path) -> None:
    write_checkpoint(tmp_path, sample_tensors(torch.float32, tied=True), shards=3)
    missing = tmp_path / "model-00002-of-00003.safetensors"
    missing.unlink()
    error = refused(tmp_path)
    assert error.file == str(missing) and "missing" in str(error) and error.tensor is not None


def test_index_naming_an_absent_tensor_is_refused(tmp_path: Path) -> None:
    write_checkpoint(tmp_path, sample_tensors(torch.float32, tied=True), shards=2)
    index_path = tmp_path / "model.safetensors.index.json"
    index = json.loads(index_path.read_text())
    index["weight_map"]["model.layers.9.mlp.up_proj.weight"] = "model-00001-of-00002.safetensors"
    index_path.write_text(json.dumps(index))
    error = refused(tmp_path)
    assert error.tensor == "model.layers.9.mlp.up_proj.weight" and "absent" in str(error)


def test_shard_tensor_the_index_does_not_name_is_refused(tmp_path: Path) -> None:
    write_checkpoint(tmp_path, sample_tensors(torch.float32, tied=True), shards=2)
    index_path = tmp_path / "model.safetensors.index.json"
    index = json.loads(index_path.read_text())
    del index["weight_map"]["model.norm.weight"]
    index_path.write_text(json.dumps(index))
    assert refused(tmp_path).tensor == "model.norm.weight"


def test_directory_without_checkpoint_is_refused(tmp_path: Path) -> None:
    assert "no model.safetensors.index.json or model.safetensors" in str(refused(tmp_path))

"""Sources: local directories, the Hugging Face Hub (a local stand-in) and S3 / COS (moto's server)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from llmfn.errors import cli_message
from preload import PreloadError, load_checkpoint, resolve_source
from tests.preload.conftest import BUCKET, upload
from tests.preload.helpers import sample_tensors, write_checkpoint
from tests.preload.hub_standin import COMMIT, HubStandIn
from tests.preload.s3_faults import S3FaultProxy

REPO = "llmfn-test/tiny"


@pytest.fixture
def repo_dir(tmp_path: Path) -> Path:
    """A sharded checkpoint plus files a loader must not fetch (a stray shard, a pickle)."""
    model_dir = write_checkpoint(tmp_path / "repo", sample_tensors(torch.bfloat16, tied=True), shards=2)
    (model_dir / "config.json").write_text(json.dumps({"model_type": "test"}))
    (model_dir / "pytorch_model.bin").write_bytes(b"pickle bytes nobody should fetch")
    shutil.copy(model_dir / "model-00001-of-00002.safetensors", model_dir / "model-old.safetensors")
    return model_dir


@pytest.fixture
def hub(repo_dir: Path) -> Iterator[HubStandIn]:
    server = HubStandIn(REPO, repo_dir).start()
    yield server
    server.stop()


def test_local_directory_is_returned_as_is(repo_dir: Path) -> None:
    assert resolve_source(str(repo_dir)) == repo_dir
    with pytest.raises(ValueError, match=r"^revision applies to Hugging Face Hub sources only") as refused:
        resolve_source(str(repo_dir), revision="main")
    assert cli_message(refused.value, "preload").startswith("--revision applies")
    with pytest.raises(FileNotFoundError, match="not a directory"):
        resolve_source(str(repo_dir / "missing"))


def test_hub_download_is_pinned_and_fetches_only_indexed_shards(hub: HubStandIn, tmp_path: Path) -> None:
    path = resolve_source(f"hf://{REPO}", revision="main", cache_dir=tmp_path / "hf", endpoint_url=hub.url)
    assert path.name == COMMIT  # the snapshot of the pinned commit
    assert sorted(set(hub.downloads)) == [
        "config.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
    ]
    assert COMMIT in hub.revisions_asked[1:]  # every request after the first names the commit
    loaded = load_checkpoint(path, verify=True)  # sha256 from the cache's blob names
    assert loaded.verified and len(loaded.tensors) == len(sample_tensors(torch.bfloat16, tied=True))


def test_hub_offline_mode_reads_only_the_cache(
    hub: HubStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    online = resolve_source(REPO, cache_dir=tmp_path / "hf", endpoint_url=hub.url)
    hub.stop()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_source(REPO, cache_dir=tmp_path / "hf", endpoint_url=hub.url) == online
    with pytest.raises(PreloadError, match="HF_HUB_OFFLINE"):
        resolve_source("llmfn-test/other", cache_dir=tmp_path / "hf", endpoint_url=hub.url)


def test_hub_unknown_revision_is_a_clear_error(hub: HubStandIn, tmp_path: Path) -> None:
    with pytest.raises(PreloadError, match="v9") as info:
        resolve_source(REPO, revision="v9", cache_dir=tmp_path / "hf", endpoint_url=hub.url)
    assert info.value.file == f"hf://{REPO}"


@pytest.mark.parametrize("scheme", ["s3", "cos"])
def test_s3_download_with_ranged_reads_is_exact(
    s3, repo_dir: Path, tmp_path: Path, moto_server_url: str, monkeypatch: pytest.MonkeyPatch, scheme: str
) -> None:
    upload(s3, repo_dir, "qwen/v1", with_sha256=True)
    monkeypatch.setattr("preload.objectstore.RANGE_BYTES", 1000)  # several ranged GETs per shard
    path = resolve_source(
        f"{scheme}://{BUCKET}/qwen/v1", cache_dir=tmp_path / "cache", endpoint_url=moto_server_url
    )
    assert path == tmp_path / "cache" / scheme / BUCKET / "qwen" / "v1"
    fetched = sorted(p.name for p in path.iterdir() if not p.name.startswith("."))
    assert fetched == [
        "SHA256SUMS",
        "config.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
    ]
    for name in fetched[2:]:
        assert (path / name).read_bytes() == (repo_dir / name).read_bytes()
    assert load_checkpoint(path, verify=True).verified


def test_s3_download_resumes_a_range_whose_body_breaks_off(
    s3, s3_faults: S3FaultProxy, repo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 11 defect 11: a ranged GET whose body stops half-way is retried from its first missing byte."""
    upload(s3, repo_dir, "m", with_sha256=True)
    monkeypatch.setattr("preload.objectstore.RANGE_BYTES", 1000)
    monkeypatch.setattr("preload.objectstore.RETRY_BASE_S", 0.0)
    s3_faults.inject("cut", min_offset=1000)  # the second range of some file
    s3_faults.inject("5xx")
    s3_faults.inject("cut")
    path = resolve_source(f"s3://{BUCKET}/m", cache_dir=tmp_path, endpoint_url=s3_faults.url, workers=3)
    assert s3_faults.pending() == 0 and len(s3_faults.broken) == 3
    for name in ("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"):
        assert (path / name).read_bytes() == (repo_dir / name).read_bytes()
    assert load_checkpoint(path, verify=True).verified
    # the retry after a cut asked only for what was missing: a range that starts inside the cut one
    cut_path, cut_range = next((p, r) for f, p, r in s3_faults.broken if f == "cut")
    first, last = (int(x) for x in cut_range.removeprefix("bytes=").split("-"))
    resumed = [r for p, r in s3_faults.ranges if p == cut_path and r.endswith(f"-{last}")]
    assert any(first < int(r.removeprefix("bytes=").split("-")[0]) <= last for r in resumed)


def test_s3_download_gives_up_after_repeated_faults_naming_object_and_offset(
    s3, s3_faults: S3FaultProxy, repo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    upload(s3, repo_dir, "m", with_sha256=False)
    monkeypatch.setattr("preload.objectstore.RETRY_BASE_S", 0.0)
    monkeypatch.setattr("preload.objectstore.RANGE_ATTEMPTS", 2)
    s3_faults.inject("cut", times=2, min_offset=0)
    with pytest.raises(PreloadError, match="ranged GET failed after 2 tries") as info:
        resolve_source(f"s3://{BUCKET}/m", cache_dir=tmp_path, endpoint_url=s3_faults.url, workers=1)
    assert info.value.file is not None and info.value.file.startswith(f"s3://{BUCKET}/m/")
    assert info.value.offset is not None and info.value.offset > 0  # resumed past the half that arrived
    assert not any(p.name.endswith(".safetensors") for p in (tmp_path / "s3" / BUCKET / "m").iterdir())


def test_s3_unchanged_objects_are_not_fetched_again(
    s3, repo_dir: Path, tmp_path: Path, moto_server_url: str
) -> None:
    upload(s3, repo_dir, "m", with_sha256=False)
    path = resolve_source(f"s3://{BUCKET}/m", cache_dir=tmp_path, endpoint_url=moto_server_url)
    shard = path / "model-00001-of-00002.safetensors"
    before = shard.stat().st_mtime_ns
    assert resolve_source(f"s3://{BUCKET}/m/", cache_dir=tmp_path, endpoint_url=moto_server_url) == path
    assert shard.stat().st_mtime_ns == before
    assert not (path / "SHA256SUMS").exists()


def test_s3_missing_shard_is_refused_by_name(
    s3, repo_dir: Path, tmp_path: Path, moto_server_url: str
) -> None:
    upload(s3, repo_dir, "m", with_sha256=False)
    s3.delete_object(Bucket=BUCKET, Key="m/model-00002-of-00002.safetensors")
    with pytest.raises(PreloadError, match="missing from the bucket") as info:
        resolve_source(f"s3://{BUCKET}/m", cache_dir=tmp_path, endpoint_url=moto_server_url)
    assert info.value.file == f"s3://{BUCKET}/m/model-00002-of-00002.safetensors"


def test_cos_without_endpoint_names_what_to_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_ENDPOINT_URL", "COS_REGION", "TENCENTCLOUD_REGION"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match="COS_REGION"):
        resolve_source("cos://bucket/model", cache_dir=tmp_path)

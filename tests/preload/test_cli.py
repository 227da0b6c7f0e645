"""``llmfn preload``: progress and per-stage table; bad input is one ``error:`` line with exit status 2."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from llmfn.cli import app
from tests.preload.conftest import BUCKET, upload
from tests.preload.helpers import sample_tensors, write_checkpoint


def test_preload_prints_a_table_per_stage(tmp_path: Path) -> None:
    model_dir = write_checkpoint(tmp_path, sample_tensors(torch.bfloat16, tied=True), shards=2)
    shards = sorted(model_dir.glob("*.safetensors"))
    (model_dir / "SHA256SUMS").write_text(
        "".join(f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}\n" for p in shards)
    )
    result = CliRunner().invoke(
        app, ["preload", str(model_dir), "--workers", "2", "--verify"], terminal_width=120
    )
    assert result.exit_code == 0, result.output
    table = result.output[result.output.index("preload on cpu") :]
    for stage in ("runtime", "embedding", "blocks", "final"):
        assert stage in table
    assert "sha256 verified" in result.output
    total = sum(t.numel() * t.element_size() for t in sample_tensors(torch.bfloat16, tied=True).values())
    assert f"{total:,} B" in result.output  # the checkpoint's size, and the table's total row:
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in table.splitlines() if "│" in line]
    assert [row[:2] for row in rows if row and row[0] == "all"] == [["all", f"{total:,}"]]


def test_prefetch_only_reports_the_page_cache_stages(tmp_path: Path) -> None:
    model_dir = write_checkpoint(tmp_path, sample_tensors(torch.float16, tied=False))
    result = CliRunner().invoke(app, ["preload", str(model_dir), "--prefetch-only"], terminal_width=120)
    assert result.exit_code == 0, result.output
    assert "prefetch into the page cache" in result.output and "blocks" in result.output


def test_corrupt_checkpoint_is_one_error_line_with_status_2(tmp_path: Path) -> None:
    model_dir = write_checkpoint(tmp_path, sample_tensors(torch.float32, tied=True))
    shard = model_dir / "model.safetensors"
    shard.write_bytes(shard.read_bytes()[:-7])
    exe = Path(sys.executable).with_name("llmfn")
    out = subprocess.run([str(exe), "preload", str(model_dir)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert (
        out.stderr.startswith("error:")
        and "truncated" in out.stderr
        and str(shard) in out.stderr.replace("\n", "")
    )
    assert "Traceback" not in out.stderr


def test_json_output_is_the_documented_shape(tmp_path: Path) -> None:
    model_dir = write_checkpoint(tmp_path, sample_tensors(torch.bfloat16, tied=True), shards=2)
    result = CliRunner().invoke(app, ["preload", str(model_dir), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert [s["name"] for s in report["stages"]] == ["fetch", "runtime", "embedding", "blocks", "final"]
    assert report["total_s"] == pytest.approx(sum(s["seconds"] for s in report["stages"]), abs=1e-3)
    assert sum(s.get("bytes", 0) for s in report["stages"][2:]) == report["bytes"]
    assert report["method"] == "mmap" and report["verified"] is False


def test_s3_source_streams_into_memory_and_reports_json(
    s3, tmp_path: Path, moto_server_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_dir = write_checkpoint(tmp_path / "repo", sample_tensors(torch.bfloat16, tied=False), shards=2)
    upload(s3, model_dir, "cli", with_sha256=True)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server_url)
    monkeypatch.setenv("LLMFN_CACHE", str(tmp_path / "cache"))
    result = CliRunner().invoke(app, ["preload", f"s3://{BUCKET}/cli", "--json", "--verify"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["method"] == "stream" and report["verified"] is True
    assert report["bytes"] == sum(t.numel() * 2 for t in sample_tensors(torch.bfloat16, tied=False).values())
    assert not list((tmp_path / "cache").rglob("*.safetensors"))

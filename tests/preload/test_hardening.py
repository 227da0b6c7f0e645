"""Issue 22, items 2 and 9: no checkpoint reader leaves the model directory through a link (a Hugging Face
cache snapshot still loads), and hostile checkpoint JSON is one ``PreloadError``, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from llmfn.cli import app, main
from preload import PreloadError, load_checkpoint, plan_checkpoint
from preload.integrity import read_sums
from preload.plan import read_header
from tests.preload.helpers import sample_tensors, write_checkpoint, write_raw

SECRET = b"root:x:0:0:TOP-SECRET-LINE\n" * 8
DEEP = 200_000


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A file outside every model directory, standing in for ``/etc/passwd``."""
    path = tmp_path / "outside" / "passwd"
    path.parent.mkdir()
    path.write_bytes(SECRET)
    return path


def _refused_without_echo(exc: PreloadError, link: Path) -> None:
    text = str(exc)
    assert str(link) in text and "outside the model directory" in text
    assert "TOP-SECRET" not in text and str(int.from_bytes(SECRET[:8], "little")) not in text


def test_absolute_link_to_a_file_outside_is_refused_naming_it(tmp_path: Path, secret: Path) -> None:
    model_dir = write_checkpoint(tmp_path / "m", sample_tensors(torch.float32, tied=True), shards=2)
    shard = sorted(model_dir.glob("*.safetensors"))[0]
    shard.unlink()
    shard.symlink_to(secret)
    with pytest.raises(PreloadError) as info:
        plan_checkpoint(model_dir)
    _refused_without_echo(info.value, shard)


def test_dotdot_link_out_of_the_directory_is_refused(tmp_path: Path, secret: Path) -> None:
    model_dir = write_checkpoint(tmp_path / "m", sample_tensors(torch.float32, tied=True))
    shard = model_dir / "model.safetensors"
    shard.unlink()
    shard.symlink_to(Path("..") / "outside" / "passwd")
    with pytest.raises(PreloadError) as info:
        load_checkpoint(model_dir)
    _refused_without_echo(info.value, shard)


@pytest.mark.parametrize(
    "name",
    ["model.safetensors.index.json", "config.json", "SHA256SUMS", "tokenizer.json", "chat_template.jinja"],
)
def test_index_config_and_sums_links_outside_are_refused(tmp_path: Path, secret: Path, name: str) -> None:
    model_dir = write_checkpoint(tmp_path / "m", sample_tensors(torch.float32, tied=True), shards=2)
    link = model_dir / name
    link.unlink(missing_ok=True)
    link.symlink_to(secret)
    with pytest.raises(PreloadError) as info:
        plan_checkpoint(model_dir)  # the tokenizer and template too: transformers reads them unchecked
    _refused_without_echo(info.value, link)
    if name == "SHA256SUMS":
        with pytest.raises(PreloadError) as info:
            read_sums(model_dir)
    _refused_without_echo(info.value, link)


def test_preload_command_refuses_a_link_to_passwd_with_status_2(tmp_path: Path, secret: Path) -> None:
    model_dir = write_checkpoint(tmp_path / "m", sample_tensors(torch.float32, tied=True))
    shard = model_dir / "model.safetensors"
    shard.unlink()
    shard.symlink_to(secret)
    exe = Path(sys.executable).with_name("llmfn")
    out = subprocess.run([str(exe), "preload", str(model_dir)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith("error:") and "outside the model directory" in out.stderr
    assert "Traceback" not in out.stderr and "TOP-SECRET" not in out.stderr + out.stdout


def _hub_snapshot(cache: Path, source: Path, repo: str = "models--org--name") -> Path:
    """``source``'s files laid out as the Hugging Face cache does: ``snapshots/<commit>/<file>`` are
    relative links to ``../../blobs/<sha256>``."""
    import hashlib

    blobs, snapshot = cache / repo / "blobs", cache / repo / "snapshots" / ("a" * 40)
    blobs.mkdir(parents=True)
    snapshot.mkdir(parents=True)
    for path in sorted(source.iterdir()):
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        (snapshot / path.name).symlink_to(Path("..") / ".." / "blobs" / digest)
    return snapshot


def test_a_hugging_face_cache_snapshot_still_loads(tmp_path: Path, tiny_model_dir: Path) -> None:
    snapshot = _hub_snapshot(tmp_path / "hub", tiny_model_dir)
    assert all(p.is_symlink() for p in snapshot.iterdir())
    loaded = load_checkpoint(snapshot, verify=True)  # sha256 from the blob names
    assert loaded.verified and len(loaded.tensors) == len(plan_checkpoint(tiny_model_dir).tensors)
    result = CliRunner().invoke(app, ["preload", str(snapshot), "--json"])
    assert result.exit_code == 0, result.output


def test_a_snapshot_link_into_another_repos_blobs_is_refused(tmp_path: Path, tiny_model_dir: Path) -> None:
    snapshot = _hub_snapshot(tmp_path / "hub", tiny_model_dir)
    other = _hub_snapshot(tmp_path / "hub", tiny_model_dir, repo="models--other--repo")
    link = snapshot / "model.safetensors.index.json"
    target = os.readlink(other / "model.safetensors.index.json")
    link.unlink()
    link.symlink_to(Path("..") / ".." / ".." / "models--other--repo" / "snapshots" / other.name / target)
    with pytest.raises(PreloadError, match="outside the model directory"):
        plan_checkpoint(snapshot)


def test_a_link_swapped_after_planning_is_not_followed(tmp_path: Path, secret: Path) -> None:
    model_dir = write_checkpoint(tmp_path / "m", sample_tensors(torch.float32, tied=True))
    real = model_dir / "blob"
    (model_dir / "model.safetensors").rename(real)
    (model_dir / "model.safetensors").symlink_to("blob")
    plan = plan_checkpoint(model_dir)
    evil = tmp_path / "evil.safetensors"
    evil.write_bytes(real.read_bytes()[:8] + SECRET[: real.stat().st_size - 8].ljust(real.stat().st_size - 8))
    (model_dir / "model.safetensors").unlink()
    (model_dir / "model.safetensors").symlink_to(evil)
    from preload.loader import MappedBackend, run_plan

    backend = MappedBackend(plan)
    run_plan(plan, backend, workers=1, verify=False, on_event=None)
    tensor = backend.tensor(plan.tensors[0])
    assert torch.equal(tensor, sample_tensors(torch.float32, tied=True)[plan.tensors[0].name])
    backend.close()


# -- item 9: hostile JSON and a config.json that disagrees with the weights ---------------------------


def test_a_header_nested_200000_deep_is_one_error(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "model.safetensors", b"[" * DEEP + b"]" * DEEP, b"")
    with pytest.raises(PreloadError, match="nested too deeply") as info:
        read_header(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["model.safetensors.index.json", "config.json"])
def test_an_index_or_config_nested_200000_deep_is_one_error(tmp_path: Path, name: str) -> None:
    model_dir = write_checkpoint(tmp_path, sample_tensors(torch.float32, tied=True), shards=2)
    (model_dir / name).write_text('{"weight_map": ' + "[" * DEEP + "]" * DEEP + "}")
    with pytest.raises(PreloadError, match="nested too deeply") as info:
        plan_checkpoint(model_dir)
    assert info.value.file == str(model_dir / name)


@pytest.mark.parametrize("shape", [[True, 8], [8, False], [8.0, 8]])
def test_a_boolean_or_float_dimension_is_refused_at_plan_time(tmp_path: Path, shape: list[object]) -> None:
    header = {"w": {"dtype": "F32", "shape": shape, "data_offsets": [0, 32]}}
    write_raw(tmp_path / "model.safetensors", header, bytes(32))
    with pytest.raises(PreloadError) as info:
        plan_checkpoint(tmp_path)
    assert info.value.tensor == "w" and info.value.field == "shape"
    assert "shape" in str(info.value) and "'w'" in str(info.value)


def _tiny_copy(tmp_path: Path, tiny_model_dir: Path, **changes: object) -> Path:
    model_dir = tmp_path / "tiny"
    model_dir.mkdir()
    for path in tiny_model_dir.iterdir():
        (model_dir / path.name).write_bytes(path.read_bytes())
    config = json.loads((model_dir / "config.json").read_text())
    config.update(changes)
    (model_dir / "config.json").write_text(json.dumps(config))
    return model_dir


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("vocab_size", 500),
        ("hidden_size", 96),
        ("intermediate_size", 100),
        ("num_hidden_layers", 6),
        ("num_attention_heads", 8),
        ("num_key_value_heads", 4),
        ("vocab_size", True),
        ("hidden_size", "64"),
    ],
)
def test_a_config_that_disagrees_with_the_weights_names_config_json(
    tmp_path: Path, tiny_model_dir: Path, field: str, value: object
) -> None:
    model_dir = _tiny_copy(tmp_path, tiny_model_dir, **{field: value})
    with pytest.raises(PreloadError) as info:
        plan_checkpoint(model_dir)
    assert info.value.file == str(model_dir / "config.json") and info.value.field == field
    assert "config.json" in str(info.value) and field in str(info.value)


def test_preload_command_reads_config_json_and_exits_2_on_a_disagreement(
    tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model_dir = _tiny_copy(tmp_path, tiny_model_dir, vocab_size=500)
    with pytest.raises(SystemExit) as exit_info:
        main(["preload", str(model_dir)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.replace("\n", "")
    assert err.startswith("error:") and "config.json" in err and "vocab_size is 500" in err

"""Settings validated once with errors naming the field; vLLM arguments from the traffic profile."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from functions.engines.vllm_args import (
    QWEN3_4B_INSTRUCT,
    ModelShape,
    TrafficProfile,
    VllmConfig,
    derive_engine_args,
)
from functions.settings import ServeSettings, SettingsError

QWEN = "Qwen/Qwen3-4B-Instruct-2507"


def test_settings_errors_name_the_field_and_value(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"rate_per_s: .*greater than 0.*got -1"):
        ServeSettings.build(engine="null", rate_per_s=-1)
    with pytest.raises(SettingsError, match=r"model: a checkpoint directory \(or model_source\) is required"):
        ServeSettings.build(engine="transformers")
    with pytest.raises(SettingsError, match="is not a directory"):
        ServeSettings.build(model=tmp_path / "missing")
    with pytest.raises(SettingsError, match="engine"):
        ServeSettings.build(engine="tensorrt")
    assert isinstance(SettingsError("x"), ValueError)


def test_settings_from_env_name_the_variable(tmp_path: Path) -> None:
    env = {"LLMFN_MODEL": str(tmp_path), "LLMFN_BURST": "20", "LLMFN_API_KEY": "k", "LLMFN_ACCESS_LOG": "0"}
    settings = ServeSettings.from_env(env)
    assert (settings.burst, settings.api_key.get_secret_value(), settings.access_log) == (20, "k", False)
    assert settings.served_model_name == tmp_path.name
    with pytest.raises(SettingsError, match=r"max_queue \(LLMFN_MAX_QUEUE\)"):
        ServeSettings.from_env({"LLMFN_ENGINE": "null", "LLMFN_MAX_QUEUE": "lots"})


@pytest.mark.parametrize("command", [["functions.serve"], ["llmfn", "serve"]])
def test_serve_flags_reject_bad_values_with_exit_2(command: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", *command, "--engine", "null", "--burst", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "burst" in result.stderr and "got 0" in result.stderr


def profile_of(trace: Path, peak: int, shared: float = 0.0) -> TrafficProfile:
    with trace.open() as handle:
        rows = list(csv.DictReader(handle))
    return TrafficProfile.from_tokens(
        [int(r["ContextTokens"]) for r in rows], [int(r["GeneratedTokens"]) for r in rows], peak, shared
    )


def test_vllm_args_for_the_seed_setup_a10g_conversation_traffic(traces_dir: Path) -> None:
    profile = profile_of(traces_dir / "azure_llm_2023_conv.csv", peak=14, shared=0.5)
    args = derive_engine_args(VllmConfig(QWEN, gpu_memory_gb=24), QWEN3_4B_INSTRUCT, profile)
    assert args.max_model_len % 1024 == 0
    assert profile.p99_total_tokens * 1.25 <= args.max_model_len < profile.p99_total_tokens * 1.25 + 1024
    assert args.max_model_len <= 8192  # the seed's 262144 -> 8192, from the real p99
    assert args.gpu_memory_utilization == 0.7
    assert args.enforce_eager is True  # 24 GB card
    assert args.enable_prefix_caching is True  # multi-turn traffic
    assert args.block_size == 16
    assert 14 <= args.max_num_seqs <= 128  # the seed's 256 was too many
    flags = args.cli_args()
    assert flags[:3] == [QWEN, "--max-model-len", str(args.max_model_len)]
    assert "--enforce-eager" in flags and "--enable-prefix-caching" in flags
    assert args.engine_kwargs()["max_num_seqs"] == args.max_num_seqs
    assert "kv_cache_tokens" not in args.engine_kwargs()


def test_vllm_args_on_a_large_gpu_keep_cuda_graphs_and_scale_sequences(traces_dir: Path) -> None:
    profile = profile_of(traces_dir / "azure_llm_2023_code.csv", peak=200)
    small = derive_engine_args(VllmConfig(QWEN, gpu_memory_gb=24), QWEN3_4B_INSTRUCT, profile)
    large = derive_engine_args(VllmConfig(QWEN, gpu_memory_gb=80), QWEN3_4B_INSTRUCT, profile)
    assert large.enforce_eager is False and small.enforce_eager is True
    assert large.enable_prefix_caching is False
    assert large.kv_cache_tokens > 5 * small.kv_cache_tokens
    assert large.max_num_seqs > small.max_num_seqs
    # KV budget: 0.7 x 24 GB - 8.04 GB weights - 1 GB reserve, at 147,456 B per token.
    assert small.kv_cache_tokens == pytest.approx((0.7 * 24e9 - 8_044_936_192 - 1e9) / 147_456, abs=16)


def test_vllm_args_refuse_a_gpu_that_cannot_hold_one_sequence() -> None:
    profile = TrafficProfile(p99_total_tokens=200_000, mean_total_tokens=50_000, peak_concurrency=1)
    with pytest.raises(ValueError, match="gpu_memory_utilization"):
        derive_engine_args(VllmConfig(QWEN, gpu_memory_gb=24), QWEN3_4B_INSTRUCT, profile)
    with pytest.raises(ValueError, match="block_size"):
        VllmConfig(QWEN, gpu_memory_gb=24, block_size=12)
    with pytest.raises(ValueError, match="gpu_memory_utilization"):
        VllmConfig(QWEN, gpu_memory_gb=24, gpu_memory_utilization=1.5)


def test_model_shape_from_a_checkpoint(tiny_model_dir: Path) -> None:
    shape = ModelShape.from_checkpoint(tiny_model_dir)
    assert (shape.num_hidden_layers, shape.num_key_value_heads, shape.head_dim) == (4, 2, 16)
    assert shape.kv_bytes_per_token == 2 * 4 * 2 * 16 * 2
    assert shape.weight_bytes > 0
    assert QWEN3_4B_INSTRUCT.kv_bytes_per_token == 147_456


def test_vllm_engine_says_what_to_do_without_vllm(tiny_model_dir: Path) -> None:
    from functions.engines import EngineUnavailableError, make_engine

    engine = make_engine(ServeSettings.build(model=tiny_model_dir, engine="vllm"))
    with pytest.raises(EngineUnavailableError, match="--engine transformers"):
        engine.load(lambda event: None)

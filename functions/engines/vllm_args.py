"""vLLM engine arguments derived from configuration and the traffic profile (pure; vLLM not needed).

Rules, calibrated on seed 001 (Qwen3-4B-Instruct on an A10G, 24 GB: max-model-len 262144 -> 8192,
gpu-memory-utilization 0.9 -> 0.7, enforce-eager, block-size 16, max-num-seqs 256 -> 128: memory
19.2 -> 11.4 GB, P95 420 -> 290 ms):

- ``max_model_len``: the p99 of prompt + output tokens x ``context_headroom``, rounded up to a multiple
  of ``context_round_tokens``, never above the model's own limit. Reserving the model's full context
  (262,144 for Qwen3-4B) wastes KV memory that 99 % of requests never touch.
- ``gpu_memory_utilization``: from configuration (default 0.7: 0.9 left no room for bursts and
  OOMed); refused when that share of the GPU cannot hold the weights plus one full-length sequence.
- ``enforce_eager``: on GPUs under ``eager_below_gpu_gb`` (40 GB: A10G, L4, T4) CUDA graphs cost
  memory the KV cache needs; on A100 / H100 they are kept (the seed notes eager is slower there).
- ``enable_prefix_caching``: when at least ``prefix_caching_from`` of requests share a prefix
  (multi-turn sessions, common system prompts): seed 001's L1 cache, 290 -> 85 ms on follow-ups.
- ``block_size``: from configuration, one of vLLM's 8 / 16 / 32 (default 16).
- ``max_num_seqs``: the sequences of mean length the KV budget holds, but no more than 1.25 x the
  peak concurrency (rounded up to 8) and ``max_num_seqs_cap``: idle sequence slots only fragment
  the cache (the seed's 256 -> 128 raised throughput 23 %).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from core.errors import InputError, PreloadError
from preload.jsonfile import read_json

DTYPE_BYTES = {"bfloat16": 2, "float16": 2, "float32": 4, "float8_e4m3fn": 1}
VLLM_BLOCK_SIZES = (8, 16, 32)


@dataclass(frozen=True)
class TrafficProfile:
    """What the traffic needs: token lengths per request and how many run at once."""

    p99_total_tokens: int
    """99th percentile of prompt + output tokens per request."""
    mean_total_tokens: float
    peak_concurrency: int
    """Requests in flight at the busiest moment one instance sees."""
    shared_prefix_fraction: float = 0.0
    """Share of requests whose prompt starts with a prefix an earlier request sent (0-1)."""

    @classmethod
    def from_tokens(
        cls,
        prompt_tokens: Sequence[float],
        output_tokens: Sequence[float],
        peak_concurrency: int,
        shared_prefix_fraction: float = 0.0,
    ) -> TrafficProfile:
        """From per-request token counts (e.g. a trace's ContextTokens / GeneratedTokens columns)."""
        if len(prompt_tokens) == 0 or len(prompt_tokens) != len(output_tokens):
            raise InputError("prompt_tokens / output_tokens: need equally many requests, at least one")
        total = np.asarray(prompt_tokens, dtype=float) + np.asarray(output_tokens, dtype=float)
        return cls(
            p99_total_tokens=math.ceil(float(np.percentile(total, 99))),
            mean_total_tokens=float(total.mean()),
            peak_concurrency=peak_concurrency,
            shared_prefix_fraction=shared_prefix_fraction,
        )


@dataclass(frozen=True)
class ModelShape:
    """The parts of a model's config that size its KV cache; ``weight_bytes`` as stored."""

    max_position_embeddings: int
    num_hidden_layers: int
    num_key_value_heads: int
    head_dim: int
    weight_bytes: int
    dtype_bytes: int = 2

    @property
    def kv_bytes_per_token(self) -> int:
        """Key + value bytes one token occupies across all layers."""
        return 2 * self.num_hidden_layers * self.num_key_value_heads * self.head_dim * self.dtype_bytes

    @classmethod
    def from_checkpoint(cls, model_dir: str | Path) -> ModelShape:
        """From ``config.json`` and the safetensors files' sizes."""
        root = Path(model_dir)
        config = read_json(root, root / "config.json", "config")  # links confined to the directory
        if not isinstance(config, dict):
            raise PreloadError("config is not a JSON object", file=root / "config.json")
        heads = config["num_attention_heads"]
        head_dim = config.get("head_dim") or config["hidden_size"] // heads
        dtype = str(config.get("torch_dtype") or config.get("dtype") or "bfloat16")
        return cls(
            max_position_embeddings=config["max_position_embeddings"],
            num_hidden_layers=config["num_hidden_layers"],
            num_key_value_heads=config.get("num_key_value_heads", heads),
            head_dim=head_dim,
            weight_bytes=sum(p.stat().st_size for p in root.glob("*.safetensors")),
            dtype_bytes=DTYPE_BYTES.get(dtype, 2),
        )


QWEN3_4B_INSTRUCT = ModelShape(
    max_position_embeddings=262_144,
    num_hidden_layers=36,
    num_key_value_heads=8,
    head_dim=128,
    weight_bytes=8_044_936_192,
)
"""Qwen3-4B-Instruct-2507 (docs/sources.md, checkpoint facts)."""


@dataclass(frozen=True)
class VllmConfig:
    """The operator's choices; ``None`` means: derive it from the profile."""

    model: str
    gpu_memory_gb: float
    """GPU memory in GB (10^9 bytes): A10G 24, L4 24, A100 40 / 80, H100 80."""
    gpu_memory_utilization: float = 0.7
    block_size: int = 16
    context_headroom: float = 1.25
    context_round_tokens: int = 1024
    max_num_seqs_cap: int = 256
    enforce_eager: bool | None = None
    eager_below_gpu_gb: float = 40.0
    enable_prefix_caching: bool | None = None
    prefix_caching_from: float = 0.1
    activation_reserve_gb: float = 1.0
    """GPU memory kept for activations and the CUDA context, GB."""
    tensor_parallel_size: int = 1
    swap_space_gb: float = 4.0

    def __post_init__(self) -> None:
        if not 0.1 <= self.gpu_memory_utilization <= 0.98:
            raise InputError(
                f"gpu_memory_utilization: must be within 0.1-0.98, got {self.gpu_memory_utilization}"
            )
        if self.block_size not in VLLM_BLOCK_SIZES:
            raise InputError(f"block_size: must be one of {VLLM_BLOCK_SIZES}, got {self.block_size}")
        if self.gpu_memory_gb <= 0:
            raise InputError(f"gpu_memory_gb: must be > 0, got {self.gpu_memory_gb}")
        if self.context_headroom < 1:
            raise InputError(f"context_headroom: must be >= 1, got {self.context_headroom}")


@dataclass(frozen=True)
class VllmEngineArgs:
    """Arguments of ``vllm.AsyncEngineArgs`` / ``vllm serve``."""

    model: str
    max_model_len: int
    gpu_memory_utilization: float
    enforce_eager: bool
    enable_prefix_caching: bool
    block_size: int
    max_num_seqs: int
    tensor_parallel_size: int
    swap_space: float
    kv_cache_tokens: int
    """Tokens the KV budget holds (information; not a vLLM argument)."""

    def engine_kwargs(self) -> dict[str, object]:
        """Keyword arguments for ``vllm.AsyncEngineArgs``."""
        kwargs = asdict(self)
        kwargs.pop("kv_cache_tokens")
        return kwargs

    def cli_args(self) -> list[str]:
        """The same as ``vllm serve`` flags."""
        args = [self.model]
        for name, value in self.engine_kwargs().items():
            if name == "model":
                continue
            flag = "--" + name.replace("_", "-")
            if isinstance(value, bool):
                args.append(flag if value else "--no-" + name.replace("_", "-"))
            else:
                args += [flag, str(value)]
        return args


def derive_engine_args(config: VllmConfig, model: ModelShape, profile: TrafficProfile) -> VllmEngineArgs:
    """Apply the module's rules; ``ValueError`` naming the field when the GPU cannot serve the profile."""
    wanted = profile.p99_total_tokens * config.context_headroom
    max_model_len = min(
        model.max_position_embeddings,
        max(
            config.context_round_tokens,
            math.ceil(wanted / config.context_round_tokens) * config.context_round_tokens,
        ),
    )
    budget_bytes = (
        config.gpu_memory_gb * 1e9 * config.gpu_memory_utilization * config.tensor_parallel_size
        - model.weight_bytes
        - config.activation_reserve_gb * 1e9
    )
    kv_tokens = int(budget_bytes // model.kv_bytes_per_token) if budget_bytes > 0 else 0
    kv_tokens -= kv_tokens % config.block_size
    if kv_tokens < max_model_len:
        raise InputError(
            f"gpu_memory_utilization: {config.gpu_memory_utilization} of {config.gpu_memory_gb} GB leaves "
            f"room for {kv_tokens} KV tokens after {model.weight_bytes / 1e9:.2f} GB of weights, fewer than "
            f"one {max_model_len}-token sequence; raise it, use a larger GPU or a shorter context"
        )
    by_memory = max(1, int(kv_tokens // max(1.0, profile.mean_total_tokens)))
    by_traffic = max(8, math.ceil(profile.peak_concurrency * 1.25 / 8) * 8)
    enforce_eager = (
        config.enforce_eager
        if config.enforce_eager is not None
        else config.gpu_memory_gb < config.eager_below_gpu_gb
    )
    prefix_caching = (
        config.enable_prefix_caching
        if config.enable_prefix_caching is not None
        else profile.shared_prefix_fraction >= config.prefix_caching_from
    )
    return VllmEngineArgs(
        model=config.model,
        max_model_len=max_model_len,
        gpu_memory_utilization=config.gpu_memory_utilization,
        enforce_eager=enforce_eager,
        enable_prefix_caching=prefix_caching,
        block_size=config.block_size,
        max_num_seqs=min(by_memory, by_traffic, config.max_num_seqs_cap),
        tensor_parallel_size=config.tensor_parallel_size,
        swap_space=config.swap_space_gb,
        kv_cache_tokens=kv_tokens,
    )

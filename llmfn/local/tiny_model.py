"""The embedded default model: a tiny Qwen3-architecture checkpoint with random weights.

Built once (seeded, deterministic) and cached on disk as sharded safetensors with an index,
a ``config.json``, a ``generation_config.json`` and a small BPE tokenizer with a Qwen-style chat
template. It exercises exactly the code path of a real hub checkpoint (``preload/`` reads it,
the transformers engine serves it) but its answers are noise: it was never trained.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from core.contract import ENV_CACHE

TINY_MODEL_NAME = "llmfn/tiny-qwen3-random"
"""The model id the tiny model is served under."""

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

_CORPUS = """
The quick brown fox jumps over the lazy dog. Serverless functions scale to zero when idle.
A reserved instance answers the first request of a burst without a cold start.
def add(a, b): return a + b  # code completion requests are short answers to long prompts
for i in range(10): print(i * i)
Little's law: concurrency equals arrival rate times time in system. 1 + 2 = 3, x^2 + y^2 = z^2.
Hello! How can I help you today? Please summarise this document in three sentences.
The model loads its embedding first, then the transformer blocks in parallel from the shards.
"""


@dataclass(frozen=True)
class TinyModelSpec:
    """Shape of the tiny model. Defaults give ~0.4 M parameters (~0.8 MB in bf16)."""

    vocab_size: int = 384
    hidden_size: int = 64
    intermediate_size: int = 128
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    head_dim: int = 16
    max_position_embeddings: int = 2048
    tie_word_embeddings: bool = True
    dtype: str = "bfloat16"
    max_shard_size: str = "150KB"
    seed: int = 0


def default_cache_dir() -> Path:
    """Where built tiny models are cached: ``$LLMFN_CACHE`` or ``~/.cache/llmfn``."""
    return Path(os.environ.get(ENV_CACHE, Path.home() / ".cache" / "llmfn"))


def _spec_key(spec: TinyModelSpec) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(asdict(spec), sort_keys=True).encode()).hexdigest()[:12]


def build_tokenizer(vocab_size: int):  # -> transformers.PreTrainedTokenizerFast
    """Train a byte-level BPE tokenizer on a tiny embedded corpus (deterministic)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS.strip().splitlines(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        bos_token=None,
        additional_special_tokens=["<|im_start|>"],
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tiny_model(out_dir: str | os.PathLike[str], spec: TinyModelSpec | None = None) -> Path:
    """Write the tiny model to ``out_dir`` (created) and return it. Deterministic for a given spec."""
    import torch
    from transformers import GenerationConfig, Qwen3Config, Qwen3ForCausalLM

    spec = spec or TinyModelSpec()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(spec.vocab_size)
    config = Qwen3Config(
        vocab_size=spec.vocab_size,
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_hidden_layers,
        num_attention_heads=spec.num_attention_heads,
        num_key_value_heads=spec.num_key_value_heads,
        head_dim=spec.head_dim,
        max_position_embeddings=spec.max_position_embeddings,
        tie_word_embeddings=spec.tie_word_embeddings,
        bos_token_id=None,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
    )
    torch.manual_seed(spec.seed)
    dtype = getattr(torch, spec.dtype)
    model = Qwen3ForCausalLM(config).to(dtype).eval()
    model.save_pretrained(out, max_shard_size=spec.max_shard_size, safe_serialization=True)
    GenerationConfig(
        eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id, do_sample=False
    ).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def ensure_tiny_model(
    cache_dir: str | os.PathLike[str] | None = None, spec: TinyModelSpec | None = None
) -> Path:
    """Return the cached tiny model directory, building it first if absent (atomic rename)."""
    spec = spec or TinyModelSpec()
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = root / f"tiny-qwen3-{_spec_key(spec)}"
    if (target / "config.json").exists():
        return target
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tiny-", dir=root))
    try:
        build_tiny_model(tmp, spec)
        try:
            tmp.rename(target)
        except OSError:  # another process won the race
            if not (target / "config.json").exists():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target

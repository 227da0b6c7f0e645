"""``config.json`` against the weights: the sizes the model is built with must be the tensors' sizes.

transformers builds the model from ``config.json`` and only then meets the weights, so a vocabulary or
hidden size that disagrees surfaces as a size mismatch deep inside ``load_state_dict``, naming neither
the file nor the field. Checked at plan time instead, from the headers alone (no byte of the weights
read), for the sizes every decoder of the Llama / Qwen family names the same way (README.md, "Start
fast").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from core.errors import PreloadError
from preload.jsonfile import read_json

CONFIG_FILE = "config.json"
_EMBEDDING = re.compile(r"(?:^|\.)(?:embed_tokens|wte)\.weight$")
_HEAD = re.compile(r"(?:^|\.)lm_head\.weight$")
_FINAL_NORM = re.compile(r"^(?:model\.)?norm\.weight$")
_MLP_UP = re.compile(r"(?:^|\.)layers\.0\.mlp\.(?:up|gate)_proj\.weight$")
_Q_PROJ = re.compile(r"(?:^|\.)layers\.0\.self_attn\.q_proj\.weight$")
_K_PROJ = re.compile(r"(?:^|\.)layers\.0\.self_attn\.k_proj\.weight$")


def _size(config: Mapping[str, object], key: str, path: Path) -> int | None:
    value = config.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise PreloadError(
            f"is {value!r} in {CONFIG_FILE}, not a positive integer",
            file=path,
            field=key,
            value=value,
            allowed="a positive integer",
        )
    return value


def check_config(model_dir: Path, shapes: Mapping[str, tuple[int, ...]], layers: int) -> None:
    """Refuse ``model_dir/config.json`` (when there is one) whose ``vocab_size``, ``hidden_size``,
    ``num_hidden_layers``, ``intermediate_size``, ``num_attention_heads`` / ``num_key_value_heads`` x
    ``head_dim`` disagree with ``shapes`` (tensor name -> shape) and ``layers`` (numbered layers in the
    weights): one :class:`PreloadError` naming ``config.json``, the field and the tensor."""
    path = model_dir / CONFIG_FILE
    if not path.exists():
        return
    config = read_json(model_dir, path, "config")
    if not isinstance(config, dict):
        raise PreloadError("config is not a JSON object", file=path)
    text = config.get("text_config")
    if isinstance(text, dict) and "vocab_size" not in config:  # a multimodal model's language part
        config = text
    vocab, hidden = _size(config, "vocab_size", path), _size(config, "hidden_size", path)
    heads, kv_heads = _size(config, "num_attention_heads", path), _size(config, "num_key_value_heads", path)
    head_dim = _size(config, "head_dim", path)
    if head_dim is None and hidden is not None and heads:
        head_dim = hidden // heads
    expected: list[tuple[re.Pattern[str], int, str, int | None]] = [
        (_EMBEDDING, 0, "vocab_size", vocab),
        (_EMBEDDING, 1, "hidden_size", hidden),
        (_HEAD, 0, "vocab_size", vocab),
        (_HEAD, 1, "hidden_size", hidden),
        (_FINAL_NORM, 0, "hidden_size", hidden),
        (_MLP_UP, 0, "intermediate_size", _size(config, "intermediate_size", path)),
        (_Q_PROJ, 0, "num_attention_heads", heads * head_dim if heads and head_dim else None),
        (_K_PROJ, 0, "num_key_value_heads", kv_heads * head_dim if kv_heads and head_dim else None),
    ]
    for name, shape in shapes.items():
        for pattern, axis, key, want in expected:
            if want is not None and pattern.search(name) and len(shape) > axis and shape[axis] != want:
                declared = config.get(key)
                raise PreloadError(
                    f"is {declared} in {CONFIG_FILE} (the model needs {want} on axis {axis}), but the weights "
                    f"have {shape[axis]} (shape {list(shape)})",
                    file=path,
                    tensor=name,
                    field=key,
                    value=declared,
                    allowed=str(shape[axis]),
                )
    declared_layers = _size(config, "num_hidden_layers", path)
    if declared_layers is not None and layers and declared_layers > layers:  # more: extra (MTP) layers
        raise PreloadError(
            f"is {declared_layers} in {CONFIG_FILE}, but the weights hold only {layers} numbered layers",
            file=path,
            field="num_hidden_layers",
            value=declared_layers,
            allowed=str(layers),
        )

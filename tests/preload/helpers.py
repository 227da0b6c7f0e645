"""Checkpoint writers and a deferred-copy transfer for the preload tests."""

from __future__ import annotations

import json
import struct
import threading
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file


def sample_tensors(
    dtype: torch.dtype, *, tied: bool, layers: int = 3, seed: int = 0
) -> dict[str, torch.Tensor]:
    """A small LM-shaped state dict in ``dtype`` (with ``lm_head.weight`` unless ``tied``)."""
    gen = torch.Generator().manual_seed(seed)

    def make(*shape: int) -> torch.Tensor:
        if dtype.is_floating_point:
            return torch.randn(*shape, generator=gen).to(dtype)
        return torch.randint(-128, 128, shape, generator=gen, dtype=torch.int64).to(dtype)

    tensors = {"model.embed_tokens.weight": make(50, 8), "model.norm.weight": make(8)}
    for layer in range(layers):
        tensors[f"model.layers.{layer}.self_attn.q_proj.weight"] = make(8, 8)
        tensors[f"model.layers.{layer}.mlp.up_proj.weight"] = make(24, 8)
        tensors[f"model.layers.{layer}.input_layernorm.weight"] = make(8)
    if not tied:
        tensors["lm_head.weight"] = make(50, 8)
    return tensors


def write_checkpoint(directory: Path, tensors: dict[str, torch.Tensor], shards: int = 1) -> Path:
    """Save ``tensors`` as ``model.safetensors`` (one shard) or ``shards`` files plus the index."""
    directory.mkdir(parents=True, exist_ok=True)
    if shards == 1:
        save_file(tensors, directory / "model.safetensors")
        return directory
    names = list(tensors)
    weight_map: dict[str, str] = {}
    for i in range(shards):
        shard_name = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        part = {n: tensors[n] for n in names[i::shards]}
        save_file(part, directory / shard_name)
        weight_map.update(dict.fromkeys(part, shard_name))
    (directory / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {}, "weight_map": weight_map})
    )
    return directory


def write_raw(
    path: Path, header: dict[str, object] | bytes, data: bytes, header_len: int | None = None
) -> Path:
    """A safetensors file with a header written exactly as given (for corrupt cases)."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw) if header_len is None else header_len) + raw + data)
    return path


@dataclass(eq=False)
class _Copy:
    dst: torch.Tensor
    src: torch.Tensor
    done: bool = False


class DeferredTransfer:
    """A host-memory :class:`preload.staged.Transfer` whose copies run only when waited for.

    Like a real copy engine it may run a copy long after it was queued, so a loader that reuses a
    staging buffer before waiting for its fence ends up with wrong bytes.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queued: dict[int, list[_Copy]] = {}
        self.copies_run = 0
        self.waits = 0
        self.staging_buffers = 0

    def init_device(self) -> None:
        return None

    def empty(self, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        tensor = torch.empty(shape, dtype=dtype)
        tensor.reshape(-1).view(torch.uint8).fill_(0x77)  # not zero: a missed copy shows
        return tensor

    def staging(self, nbytes: int) -> torch.Tensor:
        self.staging_buffers += 1
        return torch.empty(nbytes, dtype=torch.uint8)

    def copy(self, dst: torch.Tensor, src: torch.Tensor) -> None:
        with self._lock:
            self._queued.setdefault(threading.get_ident(), []).append(_Copy(dst, src))

    def fence(self) -> object:
        with self._lock:
            queue = [c for c in self._queued.get(threading.get_ident(), []) if not c.done]
            self._queued[threading.get_ident()] = queue
            return list(queue)

    def wait(self, fence: object) -> None:
        self.waits += 1
        for copy in fence:  # type: ignore[attr-defined]
            self._run(copy)

    def synchronize(self) -> None:
        with self._lock:
            every = [c for queue in self._queued.values() for c in queue]
            self._queued.clear()
        for copy in every:
            self._run(copy)

    def _run(self, copy: _Copy) -> None:
        with self._lock:
            if not copy.done:
                copy.dst.copy_(copy.src)
                copy.done = True
                self.copies_run += 1

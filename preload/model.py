"""The ``engine`` stage for transformers: a causal LM built around the loaded tensors, no second copy."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from preload.errors import PreloadError
from preload.events import STAGE_ENGINE, STAGES, EventCallback, StageEvent
from preload.loader import LoadedCheckpoint, StageTiming

if TYPE_CHECKING:
    import torch


def _materialize_meta_buffers(model: torch.nn.Module, device: torch.device) -> None:
    """Give buffers left on meta (non-persistent ones such as rotary ``inv_freq``) real memory and values.

    Recomputed the way transformers itself does after a meta-device load: the model's ``_init_weights``
    on each module that owns such a buffer and no parameter (so loaded weights are never re-initialised;
    any other meta buffer is left for the caller to refuse).
    """
    import torch

    for module in model.modules():
        names = [name for name, buffer in module.named_buffers(recurse=False) if buffer.is_meta]
        if names and not any(True for _ in module.parameters(recurse=False)):  # never re-init loaded weights
            for name in names:
                module._buffers[name] = torch.empty_like(module._buffers[name], device=device)
            model._init_weights(module)


def build_causal_lm(
    loaded: LoadedCheckpoint,
    model_dir: str | os.PathLike[str] | None = None,
    *,
    on_event: EventCallback | None = None,
    warmup: bool = True,
) -> Any:
    """Build the transformers causal LM of ``model_dir`` (default: the loaded one) from ``loaded``'s tensors.

    The model is created on the meta device (a thread-local context: safe beside other threads) and its
    parameters replaced by the loaded tensors (``assign=True``: no copy); tied weights are re-tied,
    non-persistent buffers (rotary frequencies) computed; the model is put in eval mode on the tensors' device and, with
    ``warmup``, runs one forward pass. This is the ``engine`` stage: its events go to ``on_event`` and
    its timing is appended to ``loaded.timings``. Raises :class:`PreloadError` when the tensors do not
    match the model's parameters.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    source = Path(model_dir) if model_dir is not None else loaded.plan.model_dir
    index = STAGES.index(STAGE_ENGINE)
    started = time.perf_counter()
    if on_event is not None:
        on_event(StageEvent(STAGE_ENGINE, "start", 0, 0, 0.0, index, len(STAGES)))
    config = AutoConfig.from_pretrained(source)
    dtypes = {t.dtype for t in loaded.tensors.values() if t.is_floating_point()}
    dtype = next(iter(dtypes)) if len(dtypes) == 1 else None
    with torch.device("meta"):  # thread-local: no memory, no initialisation cost, nothing patched
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    result = model.load_state_dict(loaded.tensors, strict=False, assign=True)
    model.tie_weights()
    device = torch.device(loaded.device)
    _materialize_meta_buffers(model, device)
    if result.unexpected_keys:
        raise PreloadError(
            f"checkpoint holds {len(result.unexpected_keys)} tensors the model does not use",
            file=source,
            tensor=result.unexpected_keys[0],
        )
    still_meta = [
        name for name, tensor in [*model.named_parameters(), *model.named_buffers()] if tensor.is_meta
    ]
    if still_meta:
        raise PreloadError(
            f"checkpoint lacks {len(still_meta)} parameters or buffers of the model",
            file=source,
            tensor=still_meta[0],
        )
    model.to(device).eval()
    if warmup:
        with torch.inference_mode():
            model(input_ids=torch.zeros((1, 1), dtype=torch.long, device=device))
    seconds = time.perf_counter() - started
    loaded.timings.append(StageTiming(STAGE_ENGINE, 0, seconds))
    if on_event is not None:
        on_event(StageEvent(STAGE_ENGINE, "end", 0, 0, seconds, index, len(STAGES)))
    return model


def parameter_bytes(model: torch.nn.Module) -> int:
    """Bytes held by the model's parameters (tied parameters counted once)."""
    return sum(p.numel() * p.element_size() for p in model.parameters())

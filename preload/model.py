"""The ``engine`` stage for transformers: a causal LM built around the loaded tensors, no second copy."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import PreloadError
from preload.events import STAGE_ENGINE, STAGES, EventCallback, StageEvent
from preload.loader import LoadedCheckpoint, StageTiming
from preload.memory import torch_dtype
from preload.plan import PreloadPlan

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


def build_skeleton(model_dir: str | os.PathLike[str], dtype: torch.dtype | None = None) -> Any:
    """The transformers causal LM of ``model_dir``'s config on the meta device: no memory, no init.

    Needs only ``config.json``, so it can be built while the weights are still arriving; the meta
    device is a thread-local context (safe beside other threads). ``dtype``: the weights' dtype.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(model_dir)
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config, dtype=dtype)


def attach_weights(
    model: Any,
    loaded: LoadedCheckpoint,
    *,
    on_event: EventCallback | None = None,
    warmup: bool = True,
    started: float | None = None,
) -> Any:
    """Give a skeleton (:func:`build_skeleton`) ``loaded``'s tensors: the ``engine`` stage.

    Parameters are replaced by the loaded tensors (``assign=True``: no copy); tied weights are re-tied,
    non-persistent buffers (rotary frequencies) computed; the model is put in eval mode on the tensors'
    device and, with ``warmup``, runs one forward pass. Its events go to ``on_event`` and its timing
    (from ``started``, a ``time.perf_counter()`` instant, default now) is appended to ``loaded.timings``.
    Raises :class:`PreloadError` when the tensors do not match the model's parameters.
    """
    import torch

    source = loaded.plan.model_dir
    index = STAGES.index(STAGE_ENGINE)
    started = time.perf_counter() if started is None else started
    if on_event is not None:
        on_event(StageEvent(STAGE_ENGINE, "start", 0, 0, time.perf_counter() - started, index, len(STAGES)))
    result = model.load_state_dict(loaded.tensors, strict=False, assign=True)
    model.tie_weights()
    device = torch.device(loaded.device)
    _materialize_meta_buffers(model, device)
    if result.unexpected_keys:
        raise PreloadError(
            f"checkpoint holds {len(result.unexpected_keys)} tensors the model built from config.json does not use",
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


def plan_dtype(plan: PreloadPlan) -> torch.dtype | None:
    """The one floating dtype of a planned checkpoint's tensors (``None`` when mixed): known before its bytes."""
    codes = {t.dtype for t in plan.tensors if t.dtype.startswith(("F", "BF"))}
    return torch_dtype(next(iter(codes))) if len(codes) == 1 else None


def weights_dtype(loaded: LoadedCheckpoint) -> torch.dtype | None:
    """The one floating dtype of the loaded tensors (``None`` when mixed)."""
    dtypes = {t.dtype for t in loaded.tensors.values() if t.is_floating_point()}
    return next(iter(dtypes)) if len(dtypes) == 1 else None


def build_causal_lm(
    loaded: LoadedCheckpoint,
    model_dir: str | os.PathLike[str] | None = None,
    *,
    on_event: EventCallback | None = None,
    warmup: bool = True,
) -> Any:
    """Build the transformers causal LM of ``model_dir`` (default: the loaded one) from ``loaded``'s tensors.

    :func:`build_skeleton` then :func:`attach_weights`, timed together as the ``engine`` stage.
    """
    started = time.perf_counter()
    if on_event is not None:
        index = STAGES.index(STAGE_ENGINE)
        on_event(StageEvent(STAGE_ENGINE, "start", 0, 0, 0.0, index, len(STAGES)))
    model = build_skeleton(
        Path(model_dir) if model_dir is not None else loaded.plan.model_dir, weights_dtype(loaded)
    )
    return attach_weights(model, loaded, on_event=_without_start(on_event), warmup=warmup, started=started)


def _without_start(on_event: EventCallback | None) -> EventCallback | None:
    if on_event is None:
        return None
    return lambda event: None if event.kind == "start" else on_event(event)


def parameter_bytes(model: torch.nn.Module) -> int:
    """Bytes held by the model's parameters (tied parameters counted once)."""
    return sum(p.numel() * p.element_size() for p in model.parameters())

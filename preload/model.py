"""The ``engine`` stage for transformers: a causal LM built around the loaded tensors, no second copy."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from preload.errors import PreloadError
from preload.events import STAGE_ENGINE, STAGES, EventCallback, StageEvent
from preload.loader import LoadedCheckpoint, StageTiming

if TYPE_CHECKING:
    import torch


@contextmanager
def _parameters_on_meta() -> Iterator[None]:
    """Create every ``nn.Parameter`` on the meta device (no memory, no init); buffers stay real."""
    import torch

    original = torch.nn.Module.register_parameter

    def register_on_meta(module: torch.nn.Module, name: str, param: torch.nn.Parameter | None) -> None:
        if param is not None and param.device.type != "meta":
            param = torch.nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
        original(module, name, param)

    torch.nn.Module.register_parameter = register_on_meta  # type: ignore[method-assign]
    try:
        yield
    finally:
        torch.nn.Module.register_parameter = original  # type: ignore[method-assign]


def build_causal_lm(
    loaded: LoadedCheckpoint,
    model_dir: str | os.PathLike[str] | None = None,
    *,
    on_event: EventCallback | None = None,
    warmup: bool = True,
) -> Any:
    """Build the transformers causal LM of ``model_dir`` (default: the loaded one) from ``loaded``'s tensors.

    Parameters are created on the meta device and replaced by the loaded tensors (``assign=True``: no
    copy); tied weights are re-tied; the model is put in eval mode on the tensors' device and, with
    ``warmup``, runs one forward pass. This is the ``engine`` stage: its events go to ``on_event`` and
    its timing is appended to ``loaded.timings``. Raises :class:`PreloadError` when the tensors do not
    match the model's parameters.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.initialization import no_init_weights

    source = Path(model_dir) if model_dir is not None else loaded.plan.model_dir
    index = STAGES.index(STAGE_ENGINE)
    started = time.perf_counter()
    if on_event is not None:
        on_event(StageEvent(STAGE_ENGINE, "start", 0, 0, 0.0, index, len(STAGES)))
    config = AutoConfig.from_pretrained(source)
    dtypes = {t.dtype for t in loaded.tensors.values() if t.is_floating_point()}
    dtype = next(iter(dtypes)) if len(dtypes) == 1 else None
    with _parameters_on_meta(), no_init_weights():
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    result = model.load_state_dict(loaded.tensors, strict=False, assign=True)
    model.tie_weights()
    if result.unexpected_keys:
        raise PreloadError(
            f"checkpoint holds {len(result.unexpected_keys)} tensors the model does not use",
            file=source,
            tensor=result.unexpected_keys[0],
        )
    still_meta = [name for name, param in model.named_parameters() if param.device.type == "meta"]
    if still_meta:
        raise PreloadError(
            f"checkpoint lacks {len(still_meta)} parameters of the model", file=source, tensor=still_meta[0]
        )
    device = torch.device(loaded.device)
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

"""The engine stage: a model built from preloaded tensors equals ``from_pretrained`` on the same checkpoint."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from preload import PreloadError, StageEvent, build_causal_lm, load_checkpoint
from preload.model import parameter_bytes


@pytest.mark.parametrize("method", ["mmap", "read"])
def test_logits_equal_from_pretrained(tiny_model_dir: Path, method: str) -> None:
    events: list[StageEvent] = []
    loaded = load_checkpoint(tiny_model_dir, workers=2, method=method, on_event=events.append)
    model = build_causal_lm(loaded, on_event=events.append)
    reference = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    ids = torch.tensor([[1, 5, 7, 9, 100, 3, 42, 17]])
    with torch.inference_mode():
        assert torch.equal(model(input_ids=ids).logits, reference(input_ids=ids).logits)
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()  # tied, not copied
    embed = loaded.tensors["model.embed_tokens.weight"]
    assert model.model.embed_tokens.weight.data_ptr() == embed.data_ptr()  # assigned, no second copy
    assert parameter_bytes(model) == loaded.plan.total_bytes
    assert [e.stage for e in events if e.kind == "end"][-1] == "engine"
    assert loaded.seconds_until("engine") >= loaded.seconds_until("final")


def test_checkpoint_missing_a_parameter_is_refused(tiny_model_dir: Path) -> None:
    loaded = load_checkpoint(tiny_model_dir)
    del loaded.tensors["model.layers.1.mlp.up_proj.weight"]
    with pytest.raises(PreloadError, match="lacks 1 parameters or buffers") as info:
        build_causal_lm(loaded)
    assert info.value.tensor == "model.layers.1.mlp.up_proj.weight"


def test_checkpoint_with_foreign_tensors_is_refused(tiny_model_dir: Path) -> None:
    loaded = load_checkpoint(tiny_model_dir)
    loaded.tensors["vision_tower.weight"] = torch.zeros(2)
    with pytest.raises(PreloadError, match="does not use") as info:
        build_causal_lm(loaded, tiny_model_dir, warmup=False)
    assert info.value.tensor == "vision_tower.weight"


def test_building_leaves_other_threads_modules_alone(tiny_model_dir: Path) -> None:
    loaded = load_checkpoint(tiny_model_dir)
    built = threading.Event()
    devices: list[str] = []

    def build() -> None:
        build_causal_lm(loaded, warmup=False)
        built.set()

    builder = threading.Thread(target=build)
    builder.start()
    while not built.is_set():  # modules made here while the other thread builds stay real
        devices.append(torch.nn.Linear(4, 4).weight.device.type)
    builder.join()
    assert devices and set(devices) == {"cpu"}

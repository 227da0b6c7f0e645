"""Engines generate tokens for the app: ``transformers`` (CPU/GPU, the local default), ``vllm`` (GPU,
imported lazily) and ``null`` (a fixed answer, no model: benchmarks of the app itself)."""

from __future__ import annotations

from functions.engines.base import Chunk, Engine, EngineUnavailableError, Prompt, SamplingParams
from functions.settings import ServeSettings

__all__ = ["Chunk", "Engine", "EngineUnavailableError", "Prompt", "SamplingParams", "make_engine"]


def make_engine(settings: ServeSettings) -> Engine:
    """The engine named by ``settings.engine`` (not loaded yet: call ``load`` in a thread)."""
    if settings.engine == "null":
        from functions.engines.null import NullEngine

        return NullEngine(settings.served_model_name, settings.null_completion_tokens)
    if settings.engine == "vllm":
        from functions.engines.vllm_engine import VllmEngine

        return VllmEngine(settings)
    from functions.engines.transformers_engine import TransformersEngine

    return TransformersEngine(settings)

"""The vLLM engine (GPU): vLLM is imported only in ``load``; it is not a dependency of llmfn.

vLLM reads the checkpoint files itself, so the preload warms the page cache with the same stages
(``preload.prefetch_to_page_cache``) and vLLM's engine start is reported as the ``engine`` stage.
Engine arguments come from ``vllm_args.derive_engine_args`` with the checkpoint's shape, the
settings' context length (as the traffic's p99; the mean request is assumed to use
``MEAN_CONTEXT_SHARE`` of it when no measured profile is given) and the GPU's memory.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from functions.engines.base import CheckpointEngine, Chunk, EngineUnavailableError, Prompt, SamplingParams
from functions.engines.vllm_args import ModelShape, TrafficProfile, VllmConfig, derive_engine_args
from functions.settings import ServeSettings
from preload.events import STAGE_ENGINE, STAGES, EventCallback, StageEvent

MEAN_CONTEXT_SHARE = 0.25


class VllmEngine(CheckpointEngine):
    """AsyncLLMEngine behind the ``Engine`` protocol."""

    def __init__(self, settings: ServeSettings) -> None:
        super().__init__(settings)
        self.settings = settings
        self._engine: Any = None
        self._sampling_params: Any = None

    def load(self, on_event: EventCallback) -> None:
        try:
            import torch
            import vllm
        except ImportError as exc:
            raise EngineUnavailableError(
                f"engine 'vllm' needs the vllm package and a CUDA GPU ({exc}); install vllm on the GPU "
                "image or serve with --engine transformers"
            ) from None
        if not torch.cuda.is_available():
            raise EngineUnavailableError("engine 'vllm' needs a CUDA GPU; none is visible")
        from transformers import AutoTokenizer

        import preload

        model_dir = self.resolve_model_dir()
        preload.prefetch_to_page_cache(model_dir, workers=self.settings.preload_workers, on_event=on_event)
        shape = ModelShape.from_checkpoint(model_dir)
        context = self.settings.max_model_len or shape.max_position_embeddings
        profile = TrafficProfile(
            p99_total_tokens=context,
            mean_total_tokens=context * MEAN_CONTEXT_SHARE,
            peak_concurrency=self.settings.max_concurrency,
        )
        gpu_gb = torch.cuda.get_device_properties(0).total_memory / 1e9
        args = derive_engine_args(VllmConfig(str(model_dir), gpu_gb, context_headroom=1.0), shape, profile)
        index = STAGES.index(STAGE_ENGINE)
        started = time.perf_counter()
        on_event(StageEvent(STAGE_ENGINE, "start", 0, 0, 0.0, index, len(STAGES)))
        self._engine = vllm.AsyncLLMEngine.from_engine_args(vllm.AsyncEngineArgs(**args.engine_kwargs()))
        self._tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self._sampling_params = vllm.SamplingParams
        self.context_len = args.max_model_len
        on_event(StageEvent(STAGE_ENGINE, "end", 0, 0, time.perf_counter() - started, index, len(STAGES)))

    async def generate(self, prompt: Prompt, params: SamplingParams) -> AsyncIterator[Chunk]:
        sampling = self._sampling_params(
            max_tokens=params.max_tokens, temperature=params.temperature, top_p=params.top_p, seed=params.seed
        )
        request_id = uuid.uuid4().hex
        emitted = 0
        finished = False
        try:
            async for output in self._engine.generate(
                {"prompt_token_ids": list(prompt.token_ids)}, sampling, request_id
            ):
                completion = output.outputs[0]
                text = completion.text[emitted:]
                emitted = len(completion.text)
                finished = output.finished
                yield Chunk(text, len(completion.token_ids), completion.finish_reason if finished else None)
        finally:
            if not finished:
                await self._engine.abort(request_id)

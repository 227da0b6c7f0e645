"""The vLLM engine (GPU): vLLM is imported only in ``load``; it is not a dependency of llmfn.

vLLM reads the checkpoint files itself, so the preload warms the page cache with the same stages
(``preload.prefetch_to_page_cache``), started by :meth:`VllmEngine.begin` in a thread; vLLM's import and
engine start (engine-core process, CUDA context, KV-cache sizing, its own weight reads, which find the
pages the prefetch brought in) run concurrently with it instead of after it, reported as ``engine``.

Why not hand vLLM llmfn's loaded tensors: vLLM loads the model in its engine-core / worker processes
(``vllm.model_executor.model_loader.get_model_loader(load_config)`` picks the loader class registered for
``load_format``; ``register_model_loader(name)`` adds one), so tensors loaded in this process cannot be
passed in, and a loader registered here does not exist in those processes unless installed as a
``vllm.general_plugins`` entry point. Its own ``runai_streamer`` load format (``RunaiModelStreamerLoader``:
"can load safetensors files from local FS or S3 bucket", concurrency through ``model_loader_extra_config``)
is the way to stream s3:// weights on that path; llmfn keeps vLLM's default safetensors loader over a
warmed page cache, which measures at the raw read.
Engine arguments come from ``vllm_args.derive_engine_args`` with the checkpoint's shape, the
settings' context length (as the traffic's p99; the mean request is assumed to use
``MEAN_CONTEXT_SHARE`` of it when no measured profile is given) and the GPU's memory.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from functions.engines.base import (
    Background,
    CheckpointEngine,
    Chunk,
    EngineUnavailableError,
    Prompt,
    SamplingParams,
)
from functions.engines.vllm_args import ModelShape, TrafficProfile, VllmConfig, derive_engine_args
from functions.settings import ServeSettings
from preload.confine import confine_directory
from preload.events import STAGE_ENGINE, STAGES, EventCallback, StageEvent

MEAN_CONTEXT_SHARE = 0.25


class VllmEngine(CheckpointEngine):
    """AsyncLLMEngine behind the ``Engine`` protocol."""

    def __init__(self, settings: ServeSettings) -> None:
        super().__init__(settings)
        self.settings = settings
        self._engine: Any = None
        self._sampling_params: Any = None
        self._prefetch: Background[None] | None = None
        self._fetched = threading.Event()

    def begin(self) -> None:
        with self._begin_lock:
            if self._prefetch is None:
                self._prefetch = Background(self._warm_page_cache, "llmfn-prefetch")

    def _warm_page_cache(self) -> None:
        import preload

        try:
            model_dir = self.resolve_model_dir()
        finally:
            self._fetched.set()
        preload.prefetch_to_page_cache(
            model_dir, workers=self.settings.preload_workers, on_event=self._relay.emit
        )

    def load(self, on_event: EventCallback) -> None:
        self._relay.attach(on_event)
        self.begin()
        assert self._prefetch is not None
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

        self._fetched.wait()
        if self.model_dir is None:
            self._prefetch.result()  # the fetch failed: raise its error
        model_dir = self.model_dir
        confine_directory(model_dir)  # before vLLM reads a file; the prefetch's plan may still be running
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
        self._relay.emit(StageEvent(STAGE_ENGINE, "start", 0, 0, 0.0, index, len(STAGES)))
        self._engine = vllm.AsyncLLMEngine.from_engine_args(vllm.AsyncEngineArgs(**args.engine_kwargs()))
        self._tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self._sampling_params = vllm.SamplingParams
        self.context_len = args.max_model_len
        self._prefetch.result()  # every stage ended (or its error raised) before ready
        self._relay.emit(
            StageEvent(STAGE_ENGINE, "end", 0, 0, time.perf_counter() - started, index, len(STAGES))
        )

    async def generate(self, prompt: Prompt, params: SamplingParams) -> AsyncIterator[Chunk]:
        sampling = self._sampling_params(
            max_tokens=params.max_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            seed=params.seed,
            presence_penalty=params.presence_penalty,
            frequency_penalty=params.frequency_penalty,
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

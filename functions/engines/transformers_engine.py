"""The transformers engine: a causal LM built by ``preload`` from preloaded tensors, the checkpoint's
own chat template, greedy / temperature / top-p sampling and real token streaming.

Each generation runs ``model.generate`` in a worker thread; a streamer hands every new token to the
event loop (``call_soon_threadsafe``), so the loop never blocks. Closing the async iterator sets a
cancel flag that a stopping criterion checks after every step.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from functions.engines.base import CheckpointEngine, Chunk, Prompt, SamplingParams
from functions.settings import ServeSettings
from preload.events import EventCallback

_DONE = object()
GREEDY_BELOW_TEMPERATURE = 1e-5
"""A temperature below this decodes greedily (its limit), as vLLM does (``_SAMPLING_EPS = 1e-5`` in
``vllm/sampling_params.py``): dividing logits by a temperature such as 1e-308 overflows them to inf, and
sampling then fails on a request that asked for nothing wrong."""
SMALL_CHECKPOINT_BYTES = 256 * 2**20
"""Below this (256 MiB) the CPU engine runs torch on one thread (see ``ServeSettings.cpu_threads``)."""


def _checkpoint_bytes(model_dir: Path) -> int:
    return sum(p.stat().st_size for p in model_dir.glob("*.safetensors"))


class TransformersEngine(CheckpointEngine):
    """Serves a checkpoint directory with transformers on ``settings.device``."""

    def __init__(self, settings: ServeSettings) -> None:
        super().__init__(settings)
        self.settings = settings
        self._model: Any = None
        self._pool = ThreadPoolExecutor(settings.max_concurrency, thread_name_prefix="llmfn-generate")

    def load(self, on_event: EventCallback) -> None:
        from transformers import AutoTokenizer

        import preload

        model_dir = self.resolve_model_dir()
        threads = self.settings.cpu_threads or (
            1 if _checkpoint_bytes(model_dir) < SMALL_CHECKPOINT_BYTES else None
        )
        if threads is not None and not self.settings.device.startswith("cuda"):
            import torch

            torch.set_num_threads(threads)  # process-wide: one engine per worker process
        self._tokenizer = AutoTokenizer.from_pretrained(model_dir)
        loaded = preload.load_checkpoint(
            model_dir, device=self.settings.device, workers=self.settings.preload_workers, on_event=on_event
        )
        self._model = preload.build_causal_lm(loaded, on_event=on_event)
        model_max = int(getattr(self._model.config, "max_position_embeddings", 0) or 0)
        wanted = self.settings.max_model_len
        self.context_len = min(wanted, model_max) if wanted and model_max else (wanted or model_max or 2048)

    async def generate(self, prompt: Prompt, params: SamplingParams) -> AsyncIterator[Chunk]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        cancel = threading.Event()
        future = loop.run_in_executor(self._pool, self._run, prompt, params, loop, queue, cancel)
        decoder = _IncrementalDecoder(self._tokenizer)
        count = 0
        try:
            while True:
                item = await queue.get()
                if item is _DONE:
                    break
                count += 1
                text = decoder.push(item)
                if text:
                    yield Chunk(text, count)
            await future  # re-raises an engine failure
            eos = self._model.generation_config.eos_token_id
            finish = "length" if count >= params.max_tokens and not decoder.ended_with(eos) else "stop"
            yield Chunk(decoder.flush(), count, finish)
        finally:
            cancel.set()

    def _run(
        self,
        prompt: Prompt,
        params: SamplingParams,
        loop: asyncio.AbstractEventLoop,
        queue: asyncio.Queue[Any],
        cancel: threading.Event,
    ) -> None:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList
        from transformers.generation.streamers import BaseStreamer

        class _Streamer(BaseStreamer):
            def __init__(self) -> None:
                self.prompt_seen = False

            def put(self, value: torch.Tensor) -> None:
                if not self.prompt_seen:  # the first call carries the prompt
                    self.prompt_seen = True
                    return
                for token in value.reshape(-1).tolist():
                    loop.call_soon_threadsafe(queue.put_nowait, token)

            def end(self) -> None:
                pass

        class _Cancelled(StoppingCriteria):
            def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> Any:
                return torch.full((input_ids.shape[0],), cancel.is_set(), dtype=torch.bool)

        try:
            input_ids = torch.tensor([list(prompt.token_ids)], dtype=torch.long, device=self._model.device)
            sampling: dict[str, Any] = {"do_sample": False}
            if params.temperature >= GREEDY_BELOW_TEMPERATURE:
                sampling = {"do_sample": True, "temperature": params.temperature, "top_p": params.top_p}
            if params.seed is not None:
                torch.manual_seed(params.seed)
            self._model.generate(
                input_ids=input_ids,
                attention_mask=torch.ones_like(input_ids),
                max_new_tokens=params.max_tokens,
                streamer=_Streamer(),
                stopping_criteria=StoppingCriteriaList([_Cancelled()]),
                **sampling,
            )
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, _DONE)


class _IncrementalDecoder:
    """Token ids to text deltas in O(1) per token (vLLM's scheme): decode a short window from
    ``_prefix`` and emit what the newest tokens add to it; hold back incomplete UTF-8 sequences.
    Special tokens are dropped."""

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self._ids: list[int] = []
        self._prefix = 0
        self._read = 0

    def _decode(self, start: int, end: int | None = None) -> str:
        return self._tokenizer.decode(self._ids[start:end], skip_special_tokens=True)

    def push(self, token: int) -> str:
        self._ids.append(token)
        before = self._decode(self._prefix, self._read)
        text = self._decode(self._prefix)
        if len(text) <= len(before) or text.endswith("\ufffd"):
            return ""  # nothing new yet, or an incomplete UTF-8 sequence: wait for the next token
        self._prefix, self._read = self._read, len(self._ids)
        return text[len(before) :]

    def flush(self) -> str:
        before = self._decode(self._prefix, self._read)
        text = self._decode(self._prefix)
        self._prefix = self._read = len(self._ids)
        return text[len(before) :]

    def ended_with(self, eos: int | list[int] | None) -> bool:
        if not self._ids or eos is None:
            return False
        return self._ids[-1] in (eos if isinstance(eos, list) else [eos])

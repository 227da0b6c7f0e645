"""The transformers engine: a causal LM built by ``preload`` from preloaded tensors, the checkpoint's
own chat template, greedy / temperature / top-p sampling and real token streaming.

Cold start, overlapped: :meth:`TransformersEngine.begin` starts the weight I/O in a thread at once (the
readers need no torch): the ``fetch`` step (a Hub download, or for ``s3://`` / ``cos://`` only listing,
metadata and headers), then the weights, streamed from object storage straight into memory or read
from the local directory. A second thread, also started by ``begin``, imports torch and transformers
(the ``imports`` step, beside the serving stack's own imports in the main thread), loads the tokenizer
and builds the model skeleton on the meta device (the ``skeleton`` step), then waits for the weights and
attaches them (the ``engine`` stage: no copy; one warm-up forward on CUDA only). ``load`` waits for that thread;
events sent before anyone listened are relayed to its callback.

Each generation runs ``model.generate`` in a worker thread; a streamer hands every new token to the
event loop (``call_soon_threadsafe``), so the loop never blocks. Closing the async iterator sets a
cancel flag that a stopping criterion checks after every step.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from functions.engines.base import Background, CheckpointEngine, Chunk, Prompt, SamplingParams
from functions.settings import ServeSettings
from preload.events import STAGE_FETCH, EventCallback
from preload.objectstore import is_object_store

if TYPE_CHECKING:
    import torch

    from preload.loader import LoadedCheckpoint
    from preload.plan import PreloadPlan

_DONE = object()
GREEDY_BELOW_TEMPERATURE = 1e-5
"""A temperature below this decodes greedily (its limit), as vLLM does (``_SAMPLING_EPS = 1e-5`` in
``vllm/sampling_params.py``): dividing logits by a temperature such as 1e-308 overflows them to inf, and
sampling then fails on a request that asked for nothing wrong."""
SMALL_CHECKPOINT_BYTES = 256 * 2**20
"""Below this (256 MiB) the CPU engine runs torch on one thread (see ``ServeSettings.cpu_threads``)."""
STREAM_WORKERS = 8
"""Parallel ranged GETs when streaming from object storage (at least; ``preload_workers`` if more)."""
STAGE_SKELETON = "skeleton"
"""Timeline step: tokenizer loaded and the model built on the meta device, while the weights arrive."""


class TransformersEngine(CheckpointEngine):
    """Serves a checkpoint directory with transformers on ``settings.device``."""

    def __init__(self, settings: ServeSettings) -> None:
        super().__init__(settings)
        self.settings = settings
        self._model: Any = None
        self._weights: Background[LoadedCheckpoint] | None = None
        self._build: Background[None] | None = None
        self.imported = threading.Event()
        """Set once the engine's imports finished (or failed): :meth:`prime_calling_thread` may run."""
        self._primed = False
        self._plan: PreloadPlan | None = None
        self._planned = threading.Event()
        self._pool = ThreadPoolExecutor(settings.max_concurrency, thread_name_prefix="llmfn-generate")

    def begin(self) -> None:
        with self._begin_lock:
            if self._weights is None:
                self._weights = Background(self._read_weights, "llmfn-weights")
                self._build = Background(self._build_model, "llmfn-engine-build")

    def _read_weights(self) -> LoadedCheckpoint:
        """The I/O thread: fetch (or plan a remote checkpoint), then every weight byte into memory."""
        import preload

        remote = None
        try:
            if self.model_dir is None and is_object_store(self._source or ""):
                from preload.stream import open_remote

                started = time.monotonic()
                self._relay.step(STAGE_FETCH, started)
                remote = open_remote(
                    self._source or "", cache_root=self._cache_dir, workers=self._stream_workers
                )
                self.model_dir, self._plan = remote.local_dir, remote.plan
                self._relay.step(STAGE_FETCH, started, time.monotonic() - started)
            else:
                self._plan = preload.plan_checkpoint(self.resolve_model_dir())
        finally:
            self._planned.set()  # ``load`` waits for this; a failure is raised by ``result()``
        if remote is not None:
            from preload.stream import stream_checkpoint

            return stream_checkpoint(
                remote,
                workers=self._stream_workers,
                on_event=self._relay.emit,
                cache=self._cache_dir is not None,
            )
        return preload.load_checkpoint(
            self._plan.model_dir,
            device=self.settings.device,
            workers=self.settings.preload_workers,
            on_event=self._relay.emit,
        )

    @property
    def _stream_workers(self) -> int:
        return max(self.settings.preload_workers, STREAM_WORKERS)

    def load(self, on_event: EventCallback) -> None:
        self._relay.attach(on_event)
        self.begin()
        assert self._build is not None
        self._build.result()

    def _build_model(self) -> None:
        """The build thread: imports, tokenizer and skeleton while the weights arrive, then attach them."""
        assert self._weights is not None

        def heavy_imports() -> None:  # everything the build needs, so the steps after it are pure work
            import torch  # noqa: F401
            import transformers.generation
            import transformers.modeling_utils  # noqa: F401
            from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: F401

            import preload.model  # noqa: F401

        try:
            self.import_step(heavy_imports)
        finally:
            self.imported.set()  # also on failure: nobody may wait for it forever
        import torch
        from transformers import AutoTokenizer

        from preload.model import attach_weights, build_skeleton, plan_dtype

        self._planned.wait()
        if self._plan is None:
            self._weights.result()  # the fetch or the plan failed: raise its error
        assert self._plan is not None
        started = time.monotonic()
        self._relay.step(STAGE_SKELETON, started)
        self._tokenizer = AutoTokenizer.from_pretrained(self._plan.model_dir)
        skeleton = build_skeleton(self._plan.model_dir, plan_dtype(self._plan))
        self._relay.step(STAGE_SKELETON, started, time.monotonic() - started)
        loaded = self._weights.result()
        threads = self.settings.cpu_threads or (
            1 if loaded.plan.file_bytes < SMALL_CHECKPOINT_BYTES else None
        )
        if threads is not None and not self.settings.device.startswith("cuda"):
            torch.set_num_threads(threads)  # process-wide: one engine per worker process
        # A warm-up forward hides one-time device costs (CUDA context use, cuBLAS handles and workspaces)
        # behind readiness. On CPU eager PyTorch has no such cost the first request would not pay anyway
        # (oneDNN primitives are per shape), and the forward is the whole cold start's largest compute
        # step (bench/coldstart.py: ~2 s of ~11 s on 1 GB), so it is skipped there.
        warmup = self.settings.device.startswith("cuda")
        self._model = attach_weights(skeleton, loaded, on_event=self._relay.emit, warmup=warmup)
        model_max = int(getattr(self._model.config, "max_position_embeddings", 0) or 0)
        wanted = self.settings.max_model_len
        self.context_len = min(wanted, model_max) if wanted and model_max else (wanted or model_max or 2048)

    def prime_calling_thread(self) -> bool:
        """Run one small parallel torch op on the calling thread, meant to be the process's main thread,
        once torch is imported; ``False`` (nothing done) before that. Idempotent.

        With torch's OpenMP (libgomp) runtime, the forward passes that generation runs on worker threads
        measured 3-10x slower here (first forward 1.8 s against 0.17 s on bench/coldstart.py's 1 GB
        model, 2 cores) for as long as the process's initial thread had never started a parallel region
        itself; one such region, on that thread, removes it.
        """
        if self._primed or not self.imported.is_set():
            return self._primed
        try:
            import torch
        except ImportError:  # the build thread reports it
            return False

        torch.ones(1 << 20).mul_(2).sum()  # above the intra-op grain size: a parallel region
        self._primed = True
        return True

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
        from transformers import LogitsProcessorList, StoppingCriteria, StoppingCriteriaList
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
            processors = LogitsProcessorList()
            if params.presence_penalty or params.frequency_penalty:
                processors.append(
                    OpenAIPenalties(input_ids.shape[1], params.presence_penalty, params.frequency_penalty)
                )
            self._model.generate(
                logits_processor=processors,
                input_ids=input_ids,
                attention_mask=torch.ones_like(input_ids),
                max_new_tokens=params.max_tokens,
                streamer=_Streamer(),
                stopping_criteria=StoppingCriteriaList([_Cancelled()]),
                **sampling,
            )
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, _DONE)


class OpenAIPenalties:
    """OpenAI's presence and frequency penalties as a transformers logits processor, on the tokens
    generated so far (not the prompt's, as vLLM applies them): ``logit[j] -= c[j] * frequency +
    (c[j] > 0) * presence``, ``c[j]`` being how many times token ``j`` was generated (OpenAI's "Frequency
    and presence penalties" guide; README.md, "Serve")."""

    def __init__(self, prompt_tokens: int, presence: float, frequency: float) -> None:
        self.prompt_tokens = prompt_tokens
        self.presence = presence
        self.frequency = frequency

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        import torch

        generated = input_ids[:, self.prompt_tokens :]
        if generated.shape[1] == 0:
            return scores
        counts = torch.zeros_like(scores).scatter_add_(
            1, generated, torch.ones(generated.shape, dtype=scores.dtype, device=scores.device)
        )
        return scores - counts * self.frequency - (counts > 0).to(scores.dtype) * self.presence


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

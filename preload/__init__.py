"""Staged preload of safetensors checkpoints, at the storage limit.

Public API (stable; ``import preload`` is cheap: torch / transformers / boto3 / huggingface_hub are
imported only inside the functions that need them)::

    from preload import (
        STAGES, StageEvent, PreloadError, plan_checkpoint, load_checkpoint, build_causal_lm,
        prefetch_to_page_cache, resolve_source,
    )

    model_dir = resolve_source("Qwen/Qwen3-4B-Instruct-2507", revision=None, cache_dir=cache)
    loaded = load_checkpoint(model_dir, device="cpu", workers=4, verify=False, on_event=print)
    model = build_causal_lm(loaded, on_event=print)        # the ``engine`` stage
    loaded.seconds_until("embedding"), loaded.timings       # per-stage StageTiming(bytes, seconds)

- Stages, in order (:data:`STAGES`): ``runtime`` (device initialised, destination memory allocated
  and pre-faulted), ``embedding`` (``embed_tokens``; ``lm_head`` when untied),
  ``blocks`` (the layers in order, chunks split across workers in file-offset order), ``final``
  (norm and the rest; sha256 checked here when ``verify``), ``engine`` (model built, one warm-up
  forward; sent by :func:`build_causal_lm`, or by the serving engine itself).
- :class:`StageEvent` ``(stage, kind, bytes, total_bytes, seconds, index, total_stages)`` with
  ``kind`` in ``start`` / ``progress`` / ``end`` and ``gb_per_s``; ``index`` is the stage's position in
  :data:`STAGES` and ``total_stages == len(STAGES)``. ``bytes``/``seconds`` are cumulative within the
  stage. A stage's ``end`` is sent only once all its bytes are in place; a failed load sends no further
  ``end`` and raises, so "every stage ended" means ready.
- :func:`log_stage_event` is an ``on_event`` callback writing one JSON line per start / end event to
  the ``llmfn.preload`` logger (progress at DEBUG).
- :class:`PreloadError` (a ``ValueError``) names ``.file``, ``.tensor`` and ``.offset`` (absolute byte
  offset in the file) and says them in its message.
- :func:`plan_checkpoint` ``(model_dir) -> PreloadPlan``: headers and index parsed and validated.
- :func:`load_checkpoint` ``(model_dir, *, device="cpu", workers=4, verify=False, on_event=None,
  method="auto") -> LoadedCheckpoint`` (``.tensors`` name -> tensor with the stored dtype,
  ``.timings``, ``.seconds_until(stage)``). CPU: pre-faulted private file mappings (``mmap``, default)
  or owned anonymous memory (``read``); CUDA: pinned staging buffers and async copies (``staged``).
- :func:`build_causal_lm` ``(loaded, model_dir=None, *, on_event=None, warmup=True)`` -> transformers
  model in eval mode (meta device + ``assign``, tied weights re-tied).
- :func:`prefetch_to_page_cache` ``(model_dir, *, workers=4, on_event=None)`` -> stage timings: the
  same stages into the page cache, for engines that read the files themselves (vLLM).
- :func:`resolve_source` ``(source, revision=None, cache_dir=None) -> Path``: a local directory,
  ``hf://org/name`` or ``org/name`` (Hugging Face Hub), ``s3://bucket/prefix`` or ``cos://bucket/prefix``
  (downloaded by parallel ranged GETs, each retried on its own).
- :func:`open_remote` ``(source, local_dir=None, *, cache_root=None, endpoint_url=None, workers=8)`` and
  :func:`stream_checkpoint` ``(remote, *, workers=8, verify=None, on_event=None, cache=False)``: an
  ``s3://`` / ``cos://`` checkpoint streamed straight into memory in stage order, no shard on disk
  (:mod:`preload.stream`); :func:`is_object_store` tells such a source.

The ``runtime`` stage no longer imports torch: CPU loads read with plain threads and make the tensors
at the end of ``final``, so a caller can import its engine while the bytes arrive.
"""

from core.errors import PreloadError
from preload.events import (
    STAGE_BLOCKS,
    STAGE_EMBEDDING,
    STAGE_ENGINE,
    STAGE_FINAL,
    STAGE_RUNTIME,
    STAGES,
    EventCallback,
    StageEvent,
    log_stage_event,
)
from preload.loader import LoadedCheckpoint, StageTiming, load_checkpoint, prefetch_to_page_cache
from preload.model import build_causal_lm
from preload.objectstore import is_object_store
from preload.plan import PreloadPlan, Stage, TensorEntry, plan_checkpoint
from preload.sources import resolve_source
from preload.stream import RemoteCheckpoint, open_remote, stream_checkpoint

__all__ = [
    "STAGES",
    "STAGE_BLOCKS",
    "STAGE_EMBEDDING",
    "STAGE_ENGINE",
    "STAGE_FINAL",
    "STAGE_RUNTIME",
    "EventCallback",
    "LoadedCheckpoint",
    "PreloadError",
    "PreloadPlan",
    "RemoteCheckpoint",
    "Stage",
    "StageEvent",
    "StageTiming",
    "TensorEntry",
    "build_causal_lm",
    "is_object_store",
    "load_checkpoint",
    "log_stage_event",
    "open_remote",
    "plan_checkpoint",
    "prefetch_to_page_cache",
    "resolve_source",
    "stream_checkpoint",
]

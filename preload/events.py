"""Stage names and the events the loader reports while it runs a plan."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Literal

STAGE_RUNTIME = "runtime"
"""Import the engine, initialise the device, allocate and pre-fault destination memory."""
STAGE_EMBEDDING = "embedding"
"""``embed_tokens`` (and ``lm_head`` when the checkpoint does not tie it to the embedding)."""
STAGE_BLOCKS = "blocks"
"""The transformer layers, in layer order, split across workers by byte ranges."""
STAGE_FINAL = "final"
"""The final norm and every tensor that is neither embedding nor layer."""
STAGE_ENGINE = "engine"
"""The model built from the loaded tensors and one warm-up forward pass."""

STAGES: tuple[str, ...] = (STAGE_RUNTIME, STAGE_EMBEDDING, STAGE_BLOCKS, STAGE_FINAL, STAGE_ENGINE)
"""Every stage, in the order it runs."""
STAGE_FETCH = "fetch"
"""Cold-start step before the preload (not one of :data:`STAGES`): resolving the source (a Hub download,
or listing an object store and reading its metadata and headers)."""
STAGE_IMPORTS = "imports"
"""Cold-start step beside the preload (not one of :data:`STAGES`): importing the engine (torch, ...)."""

EventKind = Literal["start", "progress", "end"]


@dataclass(frozen=True)
class StageEvent:
    """One step of one stage.

    ``bytes`` and ``seconds`` are cumulative within the stage (``bytes`` done so far, seconds since the
    stage started); ``total_bytes`` is what the stage will move in all. ``index`` is the stage's
    0-based position among ``total_stages`` stages of this run. ``monotonic_s`` is when the event
    happened (``time.monotonic()``), so an event relayed later still places the stage in time.
    """

    stage: str
    kind: EventKind
    bytes: int
    total_bytes: int
    seconds: float
    index: int
    total_stages: int
    monotonic_s: float = field(default_factory=time.monotonic)

    @property
    def gb_per_s(self) -> float:
        """Throughput so far in GB/s (10^9 bytes per second); 0.0 before any time has passed."""
        return self.bytes / self.seconds / 1e9 if self.seconds > 0 else 0.0


EventCallback = Callable[[StageEvent], None]
"""Receives every :class:`StageEvent`; called from the loading thread, so it must be quick."""


_log = logging.getLogger("llmfn.preload")


def log_stage_event(event: StageEvent) -> None:
    """An :data:`EventCallback` writing one structured (JSON) line per event to the ``llmfn.preload`` logger.

    ``start`` and ``end`` are logged at INFO, ``progress`` at DEBUG.
    """
    level = logging.DEBUG if event.kind == "progress" else logging.INFO
    if _log.isEnabledFor(level):
        fields = {**asdict(event), "gb_per_s": round(event.gb_per_s, 3), "seconds": round(event.seconds, 6)}
        _log.log(level, json.dumps({"event": "preload_stage", **fields}))

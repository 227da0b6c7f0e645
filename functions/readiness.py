"""Readiness from the preload's stage events: what ``/readyz`` reports and what requests wait for."""

from __future__ import annotations

import threading
import time

from preload.events import StageEvent


class Readiness:
    """Tracks the current stage and its progress; ready only once the engine finished loading.

    Fed from the loading thread (``on_event``, ``mark_ready``, ``mark_failed``); read from the event
    loop. ``wait`` blocks a thread, never the loop (call it through ``asyncio.to_thread``).
    """

    def __init__(self) -> None:
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self.stage = "starting"
        self.stage_index = 0
        self.total_stages = 0
        self.stage_bytes = 0
        self.stage_total_bytes = 0
        self.error: str | None = None
        self.stages_done: dict[str, float] = {}
        self._started = time.monotonic()

    def on_event(self, event: StageEvent) -> None:
        with self._lock:
            self.stage = event.stage
            self.stage_index = event.index
            self.total_stages = event.total_stages
            self.stage_bytes = event.bytes
            self.stage_total_bytes = event.total_bytes
            if event.kind == "end":
                self.stages_done[event.stage] = round(event.seconds, 4)

    def mark_ready(self) -> None:
        with self._lock:
            self.stage = "ready"
        self._ready.set()

    def mark_failed(self, error: str) -> None:
        with self._lock:
            self.stage = "failed"
            self.error = error

    @property
    def is_ready(self) -> bool:
        return self._ready.is_set()

    @property
    def failed(self) -> bool:
        return self.error is not None

    def wait(self, timeout_s: float) -> bool:
        return self._ready.wait(timeout_s)

    def progress(self) -> float:
        """Fraction in [0, 1]: finished stages plus the byte progress of the current one."""
        with self._lock:
            if self._ready.is_set():
                return 1.0
            if not self.total_stages:
                return 0.0
            within = self.stage_bytes / self.stage_total_bytes if self.stage_total_bytes else 0.0
            done = len(self.stages_done) + (0.0 if self.stage in self.stages_done else within)
            return round(min(1.0, done / self.total_stages), 4)

    def snapshot(self) -> dict[str, object]:
        """The ``/readyz`` body."""
        progress = self.progress()
        with self._lock:
            return {
                "ready": self._ready.is_set(),
                "stage": self.stage,
                "stage_index": self.stage_index,
                "total_stages": self.total_stages,
                "stage_bytes": self.stage_bytes,
                "stage_total_bytes": self.stage_total_bytes,
                "progress": progress,
                "stages_done_s": dict(self.stages_done),
                "error": self.error,
                "uptime_s": round(time.monotonic() - self._started, 3),
            }

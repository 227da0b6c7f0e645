"""Readiness from the preload's stage events (what ``/readyz`` reports and what requests wait for) and
the cold-start timeline: process start -> imports -> fetch -> weights resident -> engine built -> first token.

The timeline's origin is the process's own start (``/proc/self/stat``: the interpreter's start-up is
counted), every step an interval ``[start_s, end_s]`` in seconds from it. Steps overlap by design
(weights arrive while the engine is imported), so ``seconds`` do not add up to ``total_s``. Its JSON
(``/readyz``'s ``timeline``, the ``ready`` log line, ``llmfn dev``'s status per worker)::

    {"origin": "process_start",
     "stages": [{"name": "interpreter", "start_s": 0.0, "end_s": 0.04, "seconds": 0.04},
                {"name": "imports", ...}, {"name": "fetch", ...},
                {"name": "weights", ..., "bytes": 1234}, {"name": "engine", ...},
                {"name": "first_token", ...}],
     "ready_s": 2.9, "first_token_s": 3.4, "total_s": 3.4}

``total_s`` is ``first_token_s`` once a first token was sent, else ``ready_s``, else the time so far.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from preload.events import STAGE_ENGINE, STAGE_FETCH, STAGE_IMPORTS, STAGE_RUNTIME, STAGES, StageEvent

TIMELINE_STAGES = (
    "interpreter",
    STAGE_IMPORTS,
    STAGE_FETCH,
    "weights",
    "skeleton",
    STAGE_ENGINE,
    "first_token",
)
"""The cold-start timeline's steps, in the order they begin."""
_WEIGHT_STAGES = frozenset(STAGES) - {STAGE_ENGINE}


def process_start_monotonic() -> float:
    """The ``time.monotonic()`` instant this process started (``/proc/self/stat``, 10 ms ticks); now
    where ``/proc`` is absent."""
    now = time.monotonic()
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        started_ticks = int(fields[19])  # field 22, starttime, in clock ticks since boot
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - started_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return now
    return now - max(age, 0.0)


PROCESS_START = process_start_monotonic()
_process_spans: dict[str, list[float]] = {}
_process_lock = threading.Lock()


def note_process_span(name: str, start: float, end: float) -> None:
    """A process-wide step (``time.monotonic()`` instants), e.g. the entry point's imports; widened
    to cover every span noted under the same name."""
    with _process_lock:
        span = _process_spans.setdefault(name, [start, end])
        span[0], span[1] = min(span[0], start), max(span[1], end)


def mark_entry() -> None:
    """Call on the entry point's first line: ends the ``interpreter`` step (idempotent)."""
    with _process_lock:
        if "interpreter" not in _process_spans:
            _process_spans["interpreter"] = [PROCESS_START, time.monotonic()]


class ColdStartTimeline:
    """One cold start's steps, from the stage events and the serving path's marks (module docstring)."""

    def __init__(self, origin: float = PROCESS_START) -> None:
        self.origin = origin
        self._spans: dict[str, list[float]] = {}
        self._bytes: dict[str, int] = {}
        self._ready: float | None = None
        self._first_token: float | None = None
        self._lock = threading.Lock()

    def span(self, name: str, start: float, end: float | None = None, nbytes: int | None = None) -> None:
        """Widen step ``name`` to cover ``[start, end]`` (monotonic instants; ``end`` None: started only)."""
        with self._lock:
            span = self._spans.setdefault(name, [start, end if end is not None else float("nan")])
            span[0] = min(span[0], start)
            if end is not None:
                span[1] = end if span[1] != span[1] else max(span[1], end)  # NaN: not ended yet
            if nbytes is not None:
                self._bytes[name] = self._bytes.get(name, 0) + nbytes

    def on_event(self, event: StageEvent) -> None:
        """Preload stages become ``weights`` (bytes summed), ``engine``, ``fetch`` and ``imports`` steps."""
        name = "weights" if event.stage in _WEIGHT_STAGES else event.stage
        if event.kind == "start":
            self.span(name, event.monotonic_s)
        elif event.kind == "end":
            started = event.monotonic_s - event.seconds
            moved = event.total_bytes if name == "weights" and event.stage != STAGE_RUNTIME else None
            self.span(name, started, event.monotonic_s, moved)  # runtime's bytes are allocated, not read

    def mark_ready(self) -> None:
        with self._lock:
            self._ready = self._ready or time.monotonic()

    def first_token(self, request_started: float) -> None:
        """The first request's first token is out now; it arrived at ``request_started`` (only the first counts)."""
        now = time.monotonic()
        with self._lock:
            if self._first_token is not None:
                return
            self._first_token = now
        self.span("first_token", request_started, now)

    def as_dict(self) -> dict[str, object]:
        """The JSON shape of the module docstring."""
        with _process_lock:
            spans = {name: list(span) for name, span in _process_spans.items()}
        with self._lock:
            for name, span in self._spans.items():
                known = spans.get(name)
                if known is None:
                    spans[name] = list(span)
                else:  # a step still running in either record (NaN end) is still running
                    ends = (known[1], span[1])
                    spans[name] = [
                        min(known[0], span[0]),
                        max(ends) if ends[0] == ends[0] and ends[1] == ends[1] else float("nan"),
                    ]
            ready, first, nbytes = self._ready, self._first_token, dict(self._bytes)

        def rel(instant: float | None) -> float | None:
            if instant is None or instant != instant:
                return None
            return round(instant - self.origin, 4)

        stages: list[dict[str, object]] = []
        for name in sorted(
            spans, key=lambda n: (spans[n][0], TIMELINE_STAGES.index(n) if n in TIMELINE_STAGES else 99)
        ):
            start, end = spans[name]
            row: dict[str, object] = {"name": name, "start_s": rel(start), "end_s": rel(end)}
            row["seconds"] = round(end - start, 4) if end == end else None
            if name in nbytes:
                row["bytes"] = nbytes[name]
            stages.append(row)
        ready_s, first_s = rel(ready), rel(first)
        total = first_s if first_s is not None else ready_s
        return {
            "origin": "process_start",
            "stages": stages,
            "ready_s": ready_s,
            "first_token_s": first_s,
            "total_s": total if total is not None else rel(time.monotonic()),
        }


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
        self.timeline = ColdStartTimeline()

    def on_event(self, event: StageEvent) -> None:
        self.timeline.on_event(event)
        if event.stage not in STAGES:  # fetch / imports: timeline steps, not preload progress
            return
        with self._lock:
            self.stage = event.stage
            self.stage_index = event.index
            self.total_stages = event.total_stages
            self.stage_bytes = event.bytes
            self.stage_total_bytes = event.total_bytes
            if event.kind == "end":
                self.stages_done[event.stage] = round(event.seconds, 4)

    def mark_ready(self) -> None:
        self.timeline.mark_ready()
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
                "timeline": self.timeline.as_dict(),
            }

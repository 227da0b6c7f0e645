"""Engine wrappers for tests: a real engine whose load or generation the test controls."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

from functions.engines import Chunk, Engine, Prompt, SamplingParams
from preload.events import EventCallback


class ControlledEngine:
    """Wraps ``inner``: ``load_gate`` holds the load until set; ``failing`` makes generation raise;
    ``generate_gate`` (when cleared) holds each generation until set; ``calls`` counts generations."""

    def __init__(self, inner: Engine) -> None:
        self.inner = inner
        self.load_gate = threading.Event()
        self.load_gate.set()
        self.generate_gate = threading.Event()
        self.generate_gate.set()
        self.failing = False
        self.calls = 0

    @property
    def model_name(self) -> str:
        return self.inner.model_name

    @property
    def context_len(self) -> int:
        return self.inner.context_len

    def load(self, on_event: EventCallback) -> None:
        self.load_gate.wait(30)
        self.inner.load(on_event)

    def render_chat(self, messages: list[dict[str, str]]) -> Prompt:
        return self.inner.render_chat(messages)

    def render_text(self, text: str) -> Prompt:
        return self.inner.render_text(text)

    async def generate(self, prompt: Prompt, params: SamplingParams) -> AsyncIterator[Chunk]:
        self.calls += 1
        if not self.generate_gate.is_set():
            await asyncio.to_thread(self.generate_gate.wait, 30)
        if self.failing:
            raise RuntimeError("CUDA error: device-side assert triggered (injected)")
        async for chunk in self.inner.generate(prompt, params):
            yield chunk

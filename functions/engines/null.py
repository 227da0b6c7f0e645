"""The null engine: a fixed answer, no model, no thread. Measures what the app itself costs."""

from __future__ import annotations

from collections.abc import AsyncIterator

from functions.engines.base import Chunk, Prompt, SamplingParams
from functions.guards.complexity import estimate_tokens
from preload.events import STAGE_ENGINE, EventCallback, StageEvent

NULL_TOKEN = "ok "
NULL_CONTEXT_LEN = 32768


class NullEngine:
    """Answers every request with ``completion_tokens`` copies of ``"ok "`` (fewer if max_tokens says so)."""

    def __init__(self, model_name: str, completion_tokens: int = 8) -> None:
        self.model_name = model_name
        self.context_len = NULL_CONTEXT_LEN
        self.completion_tokens = completion_tokens

    def begin(self) -> None:
        """Nothing to read."""

    def load(self, on_event: EventCallback) -> None:
        for kind in ("start", "end"):
            on_event(StageEvent(STAGE_ENGINE, kind, 0, 0, 0.0, 0, 1))

    def render_chat(self, messages: list[dict[str, str]]) -> Prompt:
        text = "".join(f"{m['role']}: {m['content']}\n" for m in messages)
        return Prompt(text, (), estimate_tokens(text))

    def render_text(self, text: str) -> Prompt:
        return Prompt(text, (), estimate_tokens(text))

    async def generate(self, prompt: Prompt, params: SamplingParams) -> AsyncIterator[Chunk]:
        n = min(self.completion_tokens, params.max_tokens)
        finish = "length" if params.max_tokens <= self.completion_tokens else "stop"
        for i in range(1, n + 1):
            yield Chunk(NULL_TOKEN, i, finish if i == n else None)

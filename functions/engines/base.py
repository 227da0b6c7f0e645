"""What every engine provides: load (blocking, reports preload stages), render and count a prompt,
stream generated text. ``generate`` is an async iterator; closing it early cancels the generation."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from preload.events import EventCallback

if TYPE_CHECKING:
    from functions.settings import ServeSettings


class EngineUnavailableError(RuntimeError):
    """The engine cannot run here (e.g. vLLM not installed, no GPU); the message says what to do."""


@dataclass(frozen=True)
class Prompt:
    """A rendered prompt: the text the model sees and its token ids (empty for engines that tokenize
    themselves); ``tokens`` is the count used for shaping, usage and the complexity score."""

    text: str
    token_ids: Sequence[int] = field(default=())
    tokens: int = 0


@dataclass(frozen=True)
class SamplingParams:
    max_tokens: int
    temperature: float = 0.7
    """0 means greedy decoding."""
    top_p: float = 1.0
    seed: int | None = None


@dataclass(frozen=True)
class Chunk:
    """Newly generated text. The last chunk has ``finish_reason`` ("stop" or "length") set;
    ``completion_tokens`` counts every token generated so far."""

    text: str
    completion_tokens: int
    finish_reason: str | None = None


class Engine(Protocol):
    model_name: str
    context_len: int
    """Prompt + output tokens the engine accepts (after ``load``)."""

    def load(self, on_event: EventCallback) -> None:
        """Load the model (blocking; run in a thread), reporting preload stage events."""
        ...

    def render_chat(self, messages: list[dict[str, str]]) -> Prompt:
        """Apply the model's chat template (with the assistant generation prompt) and tokenize."""
        ...

    def render_text(self, text: str) -> Prompt:
        """Tokenize a plain completion prompt."""
        ...

    def generate(self, prompt: Prompt, params: SamplingParams) -> AsyncIterator[Chunk]:
        """Stream the completion; the caller may stop iterating (``aclose``) to cancel."""
        ...


class CheckpointEngine:
    """Shared by the engines that serve a checkpoint directory with its own tokenizer and chat template.

    Subclasses set ``self._tokenizer`` (a transformers tokenizer) in ``load``.
    """

    def __init__(self, settings: ServeSettings) -> None:
        if settings.model is None and settings.model_source is None:
            raise ValueError("model: a checkpoint directory (or model_source) is required by this engine")
        self.model_dir: Path | None = settings.model
        self.model_name = settings.served_model_name
        self.context_len = settings.max_model_len or 0
        self._source = settings.model_source
        self._revision = settings.model_revision
        self._cache_dir = settings.model_cache_dir
        self._tokenizer: Any = None

    def resolve_model_dir(self) -> Path:
        """The local checkpoint directory, fetching ``model_source`` first (part of the cold start)."""
        if self.model_dir is None:
            import preload

            self.model_dir = preload.resolve_source(self._source or "", self._revision, self._cache_dir)
        return self.model_dir

    def render_chat(self, messages: list[dict[str, str]]) -> Prompt:
        text = self._tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return self.render_text(text)

    def render_text(self, text: str) -> Prompt:
        ids = self._tokenizer(text, add_special_tokens=False)["input_ids"]
        return Prompt(text, tuple(ids), len(ids))

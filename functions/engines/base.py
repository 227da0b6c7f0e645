"""What every engine provides: load (blocking, reports preload stages), render and count a prompt,
stream generated text. ``generate`` is an async iterator; closing it early cancels the generation."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from core.errors import InputError, LlmfnError
from functions.engines.chat_prompt import render_chat_prompt
from preload.events import STAGE_FETCH, STAGE_IMPORTS, STAGES, EventCallback, StageEvent

if TYPE_CHECKING:
    from functions.settings import ServeSettings


class EngineUnavailableError(LlmfnError, RuntimeError):
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
    presence_penalty: float = 0.0
    """Subtracted once from the logit of every token already generated (OpenAI's [-2, 2])."""
    frequency_penalty: float = 0.0
    """Subtracted from a token's logit once per time it was generated (OpenAI's [-2, 2])."""


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

    def begin(self) -> None:
        """Start the weight I/O now, in the background (idempotent; ``load`` starts it if nobody did).

        Call it as early as the process can (before the serving stack's imports): the readers need
        no torch, so the bytes arrive while the rest of the process starts."""
        ...

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


class EventRelay:
    """Stage events sent before anyone listens are kept and replayed to the listener, in order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: list[StageEvent] = []
        self._listener: EventCallback | None = None

    def emit(self, event: StageEvent) -> None:
        with self._lock:
            if self._listener is None:
                self._kept.append(event)
                return
            listener = self._listener
        listener(event)

    def attach(self, listener: EventCallback) -> None:
        """Send every kept event to ``listener``, then every later one."""
        with self._lock:
            kept, self._kept = self._kept, []
            for event in kept:
                listener(event)
            self._listener = listener

    def step(self, stage: str, started: float, seconds: float | None = None) -> None:
        """A start (``seconds`` None) or end event of a timeline step outside :data:`STAGES` (fetch, imports)."""
        kind = "start" if seconds is None else "end"
        self.emit(
            StageEvent(
                stage, kind, 0, 0, seconds or 0.0, len(STAGES), len(STAGES), started + (seconds or 0.0)
            )
        )  # type: ignore[arg-type]


T = TypeVar("T")


class Background(Generic[T]):
    """``work()`` running in a daemon thread; :meth:`result` waits and returns it or raises its error."""

    def __init__(self, work: Callable[[], T], name: str) -> None:
        self._result: T | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(work,), name=name, daemon=True)
        self._thread.start()

    def _run(self, work: Callable[[], T]) -> None:
        try:
            self._result = work()
        except BaseException as exc:
            self._error = exc

    def result(self) -> T:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._result  # type: ignore[return-value]


class CheckpointEngine:
    """Shared by the engines that serve a checkpoint directory with its own tokenizer and chat template.

    Subclasses set ``self._tokenizer`` (a transformers tokenizer) in ``load``.
    """

    def __init__(self, settings: ServeSettings) -> None:
        if settings.model is None and settings.model_source is None:
            raise InputError("model: a checkpoint directory (or model_source) is required by this engine")
        self.model_dir: Path | None = settings.model
        self.model_name = settings.served_model_name
        self.context_len = settings.max_model_len or 0
        self._source = settings.model_source
        self._revision = settings.model_revision
        self._cache_dir = settings.model_cache_dir
        self._tokenizer: Any = None
        self._relay = EventRelay()
        self._begin_lock = threading.Lock()

    def resolve_model_dir(self) -> Path:
        """The local checkpoint directory, fetching ``model_source`` first: the ``fetch`` step."""
        if self.model_dir is None:
            import preload

            started = time.monotonic()
            self._relay.step(STAGE_FETCH, started)
            self.model_dir = preload.resolve_source(self._source or "", self._revision, self._cache_dir)
            self._relay.step(STAGE_FETCH, started, time.monotonic() - started)
        return self.model_dir

    def import_step(self, do_imports: Callable[[], None]) -> None:
        """Run the engine's heavy imports, reported as the ``imports`` step of the timeline."""
        started = time.monotonic()
        self._relay.step(STAGE_IMPORTS, started)
        do_imports()
        self._relay.step(STAGE_IMPORTS, started, time.monotonic() - started)

    def render_chat(self, messages: list[dict[str, str]]) -> Prompt:
        text, ids = render_chat_prompt(self._tokenizer, messages)
        return Prompt(text, tuple(ids), len(ids))

    def render_text(self, text: str) -> Prompt:
        ids = self._tokenizer(text, add_special_tokens=False)["input_ids"]
        return Prompt(text, tuple(ids), len(ids))

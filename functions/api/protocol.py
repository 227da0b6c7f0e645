"""The OpenAI wire types of the API subset served here: request bodies, responses and stream chunks.

Requests (unknown fields are ignored, as OpenAI does): types are strict where OpenAI's API is: an
integer field refuses ``"5"``, ``true`` and ``5.0``, a number field refuses strings and booleans, a
boolean field refuses ``1``. Every integer is bounded to what the engine can take, so a client's value
can never reach the engine and fail there (which would count as an engine fault against the circuit
breaker). Token counts are in tokens of the served model's tokenizer; ``created`` is Unix seconds.

Responses are built by the serving logic from its own values; a field declared with
``exclude_if=_absent`` is left out of the JSON while ``None``, as OpenAI leaves it out (a delta's
``role``, a chunk's ``usage``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

MAX_TOKENS_LIMIT = 1_000_000
"""Above this a ``max_tokens`` is a type of error, not a shaping decision."""
SEED_MIN, SEED_MAX = -(2**63), 2**64 - 1
"""``torch.manual_seed``: "Value must be within the inclusive range [-0x8000_0000_0000_0000,
0xffff_ffff_ffff_ffff]. Otherwise, a RuntimeError is raised." (torch.random docs)."""

TokenCount = Annotated[StrictInt, Field(ge=1, le=MAX_TOKENS_LIMIT)]


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: StrictBool = False


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["text"]
    text: StrictStr


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: StrictStr | list[ContentPart]

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class _GenerationRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: StrictStr
    max_tokens: TokenCount | None = None
    max_completion_tokens: TokenCount | None = None
    temperature: Annotated[StrictFloat, Field(ge=0, le=2)] | None = None
    top_p: Annotated[StrictFloat, Field(gt=0, le=1)] = 1.0
    n: Annotated[StrictInt, Field(ge=1, le=1)] = 1
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    stop: StrictStr | list[StrictStr] | None = None
    seed: Annotated[StrictInt, Field(ge=SEED_MIN, le=SEED_MAX)] | None = None
    user: StrictStr | None = None

    @property
    def requested_max_tokens(self) -> int | None:
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens

    @property
    def stop_sequences(self) -> list[str]:
        if self.stop is None:
            return []
        return [s for s in ([self.stop] if isinstance(self.stop, str) else self.stop) if s]

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class ChatCompletionRequest(_GenerationRequest):
    messages: Annotated[list[ChatMessage], Field(min_length=1)]


class CompletionRequest(_GenerationRequest):
    prompt: StrictStr | Annotated[list[StrictStr], Field(min_length=1, max_length=1)]
    echo: StrictBool = False

    @property
    def prompt_text(self) -> str:
        return self.prompt if isinstance(self.prompt, str) else self.prompt[0]


def _absent(value: object) -> bool:
    return value is None


class Usage(BaseModel):
    """Tokens of one request: the prompt's, the generated ones, and their sum."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int

    @classmethod
    def of(cls, prompt_tokens: int, completion_tokens: int) -> Usage:
        return cls(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            total_tokens=prompt_tokens + completion_tokens,
        )


FinishReason = str
"""Why generation ended: ``stop`` (end of sequence or a stop sequence), ``length`` (max_tokens)."""


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: FinishReason
    logprobs: None = None


class ChatCompletionResponse(BaseModel):
    """``POST /v1/chat/completions`` without ``stream``."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    """Unix time, seconds."""
    model: str
    choices: list[ChatChoice]
    usage: Usage


class CompletionChoice(BaseModel):
    """A choice of a completion, also of each of its stream chunks (``text`` is the new text)."""

    index: int = 0
    text: str
    finish_reason: FinishReason | None
    logprobs: None = None


class CompletionResponse(BaseModel):
    """``POST /v1/completions``: the whole answer, or (``stream``) one chunk of it (same object name)."""

    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    """Unix time, seconds."""
    model: str
    choices: list[CompletionChoice]
    usage: Annotated[Usage | None, Field(exclude_if=_absent)] = None


class DeltaMessage(BaseModel):
    """The new part of the assistant's message in a chat stream chunk; fields left out while ``None``."""

    role: Annotated[Literal["assistant"] | None, Field(exclude_if=_absent)] = None
    content: Annotated[str | None, Field(exclude_if=_absent)] = None


class ChatStreamChoice(BaseModel):
    index: int = 0
    delta: DeltaMessage
    finish_reason: FinishReason | None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    """One SSE event of ``POST /v1/chat/completions`` with ``stream``; the usage chunk has no choices."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    """Unix time, seconds."""
    model: str
    choices: list[ChatStreamChoice]
    usage: Annotated[Usage | None, Field(exclude_if=_absent)] = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "llmfn"


class ModelList(BaseModel):
    """``GET /v1/models``: the one served model."""

    object: Literal["list"] = "list"
    data: list[ModelCard]


GENERATION_BODIES: dict[str, type[_GenerationRequest]] = {
    "/v1/chat/completions": ChatCompletionRequest,
    "/v1/completions": CompletionRequest,
}


REF_TEMPLATE = "#/components/schemas/{model}"


def openapi_components(
    *models: type[BaseModel], mode: Literal["validation", "serialization"] = "serialization"
) -> dict[str, Any]:
    """OpenAPI 3.1 component schemas of ``models`` and of the models they nest, by class name
    (``validation``: what a request may hold; ``serialization``: what an answer holds)."""
    components: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(ref_template=REF_TEMPLATE, mode=mode)
        components.update(schema.pop("$defs", {}))
        components[model.__name__] = schema
    return components


def openapi_generation_bodies() -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """OpenAPI 3.1 component schemas of the request bodies and the ``requestBody`` object of each
    generation route (``{path: requestBody}``), for the app's and the gateway's OpenAPI documents."""
    components = openapi_components(*GENERATION_BODIES.values(), mode="validation")
    bodies: dict[str, dict[str, Any]] = {}
    for path, model in GENERATION_BODIES.items():
        ref = {"$ref": REF_TEMPLATE.format(model=model.__name__)}
        bodies[path] = {"required": True, "content": {"application/json": {"schema": ref}}}
    return components, bodies

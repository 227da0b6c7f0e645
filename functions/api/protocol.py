"""The OpenAI wire types of the API subset served here: request bodies, responses and stream chunks.

Requests (unknown fields are ignored, as vLLM does): types are strict where OpenAI's API is: an
integer field refuses ``"5"``, ``true`` and ``5.0``, a number field refuses strings and booleans, a
boolean field refuses ``1``. Every integer is bounded to what the engine can take, so a client's value
can never reach the engine and fail there (which would count as an engine fault against the circuit
breaker). Token counts are in tokens of the served model's tokenizer; ``created`` is Unix seconds.

A field is either honoured or refused, never accepted and ignored: OpenAI's fields this server cannot
honour (``logprobs``, tools, a structured ``response_format``, ``logit_bias``, ``suffix``, ...) and
vLLM's sampling extensions (``top_k``, ``min_p``, ``repetition_penalty``, ...) are refused with a 400
``unsupported_parameter`` / ``unsupported_value`` when given a value that would change the answer
(:meth:`_GenerationRequest.unsupported`), as vLLM refuses what its server cannot do ("suffix is not
currently supported", ``vllm/entrypoints/openai/serving_completion.py``). ``echo`` and
``presence_penalty`` / ``frequency_penalty`` are implemented; the penalties take OpenAI's range [-2, 2]
("Number between -2.0 and 2.0", OpenAI API reference; vLLM's ``SamplingParams``: "presence_penalty must
be in [-2, 2]").

Responses are built by the serving logic from its own values; a field declared with
``exclude_if=_absent`` is left out of the JSON while ``None``, as OpenAI leaves it out (a delta's
``role``, a chunk's ``usage``).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

MAX_TOKENS_LIMIT = 1_000_000
"""Above this a ``max_tokens`` is a type of error, not a shaping decision."""
SEED_MIN, SEED_MAX = -(2**63), 2**64 - 1
"""``torch.manual_seed``: "Value must be within the inclusive range [-0x8000_0000_0000_0000,
0xffff_ffff_ffff_ffff]. Otherwise, a RuntimeError is raised." (torch.random docs)."""

TokenCount = Annotated[StrictInt, Field(ge=1, le=MAX_TOKENS_LIMIT)]
Penalty = Annotated[StrictFloat, Field(ge=-2, le=2)]
"""``presence_penalty`` / ``frequency_penalty``: OpenAI's range, [-2, 2]."""
JsonObject = dict[StrictStr, Any]

VLLM_EXTENSIONS: dict[str, tuple[object, ...]] = {
    "top_k": (None, -1, 0),
    "min_p": (None, 0),
    "repetition_penalty": (None, 1),
    "length_penalty": (None, 1),
    "min_tokens": (None, 0),
    "ignore_eos": (None, False),
    "use_beam_search": (None, False),
    "stop_token_ids": (None, []),
    "bad_words": (None, []),
    "allowed_token_ids": (None,),
    "include_stop_str_in_output": (None, False),
    "skip_special_tokens": (None, True),
    "spaces_between_special_tokens": (None, True),
    "prompt_logprobs": (None,),
    "truncate_prompt_tokens": (None,),
    "logits_processors": (None, []),
    "guided_json": (None,),
    "guided_regex": (None,),
    "guided_choice": (None,),
    "guided_grammar": (None,),
    "structured_outputs": (None,),
    "chat_template": (None,),
    "chat_template_kwargs": (None, {}),
    "continue_final_message": (None, False),
    "add_generation_prompt": (None, True),
}
"""vLLM's request extensions (``vllm/entrypoints/openai/protocol.py``) and the values that leave the
answer as this server gives it: any other value is refused as unsupported, never silently dropped."""


class Unsupported(NamedTuple):
    """A field given with a value this server cannot honour: its name, the 400's message and code."""

    param: str
    message: str
    code: str = "unsupported_parameter"


NO_TOOLS = "this server does not call tools (its answers are text only)"


def _not_supported(param: str, why: str, code: str = "unsupported_parameter") -> Unsupported:
    return Unsupported(param, f"Unsupported parameter: '{param}' {why}", code)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: StrictBool = False


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["text"]
    text: StrictStr


class ResponseFormat(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonObject | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: StrictStr | list[ContentPart]
    tool_calls: list[JsonObject] | None = None
    name: StrictStr | None = None
    """The participant's name: passed to the chat template, as vLLM does (templates that know it use it)."""

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)

    def template_fields(self) -> dict[str, str]:
        """What the chat template receives of this message: role, text and (when given) name."""
        fields = {"role": self.role, "content": self.text()}
        return fields if self.name is None else {**fields, "name": self.name}


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
    presence_penalty: Penalty | None = None
    frequency_penalty: Penalty | None = None
    logit_bias: dict[StrictStr, Annotated[StrictFloat, Field(ge=-100, le=100)]] | None = None

    def unsupported(self, body: dict[str, Any]) -> Unsupported | None:
        """The first field of the request (``body`` is its JSON object) that this server cannot honour."""
        if self.stream_options is not None and not self.stream:
            return Unsupported(
                "stream_options",
                "The 'stream_options' parameter is only allowed when 'stream' is true.",
                "invalid_value",
            )
        if self.logit_bias:
            return _not_supported("logit_bias", "is not supported by this server; leave it out.")
        for name, harmless in VLLM_EXTENSIONS.items():
            if name in body and body[name] not in harmless:
                allowed = "".join(f" or send {json.dumps(v)}" for v in harmless if v is not None)
                return _not_supported(
                    name, f"(a vLLM extension) is not supported by this server; leave it out{allowed}."
                )
        return None

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
    logprobs: StrictBool | None = None
    top_logprobs: Annotated[StrictInt, Field(ge=0, le=20)] | None = None
    tools: list[JsonObject] | None = None
    tool_choice: Literal["none", "auto", "required"] | JsonObject | None = None
    parallel_tool_calls: StrictBool | None = None
    functions: list[JsonObject] | None = None
    function_call: Literal["none", "auto"] | JsonObject | None = None
    response_format: ResponseFormat | None = None
    reasoning_effort: StrictStr | None = None
    modalities: list[StrictStr] | None = None
    audio: JsonObject | None = None
    prediction: JsonObject | None = None
    web_search_options: JsonObject | None = None
    echo: StrictBool | None = None
    """vLLM's chat extension (echo the last message); not supported."""

    def unsupported(self, body: dict[str, Any]) -> Unsupported | None:
        if self.logprobs:
            return _not_supported("logprobs", "is not supported by this server; leave it out or send false.")
        if self.top_logprobs:
            return _not_supported("top_logprobs", "is not supported by this server; leave it out or send 0.")
        if self.tools or self.functions:
            return _not_supported("tools" if self.tools else "functions", f"is not supported: {NO_TOOLS}.")
        if isinstance(self.tool_choice, dict) or self.tool_choice == "required":
            return _not_supported("tool_choice", f"that forces a tool call is not supported: {NO_TOOLS}.")
        if isinstance(self.function_call, dict):
            return _not_supported("function_call", f"that forces a call is not supported: {NO_TOOLS}.")
        if any(m.tool_calls for m in self.messages):
            return _not_supported("messages", f"with tool_calls are not supported: {NO_TOOLS}.")
        if self.response_format is not None and self.response_format.type != "text":
            return _not_supported(
                "response_format",
                f"of type '{self.response_format.type}' is not supported: this server has no constrained "
                "decoding, so the answer could not be guaranteed to match; leave it out or send type 'text'.",
                "unsupported_value",
            )
        if self.reasoning_effort is not None:
            return _not_supported("reasoning_effort", "is not supported: the served model does not reason.")
        if self.modalities not in (None, ["text"]) or self.audio is not None:
            return _not_supported(
                "audio" if self.audio is not None else "modalities", "is not supported: text only."
            )
        for name in ("prediction", "web_search_options"):
            if getattr(self, name) is not None:
                return _not_supported(name, "is not supported by this server; leave it out.")
        if self.echo:
            return _not_supported("echo", "(a vLLM chat extension) is not supported; leave it out.")
        return super().unsupported(body)


class CompletionRequest(_GenerationRequest):
    prompt: StrictStr | Annotated[list[StrictStr], Field(min_length=1, max_length=1)]
    echo: StrictBool = False
    """Answer with the prompt in front of the completion (implemented)."""
    logprobs: Annotated[StrictInt, Field(ge=0, le=5)] | None = None
    suffix: StrictStr | None = None
    best_of: Annotated[StrictInt, Field(ge=1, le=MAX_TOKENS_LIMIT)] | None = None

    def unsupported(self, body: dict[str, Any]) -> Unsupported | None:
        if self.logprobs is not None:
            return _not_supported("logprobs", "is not supported by this server; leave it out.")
        if self.suffix:
            return _not_supported("suffix", "is not currently supported (vLLM's answer too); leave it out.")
        if self.best_of is not None and self.best_of > 1:
            return _not_supported("best_of", "above 1 is not supported by this server.", "unsupported_value")
        return super().unsupported(body)

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

"""Request shaping (seed 001): max_tokens default and cap from the prompt, temperature by intent.

- ``max_tokens`` unset: ``default_short`` for prompts under ``long_prompt_chars`` characters, else
  ``default_long`` (seed 001: 1024 / 2048 around 500 characters).
- Every ``max_tokens`` is capped at ``max_tokens_cap`` and at what the context has left after the
  prompt; a request whose explicit ``max_tokens`` cannot fit the context is refused (``ShapingError``),
  as OpenAI refuses it, instead of being silently truncated.
- ``temperature`` unset: 0.3 for precise intents (summarise, translate, extract, classify, code:
  seed 001 lowers it for "总结"), else 0.7.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import InputError

PRECISE_TEMPERATURE = 0.3
CREATIVE_TEMPERATURE = 0.7
_PRECISE_MARKERS = (
    "summar",
    "tl;dr",
    "translate",
    "extract",
    "classify",
    "```",
    "def ",
    "总结",
    "摘要",
    "翻译",
    "提取",
    "分类",
)


class ShapingError(InputError):
    """The request cannot be served as asked; ``param`` names the offending request field."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class ShapingPolicy:
    """Limits and defaults; token counts are model tokens, lengths characters."""

    context_len: int
    max_tokens_cap: int = 4096
    long_prompt_chars: int = 500
    default_short: int = 1024
    default_long: int = 2048


@dataclass(frozen=True)
class ShapedRequest:
    max_tokens: int
    temperature: float
    intent: str
    """``precise`` or ``creative``: why the temperature is what it is (``explicit`` if the client set it)."""


def intent_of(prompt: str) -> str:
    """``precise`` when the prompt asks to summarise / translate / extract / classify / code, else
    ``creative``."""
    lowered = prompt.lower()
    return "precise" if any(m in lowered for m in _PRECISE_MARKERS) else "creative"


def shape_request(
    policy: ShapingPolicy,
    prompt: str,
    prompt_tokens: int,
    max_tokens: int | None,
    temperature: float | None,
) -> ShapedRequest:
    """Fill in / cap ``max_tokens`` and ``temperature`` for one request (see module docstring)."""
    room = policy.context_len - prompt_tokens
    if room < 1:
        raise ShapingError(
            f"This model's maximum context length is {policy.context_len} tokens; the prompt has "
            f"{prompt_tokens}. Shorten the prompt.",
            param="messages",
        )
    if max_tokens is not None and max_tokens > room:
        raise ShapingError(
            f"max_tokens is too large: {max_tokens}. This model's maximum context length is "
            f"{policy.context_len} tokens and the prompt has {prompt_tokens}; at most {room} can be "
            f"generated.",
            param="max_tokens",
        )
    if max_tokens is None:
        max_tokens = policy.default_short if len(prompt) < policy.long_prompt_chars else policy.default_long
    shaped_tokens = max(1, min(max_tokens, policy.max_tokens_cap, room))
    if temperature is not None:
        return ShapedRequest(shaped_tokens, temperature, "explicit")
    intent = intent_of(prompt)
    return ShapedRequest(
        shaped_tokens, PRECISE_TEMPERATURE if intent == "precise" else CREATIVE_TEMPERATURE, intent
    )

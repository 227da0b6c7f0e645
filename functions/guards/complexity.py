"""The request complexity fingerprint of seed 002, used for tier routing (S / M / L pools).

score = tokens/1000 x weight x max_tokens/256, capped at 5, where the weight multiplies 1.8 for a
fenced code block, 1.5 for loop / function keywords and 1.6 for math symbols. The seed multiplies the
raw token count, which reaches its cap of 5 with a 5-token prompt, so every real request would be
tier L; counting tokens in thousands keeps its thresholds (>= 3.0 high, < 1.2 low) meaningful.
Pure: no tokenizer, no I/O; the local gateway routes by it before a model is involved.
"""

from __future__ import annotations

import math
from typing import Literal

from core.errors import InputError

Tier = Literal["S", "M", "L"]

CODE_FENCE_WEIGHT = 1.8
CODE_KEYWORD_WEIGHT = 1.5
MATH_WEIGHT = 1.6
SCORE_CAP = 5.0
TIER_M_FROM = 1.2
"""Scores below this are tier S (light: may share a GPU)."""
TIER_L_FROM = 3.0
"""Scores at or above this are tier L (heavy: a dedicated instance)."""

_CODE_KEYWORDS = ("def ", "for ", "class ", "function ", "while ", "import ")
_MATH_SYMBOLS = frozenset("∫∑∏√∂∞≤≥≠±αβγδθλμπσ")


def estimate_tokens(text: str) -> int:
    """Rough token count without a tokenizer: 4 ASCII characters or 1 other character per token."""
    ascii_chars = sum(1 for c in text if c < "\x80")
    return math.ceil(ascii_chars / 4) + (len(text) - ascii_chars)


def complexity_weight(prompt: str) -> float:
    """The content weight: code fence x1.8, code keywords x1.5, math symbols x1.6 (they multiply)."""
    weight = 1.0
    if "```" in prompt:
        weight *= CODE_FENCE_WEIGHT
    if any(k in prompt for k in _CODE_KEYWORDS):
        weight *= CODE_KEYWORD_WEIGHT
    if not _MATH_SYMBOLS.isdisjoint(prompt):
        weight *= MATH_WEIGHT
    return weight


def complexity_score(prompt: str, max_tokens: int, prompt_tokens: int | None = None) -> float:
    """Fingerprint in [0, 5]: ``prompt_tokens`` (estimated when None) / 1000 x weight x max_tokens / 256."""
    if max_tokens < 0:
        raise InputError(f"max_tokens: must be >= 0, got {max_tokens}")
    tokens = estimate_tokens(prompt) if prompt_tokens is None else prompt_tokens
    raw = tokens / 1000 * complexity_weight(prompt) * (max_tokens / 256)
    return round(min(SCORE_CAP, raw), 4)


def complexity_tier(score: float) -> Tier:
    """S below 1.2, M below 3.0, L from 3.0 (seed 002's thresholds)."""
    if score < TIER_M_FROM:
        return "S"
    return "M" if score < TIER_L_FROM else "L"

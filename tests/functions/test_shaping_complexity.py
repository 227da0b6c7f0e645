"""Request shaping (seed 001) and the complexity fingerprint (seed 002)."""

from __future__ import annotations

import pytest

from functions.guards.complexity import (
    complexity_score,
    complexity_tier,
    complexity_weight,
    estimate_tokens,
)
from functions.guards.shaping import ShapingError, ShapingPolicy, intent_of, shape_request

POLICY = ShapingPolicy(context_len=8192, max_tokens_cap=4096)


def test_default_max_tokens_depends_on_prompt_length() -> None:
    assert shape_request(POLICY, "short question?", 5, None, None).max_tokens == 1024
    assert shape_request(POLICY, "x" * 600, 150, None, None).max_tokens == 2048


def test_max_tokens_is_capped_by_the_cap_and_the_context_left() -> None:
    assert shape_request(POLICY, "hi", 2, 4000, 0.5).max_tokens == 4000
    tight = ShapingPolicy(context_len=8192, max_tokens_cap=512)
    assert shape_request(tight, "hi", 2, 4000, 0.5).max_tokens == 512
    assert shape_request(POLICY, "x" * 600, 7500, None, None).max_tokens == 692  # 8192 - 7500


def test_max_tokens_that_cannot_fit_is_refused() -> None:
    with pytest.raises(ShapingError) as refused:
        shape_request(POLICY, "hi", 8000, 500, None)
    assert refused.value.param == "max_tokens"
    with pytest.raises(ShapingError) as full:
        shape_request(POLICY, "x", 8192, None, None)
    assert full.value.param == "messages"


def test_temperature_by_intent_unless_the_client_set_it() -> None:
    assert shape_request(POLICY, "Summarize this article", 5, None, None).temperature == 0.3
    assert shape_request(POLICY, "请总结上一段话", 5, None, None).temperature == 0.3
    assert shape_request(POLICY, "Write a story about a fox", 5, None, None).temperature == 0.7
    explicit = shape_request(POLICY, "Summarize this", 5, None, 1.2)
    assert (explicit.temperature, explicit.intent) == (1.2, "explicit")
    assert intent_of("translate to French") == "precise"


def test_complexity_weights_multiply_like_the_seed() -> None:
    assert complexity_weight("hello") == 1.0
    assert complexity_weight("```python\nprint(1)\n```") == pytest.approx(1.8)
    assert complexity_weight("```python\ndef f(): pass\n```") == pytest.approx(1.8 * 1.5)
    assert complexity_weight("∑ x for x in xs ```") == pytest.approx(1.8 * 1.5 * 1.6)


def test_complexity_score_formula_cap_and_tiers() -> None:
    assert complexity_score("hello", 256, prompt_tokens=1000) == pytest.approx(1.0)
    assert complexity_score("def f", 512, prompt_tokens=1000) == pytest.approx(3.0)
    assert complexity_score("∑ def ```", 4096, prompt_tokens=8000) == 5.0
    assert complexity_tier(1.19) == "S"
    assert complexity_tier(1.2) == "M"
    assert complexity_tier(2.99) == "M"
    assert complexity_tier(3.0) == "L"
    with pytest.raises(ValueError, match="max_tokens"):
        complexity_score("x", -1)


def test_token_estimate_without_a_tokenizer() -> None:
    assert estimate_tokens("abcdefgh") == 2
    assert estimate_tokens("你好") == 2
    assert complexity_score("a" * 4000, 256) == pytest.approx(1.0)

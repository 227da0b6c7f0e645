"""Engine pieces: incremental detokenisation, the null engine's answers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from functions.engines import SamplingParams
from functions.engines.null import NullEngine
from functions.engines.transformers_engine import _IncrementalDecoder


@pytest.mark.parametrize(
    "text",
    ["The quick brown fox jumps. def add(a, b): return a + b", "héllo wörld ∑ α β 你好世界 ✓ <|im_end|>"],
)
def test_incremental_decoding_streams_exactly_the_full_decode(tiny_model_dir: Path, text: str) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    decoder = _IncrementalDecoder(tokenizer)
    deltas = [decoder.push(token) for token in ids]
    assert "".join(deltas) + decoder.flush() == tokenizer.decode(ids, skip_special_tokens=True)
    assert not any("\ufffd" in d for d in deltas)  # never half a character


def test_null_engine_honours_max_tokens() -> None:
    async def collect(max_tokens: int) -> list:
        engine = NullEngine("null", completion_tokens=4)
        return [c async for c in engine.generate(engine.render_text("hi"), SamplingParams(max_tokens))]

    short = asyncio.run(collect(2))
    assert [c.completion_tokens for c in short] == [1, 2]
    assert short[-1].finish_reason == "length"
    full = asyncio.run(collect(100))
    assert len(full) == 4 and full[-1].finish_reason == "stop"

"""Property-based fuzzing of ``llmfn serve``'s app over real HTTP (issue 13, "keep it fixed"): schemathesis
from its OpenAPI document, hypothesis request bodies against the tiny model, and hypothesis requests at
the HTTP layer (issue 22: hostile paths and methods, header floods, keys that are no key). No answer is a 5xx, every
error is in OpenAI's format, and afterwards the server is alive and its breaker closed. Bounded budgets
(seeded); ``bench/fuzz.py`` runs 10k+ cases per surface."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from functions.api.router import create_app
from functions.guards.headers import server_options
from functions.settings import ServeSettings
from tests.functions.helpers import running, wait_ready
from tests.fuzzing import Tally, run_bodies, run_field_honesty, run_openapi, run_wire

KEY = "sk-fuzz"


@pytest.fixture(scope="module")
def fuzzed_app(tiny_model_dir: Path) -> Iterator[tuple[str, object]]:
    """The tiny model with one-token answers (fuzzing is about input, not generation) and admission
    limits out of the way, so that every answer is about the request itself."""
    settings = ServeSettings.build(
        model=tiny_model_dir,
        model_name="tiny",
        api_key=KEY,
        preload_workers=2,
        max_tokens_cap=1,
        rate_per_s=1e6,
        burst=1_000_000,
        access_log=False,
    )
    app = create_app(settings)
    with running(app, **server_options()) as url:  # as `llmfn serve` runs it: header bounds at the parser
        wait_ready(url, api_key=KEY)
        yield url, app


def assert_clean(tally: Tally, url: str) -> None:
    assert tally.problems == [], "\n".join(tally.problems)
    assert tally.transport_errors == 0
    assert tally.statuses["2xx"] > 0 and tally.statuses["4xx"] > 0, tally.statuses  # both kinds were reached
    auth = {"Authorization": f"Bearer {KEY}"}
    assert httpx.get(url + "/healthz").status_code == 200
    assert "llmfn_breaker_state 0.0" in httpx.get(url + "/metrics", headers=auth).text


def test_schemathesis_against_the_openapi_document(fuzzed_app: tuple[str, object]) -> None:
    url, app = fuzzed_app
    tally = run_openapi(url, app.openapi(), KEY, cases=80, seeded=True)  # type: ignore[attr-defined]
    assert tally.cases >= 60
    assert_clean(tally, url)


def test_hypothesis_request_bodies(fuzzed_app: tuple[str, object]) -> None:
    url, _ = fuzzed_app
    tally = run_bodies(url, "tiny", KEY, cases=300, seeded=True)
    assert tally.cases >= 250
    assert_clean(tally, url)


def test_every_field_is_honoured_or_refused(fuzzed_app: tuple[str, object]) -> None:
    """Issue 22, item 12: no field is accepted and then ignored."""
    url, _ = fuzzed_app
    tally = run_field_honesty(url, "tiny", KEY, cases=150, seeded=True)
    assert tally.cases >= 120
    assert_clean(tally, url)


def test_control_token_text_in_messages_never_becomes_a_control_token(tiny_model_dir: Path) -> None:
    """Issue 22, item 13: whatever mix of text and added-token strings the messages hold, the prompt's
    ids hold exactly the control tokens the template writes (one ``<|im_start|>`` / ``<|im_end|>`` pair
    per message, one ``<|im_start|>`` to open the answer) and spell the rendered prompt."""
    from hypothesis import HealthCheck, given, settings
    from transformers import AutoTokenizer

    from functions.engines.base import CheckpointEngine
    from functions.engines.chat_prompt import added_token_strings
    from tests.fuzzing import injected_messages

    class TokenizerOnly(CheckpointEngine):  # the engines' own render_chat, without loading weights
        def __init__(self, tokenizer: object) -> None:
            self._tokenizer = tokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    engine = TokenizerOnly(tokenizer)
    specials = added_token_strings(tokenizer)
    start, end, eot = (
        tokenizer.convert_tokens_to_ids(t) for t in ("<|im_start|>", "<|im_end|>", "<|endoftext|>")
    )

    @settings(
        max_examples=300,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(messages=injected_messages(specials))
    def check(messages: list[dict[str, str]]) -> None:
        prompt = engine.render_chat(messages)
        text, ids = prompt.text, list(prompt.token_ids)
        assert text == tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        assert (ids.count(start), ids.count(end), ids.count(eot)) == (len(messages) + 1, len(messages), 0)
        assert tokenizer.decode(ids) == text

    check()


def test_hypothesis_wire_requests(fuzzed_app: tuple[str, object]) -> None:
    """Paths with encoded control characters or dot segments, near-miss routes, every method, header
    floods and oversized heads, malformed Bearer keys: no 5xx, no redirect, no route reached by a path
    that is not one, nothing answered without the key, no head read past its bound."""
    url, _ = fuzzed_app
    tally = run_wire(url, KEY, cases=200, seeded=True)
    assert tally.cases >= 150
    assert_clean(tally, url)

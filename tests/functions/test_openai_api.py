"""The official openai client against the tiny model over real HTTP: chat and completions, stream and not."""

from __future__ import annotations

import json
from typing import Any

import httpx
import jsonschema
import openai
import pytest

from functions.api.router import create_app
from functions.settings import ServeSettings
from tests.functions.conftest import API_KEY
from tests.functions.helpers import assert_openai_error


@pytest.fixture(scope="module")
def client(tiny_server: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=tiny_server + "/v1", api_key=API_KEY, max_retries=0)


def test_models_lists_the_served_model(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == ["tiny"]


def test_chat_completion_non_stream_fills_usage(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "Hello there"}], max_tokens=6, temperature=0
    )
    choice = reply.choices[0]
    assert choice.message.role == "assistant"
    assert isinstance(choice.message.content, str)
    assert choice.finish_reason in {"stop", "length"}
    assert reply.usage is not None
    assert reply.usage.prompt_tokens > 0
    assert 1 <= reply.usage.completion_tokens <= 6
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_greedy_chat_is_deterministic_and_stream_matches(client: openai.OpenAI) -> None:
    kwargs = {
        "model": "tiny",
        "messages": [{"role": "user", "content": "count"}],
        "max_tokens": 8,
        "temperature": 0,
    }
    first = client.chat.completions.create(**kwargs)
    second = client.chat.completions.create(**kwargs)
    assert first.choices[0].message.content == second.choices[0].message.content
    stream = client.chat.completions.create(**kwargs, stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == first.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finals) == 1
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == first.usage.completion_tokens


def test_stream_delivers_tokens_one_event_at_a_time(tiny_server: str) -> None:
    body = {"model": "tiny", "prompt": "The quick brown", "max_tokens": 12, "temperature": 0, "stream": True}
    headers = {"Authorization": f"Bearer {API_KEY}"}
    events = []
    with httpx.stream("POST", tiny_server + "/v1/completions", json=body, headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "data: [DONE]"
    assert len(events) >= 3  # several token events, a finish event, [DONE]


def _conforms(document: dict[str, Any], component: str, answer: object) -> None:
    """``answer`` validates against ``component`` of the app's OpenAPI document (its 3.1 JSON Schema)."""
    schema = {"$ref": f"#/components/schemas/{component}", "components": document["components"]}
    jsonschema.Draft202012Validator(schema).validate(answer)


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    """The OpenAPI document of the app (the same for every engine)."""
    return create_app(ServeSettings.build(engine="null")).openapi()


def test_json_answers_conform_to_the_openapi_document(tiny_server: str, document: dict[str, Any]) -> None:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    paths = document["paths"]
    for path, body in (
        (
            "/v1/chat/completions",
            {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3},
        ),
        ("/v1/completions", {"model": "tiny", "prompt": "hi", "max_tokens": 3}),
    ):
        answer = httpx.post(tiny_server + path, json=body, headers=headers)
        assert answer.status_code == 200
        ref = paths[path]["post"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        _conforms(document, ref.rsplit("/", 1)[-1], answer.json())
    models = httpx.get(tiny_server + "/v1/models", headers=headers)
    assert paths["/v1/models"]["get"]["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ModelList"
    }
    _conforms(document, "ModelList", models.json())
    with pytest.raises(jsonschema.ValidationError):  # the check can fail: a reply without its usage
        _conforms(
            document, "ChatCompletionResponse", {**answer.json(), "object": "chat.completion"} | {"usage": 5}
        )


def test_chat_stream_chunks_on_the_wire_have_openais_shape(
    tiny_server: str, document: dict[str, Any]
) -> None:
    """Raw SSE: a role chunk, content deltas without a ``usage`` key, one finish chunk with an empty
    delta, a usage chunk without choices, ``[DONE]``; each chunk parses as the openai SDK's type."""
    from openai.types.chat import ChatCompletionChunk

    body = {
        "model": "tiny",
        "messages": [{"role": "user", "content": "count"}],
        "max_tokens": 6,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    headers = {"Authorization": f"Bearer {API_KEY}", "x-request-id": "wire-1"}
    with httpx.stream("POST", tiny_server + "/v1/chat/completions", json=body, headers=headers) as response:
        lines = [line.removeprefix("data: ") for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    chunks = [json.loads(line) for line in lines[:-1]]
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk, strict=False)
        _conforms(document, "ChatCompletionChunk", chunk)
        assert chunk["id"] == "chatcmpl-wire-1" and chunk["object"] == "chat.completion.chunk"
        assert chunk["model"] == "tiny" and isinstance(chunk["created"], int)
    role, *middle, finish, usage = chunks
    assert role["choices"][0]["delta"] == {"role": "assistant", "content": ""} and "usage" not in role
    for chunk in middle:
        assert (
            chunk["choices"][0]["delta"].keys() == {"content"}
            and chunk["choices"][0]["finish_reason"] is None
        )
        assert "usage" not in chunk
    assert finish["choices"][0]["delta"] == {} and finish["choices"][0]["finish_reason"] in {"stop", "length"}
    assert usage["choices"] == []
    tokens = usage["usage"]
    assert tokens["total_tokens"] == tokens["prompt_tokens"] + tokens["completion_tokens"] > 0


def test_completion_non_stream_and_stream(client: openai.OpenAI) -> None:
    reply = client.completions.create(model="tiny", prompt="for i in range", max_tokens=5, temperature=0)
    assert reply.object == "text_completion"
    assert reply.usage.completion_tokens <= 5
    streamed = client.completions.create(
        model="tiny", prompt="for i in range", max_tokens=5, temperature=0, stream=True
    )
    text = "".join(c.choices[0].text for c in streamed if c.choices)
    assert text == reply.choices[0].text


def test_sampling_with_temperature_and_top_p_answers(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="tiny",
        messages=[{"role": "user", "content": "write a poem"}],
        max_tokens=4,
        temperature=1.0,
        top_p=0.9,
        seed=7,
    )
    assert reply.usage.completion_tokens >= 1


def test_response_headers_carry_complexity_and_request_id(tiny_server: str) -> None:
    response = httpx.post(
        tiny_server + "/v1/chat/completions",
        json={"model": "tiny", "messages": [{"role": "user", "content": "def f(): pass"}], "max_tokens": 2},
        headers={"Authorization": f"Bearer {API_KEY}", "x-request-id": "req-42"},
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "req-42"
    assert response.json()["id"] == "chatcmpl-req-42"
    assert 0 < float(response.headers["x-llmfn-complexity"]) <= 5
    assert response.headers["x-llmfn-tier"] in {"S", "M", "L"}


def test_metrics_report_requests_tokens_and_preload(tiny_server: str, client: openai.OpenAI) -> None:
    client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=2)
    text = httpx.get(tiny_server + "/metrics", headers={"Authorization": f"Bearer {API_KEY}"}).text
    assert 'llmfn_requests_total{route="chat",status="200"}' in text
    assert "llmfn_completion_tokens_total" in text
    assert "llmfn_complexity_score_bucket" in text
    for stage in ("runtime", "embedding", "blocks", "final", "engine"):
        assert f'llmfn_preload_stage_seconds{{stage="{stage}"}}' in text
    assert "llmfn_ready 1.0" in text
    assert "llmfn_breaker_state 0.0" in text


def test_request_log_lines_are_json_with_the_request_id(caplog: pytest.LogCaptureFixture) -> None:
    import json
    import logging

    from functions.api.router import create_app
    from functions.logs import JsonFormatter
    from functions.settings import ServeSettings
    from tests.functions.helpers import running, wait_ready

    app = create_app(ServeSettings.build(engine="null"))
    with caplog.at_level(logging.INFO, logger="llmfn.serve"), running(app) as url:
        wait_ready(url)
        body = {"model": "null", "messages": [{"role": "user", "content": "hi"}]}
        assert (
            httpx.post(url + "/v1/chat/completions", json=body, headers={"x-request-id": "abc-1"}).status_code
            == 200
        )
        assert httpx.post(
            url + "/v1/chat/completions", json={"model": "x"}, headers={"x-request-id": "abc-2"}
        )
    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records if r.name == "llmfn.serve"]
    served = next(line for line in lines if line.get("request_id") == "abc-1")
    assert served["status"] == 200 and served["route"] == "/v1/chat/completions" and served["ms"] >= 0
    refused = next(line for line in lines if line.get("request_id") == "abc-2")
    assert refused["status"] == 422 and refused["level"] == "info"


def test_stop_sequence_cuts_the_answer(client: openai.OpenAI) -> None:
    kwargs = {"model": "tiny", "prompt": "The model loads", "max_tokens": 24, "temperature": 0}
    full = client.completions.create(**kwargs).choices[0].text
    assert len(full) > 6, full
    stop = full[3:6]
    cut = full[: full.index(stop)]
    reply = client.completions.create(**kwargs, stop=[stop])
    assert reply.choices[0].text == cut
    assert reply.choices[0].finish_reason == "stop"
    streamed = client.completions.create(**kwargs, stop=stop, stream=True)
    assert "".join(c.choices[0].text for c in streamed if c.choices) == cut


def test_control_token_text_in_a_message_is_counted_as_text(client: openai.OpenAI, tiny_model_dir) -> None:
    """Chat-template injection (issue 22, item 13), end to end: the prompt the server tokenised holds the
    user's ``<|im_end|>`` as text (several tokens each), not as 20 control tokens."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    content = "<|im_end|>" * 20
    plain = len(tokenizer(content, add_special_tokens=False, split_special_tokens=True)["input_ids"])
    frame = tokenizer.apply_chat_template(
        [{"role": "user", "content": "x"}], tokenize=True, add_generation_prompt=True, return_dict=False
    )
    reply = client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": content}], max_tokens=1, temperature=0
    )
    assert reply.usage is not None and plain > 20
    assert (
        reply.usage.prompt_tokens == len(frame) - 1 + plain
    )  # the frame around "x" (one token), then the text


# -- issue 22, item 12: every field is honoured or refused, never accepted and ignored -----------------

CHAT_BASE: dict[str, Any] = {
    "model": "tiny",
    "messages": [{"role": "user", "content": "Hi"}],
    "max_tokens": 2,
}
TEXT_BASE: dict[str, Any] = {"model": "tiny", "prompt": "Hi", "max_tokens": 2}
TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
UNSUPPORTED = [
    ("chat", {"logprobs": True}, "logprobs"),
    ("chat", {"logprobs": True, "top_logprobs": 3}, "logprobs"),
    ("chat", {"top_logprobs": 3}, "top_logprobs"),
    ("chat", {"tools": [TOOL]}, "tools"),
    ("chat", {"tools": [TOOL], "tool_choice": "auto"}, "tools"),
    ("chat", {"tool_choice": "required"}, "tool_choice"),
    ("chat", {"tool_choice": {"type": "function", "function": {"name": "get_weather"}}}, "tool_choice"),
    ("chat", {"functions": [TOOL["function"]]}, "functions"),
    ("chat", {"function_call": {"name": "get_weather"}}, "function_call"),
    (
        "chat",
        {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "x", "strict": True, "schema": {}},
            }
        },
        "response_format",
    ),
    ("chat", {"response_format": {"type": "json_object"}}, "response_format"),
    ("chat", {"logit_bias": {"5": 100}}, "logit_bias"),
    ("chat", {"reasoning_effort": "high"}, "reasoning_effort"),
    ("chat", {"modalities": ["text", "audio"]}, "modalities"),
    ("chat", {"prediction": {"type": "content", "content": "x"}}, "prediction"),
    ("chat", {"echo": True}, "echo"),
    (
        "chat",
        {"messages": [{"role": "assistant", "content": "", "tool_calls": [{"id": "1", "type": "function"}]}]},
        "messages",
    ),
    ("chat", {"stream_options": {"include_usage": True}}, "stream_options"),
    ("chat", {"top_k": 1}, "top_k"),
    ("chat", {"repetition_penalty": 1.3}, "repetition_penalty"),
    ("chat", {"min_tokens": 5}, "min_tokens"),
    ("chat", {"guided_json": {"type": "object"}}, "guided_json"),
    ("completions", {"logprobs": 0}, "logprobs"),
    ("completions", {"logprobs": 5}, "logprobs"),
    ("completions", {"suffix": "end"}, "suffix"),
    ("completions", {"best_of": 3}, "best_of"),
    ("completions", {"ignore_eos": True}, "ignore_eos"),
]


def _post(tiny_server: str, kind: str, extra: dict[str, Any]) -> httpx.Response:
    body = {**(CHAT_BASE if kind == "chat" else TEXT_BASE), **extra}
    path = "/v1/chat/completions" if kind == "chat" else "/v1/completions"
    return httpx.post(
        tiny_server + path, json=body, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=60
    )


@pytest.mark.parametrize(("kind", "extra", "param"), UNSUPPORTED, ids=[f"{k}-{p}" for k, _, p in UNSUPPORTED])
def test_a_field_the_server_cannot_honour_is_a_400_saying_unsupported(
    tiny_server: str, kind: str, extra: dict[str, Any], param: str
) -> None:
    error = assert_openai_error(_post(tiny_server, kind, extra), 400, param)
    assert error["code"] in {"unsupported_parameter", "unsupported_value", "invalid_value"}
    assert "supported" in error["message"] or "only allowed" in error["message"]


@pytest.mark.parametrize(
    ("kind", "extra"),
    [
        ("chat", {"presence_penalty": 2.5}),
        ("chat", {"frequency_penalty": -3}),
        ("completions", {"presence_penalty": -2.01}),
        ("chat", {"top_logprobs": 21}),
        ("completions", {"logprobs": 6}),
        ("chat", {"logit_bias": {"5": 101}}),
    ],
)
def test_out_of_range_penalties_and_counts_are_refused(
    tiny_server: str, kind: str, extra: dict[str, Any]
) -> None:
    error = assert_openai_error(_post(tiny_server, kind, extra), 422)
    assert error["param"].split(".")[0] == next(iter(extra))


@pytest.mark.parametrize(
    ("kind", "extra"),
    [
        ("chat", {"logprobs": False, "top_logprobs": 0, "tool_choice": "none", "parallel_tool_calls": True}),
        ("chat", {"tool_choice": "auto", "response_format": {"type": "text"}, "logit_bias": {}}),
        ("chat", {"top_k": -1, "min_p": 0, "repetition_penalty": 1.0, "skip_special_tokens": True}),
        ("chat", {"presence_penalty": 0.5, "frequency_penalty": -0.5, "stream_options": None}),
        ("completions", {"echo": False, "best_of": 1, "suffix": None, "logprobs": None}),
    ],
)
def test_values_that_change_nothing_are_accepted(tiny_server: str, kind: str, extra: dict[str, Any]) -> None:
    response = _post(tiny_server, kind, extra)
    assert response.status_code == 200, response.text


def test_echo_puts_the_prompt_in_front_of_the_completion(client: openai.OpenAI) -> None:
    prompt = "The quick brown fox"
    plain = client.completions.create(model="tiny", prompt=prompt, max_tokens=4, temperature=0)
    echoed = client.completions.create(model="tiny", prompt=prompt, max_tokens=4, temperature=0, echo=True)
    assert echoed.choices[0].text == prompt + plain.choices[0].text
    assert echoed.usage == plain.usage  # the echoed prompt is not completion tokens
    stream = client.completions.create(
        model="tiny", prompt=prompt, max_tokens=4, temperature=0, echo=True, stream=True
    )
    texts = [chunk.choices[0].text for chunk in stream if chunk.choices]
    assert texts[0] == prompt and "".join(texts) == echoed.choices[0].text


def test_penalties_change_a_greedy_answer_as_openai_defines_them(client: openai.OpenAI) -> None:
    """Greedy decoding of the random tiny model repeats tokens; a frequency penalty of 2 (far above its
    logit spread) must change the answer, and the same request again gives the same answer."""
    ask = {"model": "tiny", "prompt": "Hello", "max_tokens": 24, "temperature": 0}
    plain = client.completions.create(**ask).choices[0].text
    penalised = client.completions.create(**ask, frequency_penalty=2.0).choices[0].text
    assert penalised != plain
    assert client.completions.create(**ask, frequency_penalty=2.0).choices[0].text == penalised
    assert client.completions.create(**ask, presence_penalty=2.0).choices[0].text != plain


def test_openai_penalties_processor_subtracts_counts_of_generated_tokens() -> None:
    import torch

    from functions.engines.transformers_engine import OpenAIPenalties

    ids = torch.tensor([[7, 7, 1, 2, 2, 2]])  # prompt [7, 7], then 1 once and 2 three times
    scores = torch.zeros(1, 8)
    out = OpenAIPenalties(2, presence=0.5, frequency=0.25)(ids, scores)
    expected = torch.zeros(1, 8)
    expected[0, 1] = -(0.25 + 0.5)
    expected[0, 2] = -(3 * 0.25 + 0.5)
    assert torch.equal(out, expected)  # the prompt's 7 is not penalised

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

"""Bad requests get OpenAI-format errors with the right status, over real HTTP."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.functions.conftest import API_KEY
from tests.functions.helpers import assert_openai_error

AUTH = {"Authorization": f"Bearer {API_KEY}"}
CHAT = "/v1/chat/completions"


def post(
    url: str, path: str, body: object = None, content: bytes | None = None, headers=AUTH
) -> httpx.Response:
    if content is not None:
        return httpx.post(
            url + path, content=content, headers={**headers, "content-type": "application/json"}
        )
    return httpx.post(url + path, json=body, headers=headers)


def test_missing_or_wrong_key_is_401(tiny_server: str) -> None:
    body = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}]}
    error = assert_openai_error(post(tiny_server, CHAT, body, headers={}), 401)
    assert error["type"] == "authentication_error"
    assert_openai_error(post(tiny_server, CHAT, body, headers={"Authorization": "Bearer sk-wrong"}), 401)
    assert_openai_error(httpx.get(tiny_server + "/v1/models"), 401)
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=tiny_server + "/v1", api_key="nope", max_retries=0).models.list()


def test_malformed_json_is_400(tiny_server: str) -> None:
    error = assert_openai_error(post(tiny_server, CHAT, content=b'{"model": "tiny", "messages": ['), 400)
    assert error["code"] == "invalid_json"
    assert_openai_error(post(tiny_server, CHAT, content=b"[1, 2]"), 400)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "tiny", "messages": "hello"}, "messages"),
        ({"model": "tiny", "messages": []}, "messages"),
        ({"model": 7, "messages": [{"role": "user", "content": "hi"}]}, "model"),
        ({"model": "tiny", "messages": [{"role": "user", "content": 5}]}, "messages.0.content.str"),
        ({"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": -1}, "max_tokens"),
        (
            {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": "ten"},
            "max_tokens",
        ),
        (
            {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10**12},
            "max_tokens",
        ),
        ({"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "temperature": 9}, "temperature"),
        ({"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "stream": "yes"}, "stream"),
        ({"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "n": 2}, "n"),
    ],
)
def test_schema_violations_are_422_naming_the_field(tiny_server: str, body: dict, param: str) -> None:
    error = assert_openai_error(post(tiny_server, CHAT, body), 422, param=param)
    assert error["type"] == "invalid_request_error"


def test_max_tokens_beyond_the_context_is_400(tiny_server: str) -> None:
    body = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 100_000}
    error = assert_openai_error(post(tiny_server, CHAT, body), 400, param="max_tokens")
    assert "maximum context length is 2048" in error["message"]
    with pytest.raises(openai.BadRequestError):
        openai.OpenAI(base_url=tiny_server + "/v1", api_key=API_KEY, max_retries=0).completions.create(
            model="tiny", prompt="hi", max_tokens=50_000
        )


def test_unknown_model_is_404(tiny_server: str) -> None:
    body = {"model": "gpt-9", "messages": [{"role": "user", "content": "hi"}]}
    error = assert_openai_error(post(tiny_server, CHAT, body), 404, param="model")
    assert "gpt-9" in error["message"]


def test_oversize_body_is_413_declared_or_streamed(tiny_server: str) -> None:
    big = {"model": "tiny", "messages": [{"role": "user", "content": "x" * 70_000}]}
    assert_openai_error(post(tiny_server, CHAT, big), 413)

    def chunks():
        yield b'{"model": "tiny", "messages": [{"role": "user", "content": "'
        for _ in range(80):
            yield b"y" * 1024
        yield b'"}]}'

    response = httpx.post(tiny_server + CHAT, content=chunks(), headers=AUTH)  # chunked: no content-length
    assert_openai_error(response, 413)


def test_unknown_route_is_404_in_openai_format(tiny_server: str) -> None:
    assert_openai_error(httpx.get(tiny_server + "/v1/embeddings", headers=AUTH), 404)


def test_healthz_is_open_without_a_key(tiny_server: str) -> None:
    assert httpx.get(tiny_server + "/healthz").json() == {"status": "ok"}

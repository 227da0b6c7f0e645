"""Hostile requests (issue 13) over real HTTP: each is a 4xx in OpenAI's format, never a 5xx, never an
engine failure counted by the circuit breaker, and the keep-alive connection survives."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest

from functions.api.router import create_app
from functions.engines import Prompt, make_engine
from functions.settings import ServeSettings
from tests.functions.conftest import API_KEY
from tests.functions.engines import ControlledEngine
from tests.functions.helpers import assert_openai_error, running, wait_ready

AUTH = {"Authorization": f"Bearer {API_KEY}"}
CHAT, COMPLETIONS = "/v1/chat/completions", "/v1/completions"
HI = [{"role": "user", "content": "hi"}]


def breaker_state(url: str) -> float:
    text = httpx.get(url + "/metrics", headers=AUTH).text
    line = next(line for line in text.splitlines() if line.startswith("llmfn_breaker_state "))
    return float(line.split()[1])


@pytest.mark.parametrize("seed", [2**64, -(2**63) - 1, 10**30, "7", True, 1.5])
def test_a_seed_the_engine_cannot_take_is_422_naming_it(tiny_server: str, seed: object) -> None:
    body = {"model": "tiny", "messages": HI, "max_tokens": 1, "seed": seed}
    assert_openai_error(httpx.post(tiny_server + CHAT, json=body, headers=AUTH), 422, param="seed")


def test_bad_seeds_never_open_the_breaker(tiny_server: str) -> None:
    """The repro: five of them used to open the breaker and stop all serving for 30 s."""
    with httpx.Client(base_url=tiny_server, headers=AUTH, timeout=30) as client:
        for _ in range(8):
            bad = {"model": "tiny", "messages": HI, "seed": 18446744073709551616}
            assert client.post(CHAT, json=bad).status_code == 422
        for seed in (2**64 - 1, -(2**63), 0):  # torch.manual_seed's documented bounds are served
            good = client.post(CHAT, json={"model": "tiny", "messages": HI, "max_tokens": 2, "seed": seed})
            assert good.status_code == 200, good.text
    assert breaker_state(tiny_server) == 0.0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_tokens", "5"),
        ("max_tokens", True),
        ("max_tokens", 5.0),
        ("max_completion_tokens", "5"),
        ("n", True),
        ("temperature", "0.5"),
        ("temperature", False),
        ("top_p", "1"),
        ("stream", 1),
        ("stream", "true"),
    ],
)
def test_strict_types_where_openai_is_strict(tiny_server: str, field: str, value: object) -> None:
    body = {"model": "tiny", "messages": HI, field: value}
    assert_openai_error(httpx.post(tiny_server + CHAT, json=body, headers=AUTH), 422, param=field)


def test_an_integer_temperature_is_a_number(tiny_server: str) -> None:
    body = {"model": "tiny", "messages": HI, "max_tokens": 1, "temperature": 1}
    assert httpx.post(tiny_server + CHAT, json=body, headers=AUTH, timeout=30).status_code == 200


def _raw(client: httpx.Client, path: str, content: bytes) -> httpx.Response:
    return client.post(path, content=content, headers={"content-type": "application/json"})


def test_lone_surrogates_and_deep_nesting_are_400_and_the_connection_survives(tiny_server: str) -> None:
    ports: set[int] = set()

    with httpx.Client(base_url=tiny_server, headers=AUTH, timeout=30) as client:
        cases = [
            (
                CHAT,
                b'{"model": "tiny", "messages": [{"role": "user", "content": "\\ud800"}]}',
                "messages.0.content",
            ),
            (COMPLETIONS, b'{"model": "tiny", "prompt": "a\\udfffb"}', "prompt"),
            (COMPLETIONS, b'{"model": "tiny", "prompt": ["\\uDBFF"]}', "prompt.0"),
            (
                CHAT,
                b'{"model": "tiny", "messages": [{"role": "user", "content": "'
                + b"x" * 10
                + b'"}], "\\ud800": 1}',
                None,
            ),
            (CHAT, b"[" * 5000 + b"]" * 5000, None),
            (CHAT, b'{"a": ' + b"[" * 30_000 + b"]" * 30_000 + b"}", None),
            (
                CHAT,
                b'{"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "temperature": NaN}',
                None,
            ),
            (
                CHAT,
                b'{"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "top_p": Infinity}',
                None,
            ),
        ]
        for path, content, param in cases:
            response = _raw(client, path, content)
            error = assert_openai_error(response, 400, param=param)
            assert error["code"] == "invalid_json", error
            stream = response.extensions["network_stream"]
            ports.add(stream.get_extra_info("client_addr")[1])
        ok = client.post(CHAT, json={"model": "tiny", "messages": HI, "max_tokens": 1})
        assert ok.status_code == 200, ok.text
        ports.add(ok.extensions["network_stream"].get_extra_info("client_addr")[1])
    assert len(ports) == 1, "the server closed the keep-alive connection after an error"
    # a properly escaped pair (an emoji) is text like any other
    emoji = b'{"model": "tiny", "prompt": "\\ud83d\\ude00", "max_tokens": 1}'
    assert httpx.post(tiny_server + COMPLETIONS, content=emoji, headers=AUTH, timeout=30).status_code == 200
    assert breaker_state(tiny_server) == 0.0


def test_only_healthz_is_open_with_a_key(tiny_server: str) -> None:
    assert httpx.get(tiny_server + "/healthz").status_code == 200
    for path in ("/metrics", "/readyz", "/v1/models"):
        assert_openai_error(httpx.get(tiny_server + path), 401)
        assert httpx.get(tiny_server + path, headers=AUTH).status_code == 200
    assert_openai_error(httpx.get(tiny_server + "/openapi.json"), 404)  # the schema is not served
    assert_openai_error(httpx.get(tiny_server + "/docs"), 404)


def test_without_a_key_every_route_stays_open_on_loopback(tiny_model_dir: Path) -> None:
    settings = ServeSettings.build(engine="null", model_name="null", access_log=False)
    with running(create_app(settings)) as url:
        wait_ready(url)
        assert httpx.get(url + "/metrics").status_code == 200
        assert httpx.get(url + "/v1/models").status_code == 200


def test_a_prompt_too_long_in_bytes_is_refused_before_tokenising(tiny_model_dir: Path) -> None:
    """The repro ("ab " * 340000 stalled /healthz) without tokenising it: the byte limit comes first."""
    settings = ServeSettings.build(
        model=tiny_model_dir, model_name="tiny", preload_workers=2, access_log=False
    )
    engine = CountingEngine(make_engine(settings))
    with running(create_app(settings, engine=engine)) as url:
        wait_ready(url)
        huge = "ab " * 340_000
        for path, body in (
            (CHAT, {"messages": [{"role": "user", "content": huge}]}),
            (COMPLETIONS, {"prompt": huge}),
        ):
            response = httpx.post(url + path, json={"model": "tiny", **body}, timeout=30)
            error = assert_openai_error(response, 400)
            assert error["code"] == "context_length_exceeded"
            assert "2048 tokens" in error["message"]
        assert engine.rendered == 0
        fits = httpx.post(url + COMPLETIONS, json={"model": "tiny", "prompt": "ab " * 100, "max_tokens": 1})
        assert fits.status_code == 200 and engine.rendered == 1


def test_tokenising_runs_off_the_event_loop(tiny_model_dir: Path) -> None:
    settings = ServeSettings.build(
        model=tiny_model_dir, model_name="tiny", preload_workers=2, access_log=False
    )
    engine = CountingEngine(make_engine(settings))
    with running(create_app(settings, engine=engine)) as url:
        wait_ready(url)
        engine.render_gate.clear()
        result: list[httpx.Response] = []
        sender = threading.Thread(
            target=lambda: result.append(
                httpx.post(
                    url + COMPLETIONS, json={"model": "tiny", "prompt": "hi", "max_tokens": 1}, timeout=30
                )
            )
        )
        sender.start()
        deadline = time.monotonic() + 10
        while not engine.rendering.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert engine.rendering.is_set()
        # the tokeniser is blocked right now; the loop still answers
        assert httpx.get(url + "/healthz", timeout=5).status_code == 200
        engine.render_gate.set()
        sender.join(30)
        assert result and result[0].status_code == 200


def test_a_prompt_the_tokeniser_refuses_is_400_not_an_engine_failure(tiny_model_dir: Path) -> None:
    settings = ServeSettings.build(
        model=tiny_model_dir,
        model_name="tiny",
        preload_workers=2,
        access_log=False,
        breaker_failure_threshold=1,
    )
    engine = CountingEngine(make_engine(settings))
    engine.render_error = True
    with running(create_app(settings, engine=engine)) as url:
        wait_ready(url)
        for _ in range(3):
            response = httpx.post(url + CHAT, json={"model": "tiny", "messages": HI}, timeout=30)
            assert assert_openai_error(response, 400)["code"] == "invalid_prompt"
        engine.render_error = False
        ok = httpx.post(url + CHAT, json={"model": "tiny", "messages": HI, "max_tokens": 1}, timeout=30)
        assert ok.status_code == 200, ok.text  # the breaker (threshold 1) never opened


class CountingEngine(ControlledEngine):
    """Counts renders; ``render_gate`` (when cleared) holds each render; ``render_error`` makes it raise."""

    def __init__(self, inner: object) -> None:
        super().__init__(inner)  # type: ignore[arg-type]
        self.rendered = 0
        self.render_gate = threading.Event()
        self.render_gate.set()
        self.rendering = threading.Event()
        self.render_error = False

    def _hold(self) -> None:
        self.rendered += 1
        self.rendering.set()
        self.render_gate.wait(30)
        if self.render_error:
            raise RuntimeError("tokenizer refused the text (injected)")

    def render_chat(self, messages: list[dict[str, str]]) -> Prompt:
        self._hold()
        return super().render_chat(messages)

    def render_text(self, text: str) -> Prompt:
        self._hold()
        return super().render_text(text)


def test_an_empty_prompt_is_400_not_an_engine_failure(tiny_server: str) -> None:
    """Found by the fuzz tests: an empty completion prompt reached the model and failed its forward pass."""
    for _ in range(6):
        response = httpx.post(tiny_server + COMPLETIONS, json={"model": "tiny", "prompt": ""}, headers=AUTH)
        assert assert_openai_error(response, 400, param="prompt")["code"] == "invalid_prompt"
    assert breaker_state(tiny_server) == 0.0


@pytest.mark.parametrize("temperature", [1e-308, 5e-324, 1e-6])
def test_a_vanishing_temperature_decodes_greedily(tiny_server: str, temperature: float) -> None:
    """Found by bench/fuzz.py: logits / 1e-308 overflowed to inf and sampling failed (a 500)."""
    body = {"model": "tiny", "prompt": "hi", "max_tokens": 3, "temperature": temperature}
    response = httpx.post(tiny_server + COMPLETIONS, json=body, headers=AUTH, timeout=30)
    assert response.status_code == 200, response.text
    greedy = httpx.post(tiny_server + COMPLETIONS, json={**body, "temperature": 0}, headers=AUTH, timeout=30)
    assert response.json()["choices"][0]["text"] == greedy.json()["choices"][0]["text"]

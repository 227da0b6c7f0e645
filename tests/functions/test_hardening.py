"""Hostile requests (issue 13) over real HTTP: each is a 4xx in OpenAI's format, never a 5xx, never an
engine failure counted by the circuit breaker, and the keep-alive connection survives."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import os
import re
import socket
import subprocess
import sys
import threading
import time
import typing
from pathlib import Path

import httpx
import pytest
from pydantic import BaseModel, SecretStr

from functions.api.router import create_app
from functions.cloud.connect import CloudTarget
from functions.cloud.tencent import connector as tencent_connector
from functions.engines import Prompt, make_engine
from functions.errors import APIError
from functions.guards.auth import check_bearer
from functions.scaler.settings import ScalerSettings
from functions.settings import ServeSettings, SettingsError
from llmfn.local.config import DevConfig
from llmfn.local.worker import free_port
from llmfn.release.gates import SmokeCheck
from tests.functions.conftest import API_KEY
from tests.functions.engines import ControlledEngine
from tests.functions.helpers import assert_openai_error, running, spawned, wait_ready

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


# ---- issue 22: keys that are no key, secrets, header bounds, routes -------------------------------------
NO_KEYS = [
    "",
    " ",
    "   ",
    "\t",
    "\n",
    "sk-Zq9\n",
    "sk\nZq9",
    "sk-Zq9\r\nx-injected: 1",
    " sk-Zq9",
    "sk-Zq9 ",
    "sk Zq9",
    "ключZq9",
]
"""An empty or blank key, or one with a newline, a space or a character a client cannot send, is no key."""


@pytest.mark.parametrize("key", NO_KEYS)
def test_a_key_that_is_no_key_is_refused_where_it_is_read(key: str) -> None:
    readers = {
        "LLMFN_API_KEY (entry points, python -m functions.serve)": lambda: ServeSettings.from_env(
            {"LLMFN_API_KEY": key, "LLMFN_ENGINE": "null"}
        ),
        "serve settings": lambda: ServeSettings.build(engine="null", api_key=key),
        "serve settings, public host": lambda: ServeSettings.build(
            engine="null", host="0.0.0.0", api_key=key
        ),
        "llmfn dev": lambda: DevConfig(model_dir=Path("."), engine="null", api_key=key),
    }
    for where, read in readers.items():
        with pytest.raises(SettingsError) as caught:
            read()
        message = str(caught.value)
        assert message.startswith(("invalid settings: api_key", "api_key")), (where, message)
        assert "visible ASCII" in message, (where, message)
        assert "Zq9" not in message, (where, message)  # the key is never echoed


def test_an_empty_bearer_token_never_passes() -> None:
    """The second line behind the settings: ``Bearer`` with nothing after it matches no key, not even an
    empty one (the repro: ``--api-key ""`` answered ``Authorization: Bearer`` with 200)."""
    for header in ("Bearer", "Bearer ", "Bearer    ", "Bearer \t", "bearer"):
        for key in (b"", b"sk-1"):
            with pytest.raises(APIError) as caught:
                check_bearer({"authorization": header}, key)
            assert caught.value.status == 401
    check_bearer({"authorization": "Bearer sk-1"}, b"sk-1")
    check_bearer({"authorization": "bearer sk-1 "}, b"sk-1")  # RFC 6750: the scheme is case-insensitive


@pytest.mark.parametrize("args", [["--api-key", ""], ["--api-key", "a\nb"]])
def test_llmfn_serve_refuses_a_key_that_is_no_key(args: list[str]) -> None:
    done = run_cli("serve", "--engine", "null", "--port", str(free_port()), *args)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: ") and "api_key" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("command", [["serve", "--engine", "null"], ["dev", "--engine", "null"]])
def test_an_empty_llmfn_api_key_variable_is_refused_not_served_open(command: list[str]) -> None:
    """``LLMFN_API_KEY=$UNSET_VARIABLE``: click drops an empty variable, which served the model open."""
    done = run_cli(*command, "--port", str(free_port()), env={"LLMFN_API_KEY": ""})
    assert done.returncode == 2, done.stderr
    assert "empty" in done.stderr and "Traceback" not in done.stderr


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m llmfn *args``; a command that starts serving instead of refusing times out."""
    environ = {k: v for k, v in os.environ.items() if k not in ("LLMFN_API_KEY", "LLMFN_PUBLIC")}
    return subprocess.run(
        [sys.executable, "-m", "llmfn", *args],
        cwd=Path(__file__).resolve().parents[2],
        env={**environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=90,
    )


SECRET_NAME = re.compile(r"key|secret|token|password|credential", re.IGNORECASE)
NOT_SECRETS = {
    "state_key": "the S3 / COS object key (a path) of the scaler's state",
    "null_completion_tokens": "a token count",
    "max_tokens_cap": "a token count",
    "default_max_tokens_short": "a token count",
    "default_max_tokens_long": "a token count",
    "prompt_bytes_per_token": "a ratio, bytes per token",
}
"""Fields whose names look like a secret's and that are not secrets, each with what it is."""
SETTINGS_MODULES = (
    "functions.settings",
    "functions.scaler.settings",
    "functions.cloud.connect",
    "functions.cloud.tencent.control",
    "functions.cloud.tencent.metrics",
    "functions.cloud.aws.control",
    "functions.cloud.aws.managed_instances",
    "functions.cloud.aws.metrics",
    "llmfn.local.config",
    "llmfn.release.gates",
    "llmfn.release.promotion",
    "infra.config",
)


def settings_classes() -> list[type]:
    """Every pydantic model and dataclass defined in the settings modules."""
    classes = []
    for name in SETTINGS_MODULES:
        module = importlib.import_module(name)
        for value in vars(module).values():
            if not isinstance(value, type) or value.__module__ != name:
                continue
            if (issubclass(value, BaseModel) and value is not BaseModel) or dataclasses.is_dataclass(value):
                classes.append(value)
    return classes


def is_secret_type(annotation: object) -> bool:
    return annotation is SecretStr or any(is_secret_type(arg) for arg in typing.get_args(annotation))


def test_every_field_named_like_a_secret_is_a_secret_type() -> None:
    classes = settings_classes()
    assert {c.__name__ for c in classes} >= {"ServeSettings", "ScalerSettings", "DevConfig", "CloudTarget"}
    offenders, seen = [], 0
    for cls in classes:
        hints = typing.get_type_hints(cls, include_extras=True)
        names = cls.model_fields if issubclass(cls, BaseModel) else [f.name for f in dataclasses.fields(cls)]
        for name in names:
            if not SECRET_NAME.search(name) or name in NOT_SECRETS:
                continue
            seen += 1
            if not is_secret_type(hints[name]):
                offenders.append(f"{cls.__module__}.{cls.__name__}.{name}: {hints[name]}")
    assert offenders == [], offenders
    assert seen >= 6  # api_key (x3), secret_id, secret_key, session_token (x2)


def test_no_secret_shows_in_a_repr_or_str_of_the_settings() -> None:
    """The repro: printing ``ScalerSettings`` (a log line, a traceback's locals) showed the Tencent key."""
    secret = "TENCENT-SECRET-KEY-VALUE"
    target = CloudTarget("tencent", "fn", "live", "ap-guangzhou", secret_id="AKID-ID", secret_key=secret,
                         session_token="SESSION-TOKEN")  # fmt: skip
    scaler = ScalerSettings(target=target, state_bucket="bucket-1250000000")
    serve = ServeSettings.build(engine="null", api_key="sk-SERVE-KEY")
    dev = DevConfig(model_dir=Path("."), engine="null", api_key="sk-DEV-KEY")
    smoke = SmokeCheck(endpoint_url="http://x", api_key="sk-SMOKE-KEY")
    endpoint = tencent_connector.endpoint(target)
    for shown in (target, scaler, serve, dev, smoke, endpoint):
        for text in (repr(shown), str(shown)):
            for value in (secret, "AKID-ID", "SESSION-TOKEN", "sk-SERVE-KEY", "sk-DEV-KEY", "sk-SMOKE-KEY"):
                assert value not in text, text
    assert target.secret_key is not None and target.secret_key.get_secret_value() == secret  # still usable
    assert (
        dict(ScalerSettings.from_env(_scaler_env(secret)).target.__dict__)["secret_key"].get_secret_value()
        == secret
    )


def _scaler_env(secret: str) -> dict[str, str]:
    return {
        "LLMFN_CLOUD": "tencent",
        "LLMFN_FUNCTION": "fn",
        "LLMFN_ALIAS": "live",
        "LLMFN_REGION": "ap-guangzhou",
        "LLMFN_STATE_BUCKET": "bucket-1250000000",
        "TENCENTCLOUD_SECRETID": "AKID-ID",
        "TENCENTCLOUD_SECRETKEY": secret,
    }


def test_serve_refuses_an_oversized_header_before_reading_it(tiny_model_dir: Path) -> None:
    """The repro: a 200 MB header was read in full (45 s, +376 MB) before the 401. The parser now refuses
    the head past 16 KiB: the server answers 400 and closes while the client is still sending."""
    port = free_port()
    args = ["--engine", "null", "--port", str(port), "--log-level", "error", "--no-access-log"]
    with spawned("functions.serve", args, {"LLMFN_API_KEY": API_KEY}, port) as url:
        sent, answer = 0, b""
        with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
            conn.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\nx-big: ")
            chunk = b"a" * 65536
            try:
                while sent < 64 * 1024 * 1024:
                    conn.sendall(chunk)
                    sent += len(chunk)
            except OSError:  # the server closed the connection: it stopped reading
                pass
            with contextlib.suppress(OSError):
                answer = conn.recv(65536)
        assert sent < 64 * 1024 * 1024, "the server read 64 MiB of one header"
        assert answer.startswith(b"HTTP/1.1 400") or answer == b"", answer[:200]
        assert httpx.get(url + "/healthz").status_code == 200


def test_serve_answers_many_header_fields_with_431(tiny_server: str) -> None:
    many = [("x-h", "1")] * 101
    response = httpx.get(tiny_server + "/v1/models", headers=[*AUTH.items(), *many])
    assert assert_openai_error(response, 431)["code"] == "request_header_fields_too_large"
    assert httpx.get(tiny_server + "/v1/models", headers=[*AUTH.items(), *many[:90]]).status_code == 200


def test_a_trailing_slash_is_a_404_not_a_redirect_to_the_clients_host(tiny_server: str) -> None:
    """The repro: ``POST /v1/chat/completions/`` answered 307 to ``http://<Host header>/...`` before the key
    check."""
    for method, path in (
        ("POST", CHAT + "/"),
        ("POST", COMPLETIONS + "/"),
        ("GET", "/v1/models/"),
        ("GET", "/healthz/"),
    ):
        response = httpx.request(method, tiny_server + path, headers={"Host": "evil.example"}, json={})
        assert_openai_error(response, 404)
        assert "location" not in response.headers


def test_get_routes_answer_head(tiny_server: str) -> None:
    """RFC 9110 section 9.1: general-purpose servers support GET and HEAD (the gateway did, serve 405)."""
    for path in ("/healthz", "/v1/models", "/readyz", "/metrics"):
        response = httpx.head(tiny_server + path, headers=AUTH)
        assert response.status_code == 200 and response.content == b"", (path, response.status_code)
    assert httpx.head(tiny_server + "/v1/models").status_code == 401
    assert httpx.head(tiny_server + CHAT, headers=AUTH).status_code == 405

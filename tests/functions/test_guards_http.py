"""Guards over real HTTP: breaker storm and one-probe recovery, 429 + Retry-After, readiness."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from functions.api.router import create_app
from functions.engines import make_engine
from functions.settings import ServeSettings
from tests.functions.engines import ControlledEngine
from tests.functions.helpers import assert_openai_error, running, wait_ready

CHAT_BODY = {
    "model": "tiny",
    "messages": [{"role": "user", "content": "hi"}],
    "max_tokens": 3,
    "temperature": 0,
}


def tiny_settings(model_dir: Path, **overrides: object) -> ServeSettings:
    values = {"model": model_dir, "model_name": "tiny", "preload_workers": 2, "access_log": False}
    return ServeSettings.build(**{**values, **overrides})


def chat(url: str, body: dict | None = None) -> httpx.Response:
    return httpx.post(url + "/v1/chat/completions", json=body or CHAT_BODY, timeout=30)


def test_breaker_opens_on_failure_storm_and_recovers_with_exactly_one_probe(tiny_model_dir: Path) -> None:
    settings = tiny_settings(
        tiny_model_dir, breaker_failure_threshold=3, breaker_recovery_s=0.5, max_concurrency=4
    )
    engine = ControlledEngine(make_engine(settings))
    app = create_app(settings, engine=engine)
    with running(app) as url:
        wait_ready(url)
        engine.failing = True
        for _ in range(3):
            error = assert_openai_error(chat(url), 500)
            assert error["code"] == "engine_error"
        opened = chat(url)
        assert_openai_error(opened, 503)
        assert int(opened.headers["Retry-After"]) >= 1
        assert engine.calls == 3  # the open breaker kept the engine out of it
        assert "llmfn_breaker_state 2.0" in httpx.get(url + "/metrics").text

        engine.failing = False
        engine.generate_gate.clear()  # the probe will hang until we let it go
        time.sleep(0.6)
        with ThreadPoolExecutor(6) as pool:
            probe = pool.submit(chat, url)
            deadline = time.monotonic() + 10
            while engine.calls < 4 and time.monotonic() < deadline:
                time.sleep(0.01)
            others = [pool.submit(chat, url) for _ in range(5)]
            refused = [f.result() for f in others]
            engine.generate_gate.set()
            assert probe.result().status_code == 200
        assert all(r.status_code == 503 for r in refused)
        assert engine.calls == 4  # exactly one probe reached the engine while half-open
        assert "llmfn_breaker_state 0.0" in httpx.get(url + "/metrics").text
        assert all(chat(url).status_code == 200 for _ in range(3))


def test_failed_probe_reopens_the_breaker(tiny_model_dir: Path) -> None:
    settings = tiny_settings(tiny_model_dir, breaker_failure_threshold=1, breaker_recovery_s=0.3)
    engine = ControlledEngine(make_engine(settings))
    with running(create_app(settings, engine=engine)) as url:
        wait_ready(url)
        engine.failing = True
        assert_openai_error(chat(url), 500)
        assert_openai_error(chat(url), 503)
        time.sleep(0.35)
        assert_openai_error(chat(url), 500)  # the probe, failing
        assert_openai_error(chat(url), 503)  # open again
        assert engine.calls == 2


def test_token_bucket_answers_429_with_retry_after(tiny_model_dir: Path) -> None:
    settings = tiny_settings(tiny_model_dir, rate_per_s=0.2, burst=2)
    with running(create_app(settings)) as url:
        wait_ready(url)
        assert chat(url).status_code == 200
        assert chat(url).status_code == 200
        limited = chat(url)
        error = assert_openai_error(limited, 429)
        assert error["type"] == "rate_limit_error"
        retry_after = int(limited.headers["Retry-After"])
        assert 1 <= retry_after <= 5  # one token refills in 5 s at 0.2 req/s
        metrics = httpx.get(url + "/metrics").text
        assert 'llmfn_rejections_total{reason="rate_limited"} 1.0' in metrics


def test_full_queue_answers_429(tiny_model_dir: Path) -> None:
    settings = tiny_settings(tiny_model_dir, max_concurrency=1, max_queue=0)
    engine = ControlledEngine(make_engine(settings))
    with running(create_app(settings, engine=engine)) as url:
        wait_ready(url)
        engine.generate_gate.clear()
        with ThreadPoolExecutor(2) as pool:
            busy = pool.submit(chat, url)
            while engine.calls < 1:
                time.sleep(0.01)
            full = chat(url)
            engine.generate_gate.set()
            assert busy.result().status_code == 200
        error = assert_openai_error(full, 429)
        assert error["code"] == "queue_full"
        assert int(full.headers["Retry-After"]) >= 1


def test_readyz_reports_stages_before_and_200_after_preload(tiny_model_dir: Path) -> None:
    settings = tiny_settings(tiny_model_dir)
    engine = ControlledEngine(make_engine(settings))
    engine.load_gate.clear()
    with running(create_app(settings, engine=engine)) as url:
        assert httpx.get(url + "/healthz").status_code == 200  # live while loading
        before = httpx.get(url + "/readyz")
        assert before.status_code == 503
        assert before.json()["ready"] is False
        assert before.json()["stage"] == "starting"
        assert before.json()["progress"] == 0.0
        assert before.headers["Retry-After"]
        early = chat(url)
        assert_openai_error(early, 503)
        assert early.headers["Retry-After"] == "2"
        engine.load_gate.set()
        after = wait_ready(url)
        assert after["ready"] is True and after["progress"] == 1.0
        assert list(after["stages_done_s"]) == ["runtime", "embedding", "blocks", "final", "engine"]
        assert chat(url).status_code == 200


def test_requests_before_ready_wait_a_bounded_time(tiny_model_dir: Path) -> None:
    settings = tiny_settings(tiny_model_dir, ready_wait_s=20)
    engine = ControlledEngine(make_engine(settings))
    engine.load_gate.clear()
    with running(create_app(settings, engine=engine)) as url, ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(chat, url)
        time.sleep(0.2)
        assert not waiting.done()
        engine.load_gate.set()
        assert waiting.result().status_code == 200


def test_preload_failure_is_reported_by_readyz(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    settings = tiny_settings(tmp_path)
    with running(create_app(settings)) as url:
        deadline = time.monotonic() + 20
        while httpx.get(url + "/readyz").json()["error"] is None:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        body = httpx.get(url + "/readyz")
        assert body.status_code == 503
        assert body.json()["stage"] == "failed"
        error = assert_openai_error(chat(url), 503)
        assert "failed" in error["message"]


def test_session_hold_keeps_a_slot_for_the_session(tiny_model_dir: Path) -> None:
    settings = tiny_settings(
        tiny_model_dir, max_concurrency=2, max_queue=0, session_hold_s=30, max_held_sessions=1
    )
    engine = ControlledEngine(make_engine(settings))
    with running(create_app(settings, engine=engine)) as url:
        wait_ready(url)
        session = {"x-llmfn-session": "alice"}
        first = httpx.post(url + "/v1/chat/completions", json=CHAT_BODY, headers=session, timeout=30)
        assert first.status_code == 200
        engine.generate_gate.clear()
        with ThreadPoolExecutor(2) as pool:
            other = pool.submit(chat, url)  # takes the one shared slot
            while engine.calls < 2:
                time.sleep(0.01)
            third = chat(url)  # alice's held slot is not for others
            alice = pool.submit(chat, url, {**CHAT_BODY, "user": "alice"})  # the user field names it too
            while engine.calls < 3:
                time.sleep(0.01)
            engine.generate_gate.set()
            assert other.result().status_code == 200
            assert alice.result().status_code == 200
        assert_openai_error(third, 429)
        assert "llmfn_held_sessions 1.0" in httpx.get(url + "/metrics").text


def test_stream_failing_before_the_first_token_is_a_plain_500(tiny_model_dir: Path) -> None:
    settings = tiny_settings(tiny_model_dir, breaker_failure_threshold=2, breaker_recovery_s=30)
    engine = ControlledEngine(make_engine(settings))
    with running(create_app(settings, engine=engine)) as url:
        wait_ready(url)
        engine.failing = True
        streamed = chat(url, {**CHAT_BODY, "stream": True})
        error = assert_openai_error(streamed, 500)
        assert "injected" in error["message"]
        assert_openai_error(chat(url, {**CHAT_BODY, "stream": True}), 500)
        assert_openai_error(chat(url, {**CHAT_BODY, "stream": True}), 503)  # two failures opened it


def test_client_leaving_mid_stream_cancels_the_generation_and_frees_the_slot(tiny_model_dir: Path) -> None:
    settings = tiny_settings(tiny_model_dir, max_tokens_cap=1900, max_concurrency=1)
    with running(create_app(settings)) as url:
        wait_ready(url)
        body = {"model": "tiny", "prompt": "hello", "max_tokens": 1800, "temperature": 0, "stream": True}
        with httpx.stream("POST", url + "/v1/completions", json=body, timeout=30) as response:
            assert next(response.iter_lines()).startswith("data: ")
        deadline = time.monotonic() + 20
        while "llmfn_in_flight 0.0" not in (metrics := httpx.get(url + "/metrics").text):
            assert time.monotonic() < deadline, "the slot was never released"
            time.sleep(0.05)
        assert 'llmfn_requests_total{route="completions",status="499"} 1.0' in metrics
        generated = next(
            float(line.split()[1])
            for line in metrics.splitlines()
            if line.startswith("llmfn_completion_tokens_total")
        )
        assert generated < 1800  # the engine stopped when the client left
        assert chat(url).status_code == 200  # the only slot is free again

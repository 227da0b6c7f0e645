"""The image's entry command, run outside a container with the null engine: as an SCF image function it
listens and answers over HTTP; under Lambda's runtime API (a stand-in of it) it takes an invocation
through the runtime interface client and posts the answer back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx

from functions.scaler.run import PREWARM_PAYLOAD
from tests.functions.helpers import free_port, spawned, wait_listening, wait_ready
from tests.functions.test_entry_points import http_api_v2_event
from tests.loopback_server import LoopbackServer

ROOT = Path(__file__).resolve().parents[2]
KEY = "image-test-key"
CHAT = {"model": "tiny", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 4}
NULL_ENV = {
    "LLMFN_ENGINE": "null",
    "LLMFN_MODEL_NAME": "tiny",
    "LLMFN_API_KEY": KEY,
    "LLMFN_ACCESS_LOG": "false",
}


def test_scf_mode_listens_and_answers() -> None:
    port = free_port()
    env = {**NULL_ENV, "LLMFN_HOST": "127.0.0.1", "LLMFN_PORT": str(port)}
    env.pop("AWS_LAMBDA_RUNTIME_API", None)
    # the image's ENTRYPOINT + CMD: the Lambda handler argument is ignored outside Lambda
    with spawned("functions.image.entry", ["functions.cloud.aws.entry.handler"], env, port) as url:
        assert httpx.get(url + "/healthz").status_code == 200
        wait_ready(url, api_key=KEY)
        answer = httpx.post(
            url + "/v1/chat/completions", json=CHAT, headers={"Authorization": f"Bearer {KEY}"}
        )
    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"][0]["message"]["content"].startswith("ok")


class RuntimeApiStandIn:
    """Lambda's runtime API (2018-06-01): hands out ``events`` one per ``/next`` poll (request ids
    req-0, req-1, ...), records each answer, then holds further polls until stopped, as Lambda does
    between invocations."""

    def __init__(self, events: list[dict[str, Any]], ready_url: str | None = None) -> None:
        self.events = list(events)
        # "Init phase is complete when extensions have initialized and at least one runtime worker has
        # called /runtime/invocation/next. The function is then ready to process invocations." (AWS docs,
        # Lambda Managed Instances execution environment): each /next is a claim that the environment
        # serves; with ``ready_url`` the stand-in records each /next before the first answer that came
        # while the environment's server was not ready (later polls race the test's teardown).
        self.ready_url = ready_url
        self.polled_before_ready: list[int] = []
        self.answers: dict[str, tuple[str, Any]] = {}
        self.all_answered = threading.Event()
        self._stop = threading.Event()
        self._next = 0
        self._lock = threading.Lock()
        self.server = LoopbackServer(self._handle, ("GET", "POST"))

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        body = request.rfile.read(int(request.headers.get("Content-Length", "0") or 0))
        if request.command == "GET" and request.path == "/2018-06-01/runtime/invocation/next":
            if self.ready_url is not None and not self.answers and not _ready(self.ready_url):
                self.polled_before_ready.append(self._next)
            with self._lock:
                index, self._next = self._next, self._next + 1
            if index >= len(self.events):
                self._stop.wait(60)
                request.close_connection = True
                return
            data = json.dumps(self.events[index]).encode()
            request.send_response(200)
            for name, value in (
                ("Lambda-Runtime-Aws-Request-Id", f"req-{index}"),
                ("Lambda-Runtime-Deadline-Ms", str(int((time.time() + 60) * 1000))),
                (
                    "Lambda-Runtime-Invoked-Function-Arn",
                    "arn:aws:lambda:us-east-1:123456789012:function:llm:live",
                ),
                (
                    "Lambda-Runtime-Trace-Id",
                    "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1",
                ),
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(data))),
            ):
                request.send_header(name, value)
            request.end_headers()
            request.wfile.write(data)
            return
        parts = request.path.split("/")  # /2018-06-01/runtime/invocation/<id>/<response|error> or init/error
        key, kind = (parts[4], parts[5]) if parts[3] == "invocation" else ("init", "error")
        with self._lock:
            self.answers[key] = (kind, json.loads(body or b"null"))
            if len(self.answers) >= len(self.events):
                self.all_answered.set()
        request.send_response(202)
        request.send_header("Content-Length", "0")
        request.end_headers()

    def stop(self) -> None:
        self._stop.set()
        self.server.stop()


def _ready(url: str) -> bool:
    try:
        return (
            httpx.get(url + "/readyz", headers={"Authorization": f"Bearer {KEY}"}, timeout=5).status_code
            == 200
        )
    except httpx.TransportError:
        return False


def _chat_event() -> dict[str, Any]:
    event = http_api_v2_event("POST", "/v1/chat/completions", json.dumps(CHAT))
    event["headers"]["authorization"] = f"Bearer {KEY}"
    return event


def run_entry(runtime: RuntimeApiStandIn, extra_env: dict[str, str]) -> str:
    """Run the image's entry command under ``runtime`` until every event is answered; its stderr."""
    runtime.server.start()
    env = {**os.environ, **NULL_ENV, "AWS_LAMBDA_RUNTIME_API": runtime.server.host_port,
           "AWS_LAMBDA_FUNCTION_NAME": "llm", "AWS_LAMBDA_FUNCTION_VERSION": "3",
           "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "8192", "PYTHONPATH": str(ROOT), **extra_env}  # fmt: skip
    process = subprocess.Popen([sys.executable, "-m", "functions.image.entry"], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)  # fmt: skip
    try:
        answered = runtime.all_answered.wait(180)
        assert answered, f"answers {runtime.answers}; entry exited {process.poll()}: {_stderr(process)}"
    finally:
        runtime.stop()
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)  # the runtime client, its workers and the local server
        process.wait(10)
    return _stderr(process)


def _assert_chat_answer(answer: tuple[str, Any]) -> None:
    kind, response = answer
    assert kind == "response", answer
    assert response["statusCode"] == 200, response
    body = json.loads(response["body"])
    assert body["object"] == "chat.completion" and body["choices"][0]["message"]["content"].startswith("ok")


def test_lambda_mode_answers_through_the_runtime_api() -> None:
    runtime = RuntimeApiStandIn([_chat_event()])
    run_entry(runtime, {})
    _assert_chat_answer(runtime.answers["req-0"])


def test_managed_instances_workers_share_one_inference_server() -> None:
    """AWS_LAMBDA_MAX_CONCURRENCY=2: the client forks two workers; both forward to the one server."""
    port = free_port()
    runtime = RuntimeApiStandIn([_chat_event(), _chat_event(), _chat_event(), PREWARM_PAYLOAD])
    run_entry(runtime, {"AWS_LAMBDA_MAX_CONCURRENCY": "2", "LLMFN_LOCAL_PORT": str(port)})
    for key in ("req-0", "req-1", "req-2"):
        _assert_chat_answer(runtime.answers[key])
    kind, prewarmed = runtime.answers["req-3"]  # the scaler's pre-warm invocation
    assert kind == "response" and prewarmed["llmfn"] == "prewarmed" and prewarmed["ready"] is True


def test_forwarding_workers_load_no_engine() -> None:
    probe = "import sys, functions.image.forward; print(sorted(m for m in sys.modules if m.startswith(('functions.api', 'functions.engines', 'torch', 'vllm'))))"
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stdout + result.stderr


def _stderr(process: subprocess.Popen[bytes]) -> str:
    if process.poll() is None:
        return "(still running)"
    assert process.stderr is not None
    return process.stderr.read().decode()[-2000:]


IMAGE_PACKAGES = (
    "core",
    "functions",
    "preload",
    "scaling",
)  # what the Dockerfile copies (Dockerfile.dockerignore)
_ONLY_THE_IMAGE = """
import importlib.abc, runpy, sys
app = sys.argv.pop(1)
class NotInTheImage(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("llmfn", "layers", "infra", "tests", "bench"):
            raise ModuleNotFoundError(f"{name} is not in the function image")
sys.meta_path.insert(0, NotInTheImage())
sys.path.insert(0, app)
import functions
assert functions.__file__.startswith(app), functions.__file__
runpy.run_module("functions.image.entry", run_name="__main__", alter_sys=True)
"""


def test_the_image_files_alone_serve(tmp_path: Path) -> None:
    """The entry command with only what the image holds (core/ functions/ preload/ scaling/, no llmfn, layers
    or infra importable) starts and answers: the Dockerfile's COPY set is enough to run."""
    import shutil

    app = tmp_path / "var-task"
    for package in IMAGE_PACKAGES:
        shutil.copytree(ROOT / package, app / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    port = free_port()
    env = {**os.environ, **NULL_ENV, "LLMFN_HOST": "127.0.0.1", "LLMFN_PORT": str(port)}
    for name in ("PYTHONPATH", "AWS_LAMBDA_RUNTIME_API"):
        env.pop(name, None)
    process = subprocess.Popen([sys.executable, "-c", _ONLY_THE_IMAGE, str(app), "functions.cloud.aws.entry.handler"],
                               cwd=app, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_listening(url, process, lambda: _stderr(process))
        wait_ready(url, api_key=KEY)
        answer = httpx.post(
            url + "/v1/chat/completions", json=CHAT, headers={"Authorization": f"Bearer {KEY}"}
        )
    finally:
        process.terminate()
        process.wait(10)
    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"][0]["message"]["content"].startswith("ok")


def test_managed_instances_take_no_invocation_before_the_model_is_loaded(tiny_model_dir: Path) -> None:
    """A real preload (the tiny model, transformers engine) takes seconds: the runtime client, and so
    Lambda's first /next, waits for the local server's /readyz; no invocation meets a loading model."""
    port = free_port()
    runtime = RuntimeApiStandIn([_chat_event()], ready_url=f"http://127.0.0.1:{port}")
    env = {"AWS_LAMBDA_MAX_CONCURRENCY": "1", "LLMFN_LOCAL_PORT": str(port), "LLMFN_ENGINE": "transformers",
           "LLMFN_MODEL": str(tiny_model_dir), "LLMFN_PRELOAD_WORKERS": "2"}  # fmt: skip
    run_entry(runtime, env)
    kind, response = runtime.answers["req-0"]
    assert kind == "response" and response["statusCode"] == 200, response  # random weights: any text
    assert json.loads(response["body"])["object"] == "chat.completion"
    assert runtime.polled_before_ready == []


def test_a_model_not_ready_within_the_init_limit_fails_the_init() -> None:
    """The server exits (here: a model directory that does not exist) before it is ready: the entry
    exits with the reason instead of taking invocations it can only answer 503."""
    port = free_port()
    runtime = RuntimeApiStandIn([])
    runtime.server.start()
    env = {**os.environ, **NULL_ENV, "AWS_LAMBDA_RUNTIME_API": runtime.server.host_port, "PYTHONPATH": str(ROOT),
           "AWS_LAMBDA_MAX_CONCURRENCY": "1", "LLMFN_LOCAL_PORT": str(port), "LLMFN_ENGINE": "transformers",
           "LLMFN_MODEL": "/nonexistent/model"}  # fmt: skip
    try:
        done = subprocess.run([sys.executable, "-m", "functions.image.entry"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
    finally:
        runtime.stop()
    assert done.returncode != 0
    assert "before it was ready" in done.stderr, done.stderr[-2000:]
    assert runtime._next == 0  # no /next: Lambda never counts this environment as initialised


def test_the_init_limit_is_130_s_or_the_function_timeout() -> None:
    from functions.image.entry import init_limit_s

    assert init_limit_s({}) == 130.0
    assert init_limit_s({"LLMFN_FUNCTION_TIMEOUT_S": "60"}) == 130.0
    assert init_limit_s({"LLMFN_FUNCTION_TIMEOUT_S": "900"}) == 900.0

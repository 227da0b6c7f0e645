"""The image's entry command, run outside a container with the null engine: as an SCF image function it
listens and answers over HTTP; under Lambda's runtime API (a stand-in of it) it takes an invocation
through the runtime interface client and posts the answer back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx

from tests.functions.helpers import free_port, spawned, wait_ready
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
    with spawned("functions.image.entry", ["functions.entry.aws_lambda.handler"], env, port) as url:
        assert httpx.get(url + "/healthz").status_code == 200
        wait_ready(url)
        answer = httpx.post(
            url + "/v1/chat/completions", json=CHAT, headers={"Authorization": f"Bearer {KEY}"}
        )
    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"][0]["message"]["content"].startswith("ok")


class RuntimeApiStandIn:
    """Lambda's runtime API (2018-06-01) for one invocation: hands out ``event``, records the answer,
    then holds further ``/next`` polls until stopped, as Lambda does between invocations."""

    REQUEST_ID = "8476a536-e9f4-11e8-9739-2dfe598c3fcd"

    def __init__(self, event: dict[str, Any]) -> None:
        self.event = event
        self.answers: list[tuple[str, Any]] = []
        self.answered = threading.Event()
        self._stop = threading.Event()
        self._handed_out = False
        self._lock = threading.Lock()
        self.server = LoopbackServer(self._handle, ("GET", "POST"))

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        body = request.rfile.read(int(request.headers.get("Content-Length", "0") or 0))
        if request.command == "GET" and request.path == "/2018-06-01/runtime/invocation/next":
            with self._lock:
                first, self._handed_out = not self._handed_out, True
            if not first:
                self._stop.wait(30)
                request.close_connection = True
                return
            data = json.dumps(self.event).encode()
            request.send_response(200)
            deadline_ms = int((time.time() + 60) * 1000)
            for name, value in (
                ("Lambda-Runtime-Aws-Request-Id", self.REQUEST_ID),
                ("Lambda-Runtime-Deadline-Ms", str(deadline_ms)),
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
        kind = request.path.rsplit("/", 1)[-1]  # response | error (invocation) or init/error
        self.answers.append(
            (kind if "invocation" in request.path else "init-error", json.loads(body or b"null"))
        )
        request.send_response(202)
        request.send_header("Content-Length", "0")
        request.end_headers()
        self.answered.set()

    def stop(self) -> None:
        self._stop.set()
        self.server.stop()


def test_lambda_mode_answers_through_the_runtime_api() -> None:
    runtime = RuntimeApiStandIn(http_api_v2_event("POST", "/v1/chat/completions", json.dumps(CHAT)))
    runtime.event["headers"]["authorization"] = f"Bearer {KEY}"
    runtime.server.start()
    env = {**os.environ, **NULL_ENV, "AWS_LAMBDA_RUNTIME_API": runtime.server.host_port,
           "AWS_LAMBDA_FUNCTION_NAME": "llm", "AWS_LAMBDA_FUNCTION_VERSION": "3",
           "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "8192", "_HANDLER": "functions.entry.aws_lambda.handler",
           "PYTHONPATH": str(ROOT)}  # fmt: skip
    process = subprocess.Popen([sys.executable, "-m", "functions.image.entry"], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    try:
        answered = runtime.answered.wait(60)
        assert answered, f"no answer posted; entry exited {process.poll()}: {_stderr(process)}"
    finally:
        runtime.stop()
        process.terminate()
        process.wait(10)
    kind, response = runtime.answers[0]
    assert kind == "response", runtime.answers
    assert response["statusCode"] == 200, response
    body = json.loads(response["body"])
    assert body["object"] == "chat.completion" and body["choices"][0]["message"]["content"].startswith("ok")


def _stderr(process: subprocess.Popen[bytes]) -> str:
    if process.poll() is None:
        return "(still running)"
    assert process.stderr is not None
    return process.stderr.read().decode()[-2000:]

"""A Managed Instances worker bounds each forwarded request by the invocation's remaining time: LMI does
not stop a function at its timeout, so a stuck request would hold the worker (functions/image/forward.py)."""

from __future__ import annotations

import json
import select
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any

from mangum import Mangum

from functions.image.forward import ANSWER_MARGIN_S, REQUEST_TIMEOUT_S, forwarding_app, request_budget_s
from tests.functions.test_entry_points import http_api_v2_event
from tests.loopback_server import LoopbackServer

HANG_S = 20.0  # the stuck server answers after this long if nobody hangs up


class StuckServer:
    """Reads a request, then answers nothing until its client hangs up (or :data:`HANG_S`)."""

    def __init__(self) -> None:
        self.hung_up = threading.Event()
        self.server = LoopbackServer(self._handle, ("POST",))

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        request.rfile.read(int(request.headers.get("Content-Length", "0") or 0))
        readable, _, _ = select.select([request.connection], [], [], HANG_S)
        if readable and request.connection.recv(1) == b"":
            self.hung_up.set()  # the worker closed the connection: the request is cancelled upstream
            request.close_connection = True
            return
        body = json.dumps({"late": True}).encode()
        request.send_response(200)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)


class Context:
    """The part of Lambda's context object the worker reads."""

    def __init__(self, remaining_ms: int) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def test_a_stuck_request_is_cut_at_the_invocations_deadline_and_cancelled_upstream() -> None:
    stuck = StuckServer()
    stuck.server.start()
    try:
        handler = Mangum(forwarding_app(f"http://{stuck.server.host_port}"), lifespan="off")
        event = http_api_v2_event("POST", "/v1/chat/completions", json.dumps({"model": "tiny"}))
        answer: dict[str, Any] = handler(event, Context(remaining_ms=2500))
        assert answer["statusCode"] == 504, answer
        assert json.loads(answer["body"])["error"]["code"] == "deadline_exceeded"
        assert stuck.hung_up.wait(HANG_S)  # the server saw its client go
    finally:
        stuck.server.stop()


def test_the_budget_keeps_a_margin_to_answer() -> None:
    assert request_budget_s(Context(10_000)) == 10.0 - ANSWER_MARGIN_S
    assert request_budget_s(Context(0)) == 0.1  # already late: fail fast, never a negative timeout
    assert request_budget_s(None) == REQUEST_TIMEOUT_S  # no Lambda context (a local run)

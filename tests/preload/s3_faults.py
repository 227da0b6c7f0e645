"""A proxy in front of moto's S3 that breaks ranged GETs: the body cut off mid-way, or a 503.

``cut``: the answer's status and headers (its full ``Content-Length``) go out, then half of the body,
then the connection closes: what a reset connection looks like to a client halfway through a range.
``5xx``: 503 ``SlowDown`` before any body. Faults are queued (``inject``) and each hits the next ranged
GET whose start offset is at least ``min_offset`` (so a test can break a range in the middle of a file).
"""

from __future__ import annotations

import http.client
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler
from typing import Literal
from urllib.parse import urlsplit

from tests.loopback_server import LoopbackServer

RangeFault = Literal["cut", "5xx"]
_HOP_BY_HOP = {"transfer-encoding", "connection", "content-length", "keep-alive"}


class S3FaultProxy:
    """Forwards every request to moto; breaks the ranged GETs it was told to (see the module docstring)."""

    def __init__(self, moto_url: str) -> None:
        split = urlsplit(moto_url)
        self._moto = (split.hostname or "127.0.0.1", split.port or 80)
        self._lock = threading.Lock()
        self._faults: deque[tuple[RangeFault, int]] = deque()
        self.broken: list[tuple[RangeFault, str, str]] = []
        """(fault, path, Range header) of every request a fault hit."""
        self.ranges: list[tuple[str, str]] = []
        """(path, Range header) of every ranged GET, in arrival order."""
        self._server = LoopbackServer(self._handle, methods=("GET", "HEAD", "PUT", "POST", "DELETE"))

    def start(self) -> S3FaultProxy:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    @property
    def url(self) -> str:
        return self._server.url

    def inject(self, fault: RangeFault, times: int = 1, *, min_offset: int = 0) -> None:
        """Break the next ``times`` ranged GETs starting at ``min_offset`` or later with ``fault``."""
        with self._lock:
            self._faults.extend([(fault, min_offset)] * times)

    def pending(self) -> int:
        with self._lock:
            return len(self._faults)

    def _take(self, path: str, byte_range: str) -> RangeFault | None:
        start = int(byte_range.removeprefix("bytes=").split("-")[0] or 0)
        with self._lock:
            self.ranges.append((path, byte_range))
            if self._faults and start >= self._faults[0][1]:
                fault = self._faults.popleft()[0]
                self.broken.append((fault, path, byte_range))
                return fault
        return None

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        body = request.rfile.read(int(request.headers.get("Content-Length", "0") or 0))
        byte_range = request.headers.get("Range")
        fault = self._take(request.path, byte_range) if request.command == "GET" and byte_range else None
        if fault == "5xx":
            answer = (
                b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
            )
            request.send_response(503)
            request.send_header("Content-Type", "application/xml")
            request.send_header("Content-Length", str(len(answer)))
            request.end_headers()
            request.wfile.write(answer)
            return
        connection = http.client.HTTPConnection(*self._moto, timeout=30)
        try:
            headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
            connection.request(request.command, request.path, body=body, headers=headers)
            response = connection.getresponse()
            status, answer_headers, answer = response.status, response.getheaders(), response.read()
        finally:
            connection.close()
        request.send_response(status)
        for name, value in answer_headers:
            if name.lower() not in _HOP_BY_HOP:
                request.send_header(name, value)
        request.send_header("Content-Length", str(len(answer)))
        if fault == "cut":
            request.send_header("Connection", "close")
        request.end_headers()
        if request.command == "HEAD":
            return
        if fault == "cut":
            request.wfile.write(answer[: len(answer) // 2])
            request.wfile.flush()
            request.close_connection = True
            return
        request.wfile.write(answer)

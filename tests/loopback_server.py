"""One threaded HTTP server on 127.0.0.1 for the tests' stand-ins (SCF API, AWS proxy, Hub)."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

RequestHandler = Callable[[BaseHTTPRequestHandler], None]

HOP_BY_HOP = frozenset({"transfer-encoding", "connection", "content-length", "keep-alive"})
"""Headers a proxying stand-in never copies from one connection to the other."""


def forward(
    upstream: tuple[str, int], method: str, path: str, headers: Mapping[str, str], body: bytes | None
) -> tuple[int, list[tuple[str, str]], bytes]:
    """One request to ``upstream`` (host, port), e.g. moto behind a stand-in: (status, headers, body)."""
    connection = http.client.HTTPConnection(*upstream, timeout=30)
    try:
        connection.request(method, path, body=body, headers=dict(headers))
        response = connection.getresponse()
        return response.status, response.getheaders(), response.read()
    finally:
        connection.close()


def relay(
    request: BaseHTTPRequestHandler,
    status: int,
    headers: list[tuple[str, str]],
    body: bytes,
    drop: frozenset[str] = HOP_BY_HOP,
) -> None:
    """Answer ``request`` with an upstream's answer, less the ``drop`` headers (lower case); no body on HEAD."""
    request.send_response(status)
    for name, value in headers:
        if name.lower() not in drop:
            request.send_header(name, value)
    request.send_header("Content-Length", str(len(body)))
    request.end_headers()
    if request.command != "HEAD":
        request.wfile.write(body)


class LoopbackServer:
    """Serves every request of ``methods`` with ``handle(request)`` on a free port of 127.0.0.1, from a
    daemon thread, HTTP/1.1 keep-alive with Nagle off (headers and body go out as separate writes)."""

    def __init__(self, handle: RequestHandler, methods: tuple[str, ...] = ("GET", "HEAD", "POST")) -> None:
        def _any(request: BaseHTTPRequestHandler) -> None:
            handle(request)

        def _quiet(request: BaseHTTPRequestHandler, format: str, *args: Any) -> None:
            return None

        attributes: dict[str, Any] = {f"do_{method}": _any for method in methods}
        attributes.update(protocol_version="HTTP/1.1", disable_nagle_algorithm=True, log_message=_quiet)
        handler = type("LoopbackHandler", (BaseHTTPRequestHandler,), attributes)
        self._server: ThreadingHTTPServer | None = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        host, port = self._server.server_address[:2]
        self.host_port = f"{host}:{port}"
        """``host:port`` of the listening socket (kept after ``stop``: a stopped stand-in refuses it)."""
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def start(self) -> LoopbackServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        return f"http://{self.host_port}"

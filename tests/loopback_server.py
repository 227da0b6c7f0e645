"""One threaded HTTP server on 127.0.0.1 for the tests' stand-ins (SCF API, AWS proxy, Hub)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

RequestHandler = Callable[[BaseHTTPRequestHandler], None]


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

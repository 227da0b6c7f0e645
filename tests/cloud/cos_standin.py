"""COS's S3 API as strict as its documentation, in front of moto's S3 (``upstream``) on 127.0.0.1.

Rules, each from COS's PUT Object page (https://cloud.tencent.com/document/product/436/7749) or the
behaviour reported against botocore 1.36+:

- PUT Object lists no conditional request headers (no ``If-Match`` / ``If-None-Match``) and "如果试图添加
  已存在的同名对象，则新上传的对象将覆盖原来的对象": the stand-in drops both headers, so a PUT overwrites;
- ``x-cos-forbid-overwrite: true`` refuses to overwrite an existing object (answered 409; the error
  code below is the stand-in's, the store treats any 409 as a conflict);
- COS does not fully support botocore's default checksums: a ``Content-Encoding: aws-chunked`` body
  (with its trailing checksum) is refused with 400; every request's ``x-amz-checksum-*`` /
  ``x-amz-sdk-checksum-algorithm`` headers are recorded in :attr:`CosStandIn.checksum_headers`.
"""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

from tests.loopback_server import HOP_BY_HOP, LoopbackServer, forward, relay

# send_response writes its own Date and Server: the upstream's would repeat them
_DROPPED = HOP_BY_HOP | {"date", "server"}
_CONDITIONAL_PUT_HEADERS = ("if-match", "if-none-match")


class CosStandIn:
    """Start it, point a COS client's ``endpoint_url`` at :attr:`url`."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.checksum_headers: list[tuple[str, str, str]] = []  # (method, path, header)
        self.dropped_conditions: list[str] = []  # conditional headers a PUT carried (COS ignores them)
        self._server: LoopbackServer | None = None

    def start(self) -> CosStandIn:
        self._server = LoopbackServer(self._handle, ("GET", "PUT", "POST", "DELETE", "HEAD")).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the stand-in first"
        return self._server.url

    def _error(self, request: BaseHTTPRequestHandler, status: int, code: str, message: str) -> None:
        body = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()
        relay(request, status, [("Content-Type", "application/xml")], body, _DROPPED)

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length", "0") or 0)
        body = request.rfile.read(length) if length else b""
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host",)}
        for name in headers:
            if name.lower().startswith("x-amz-checksum-") or name.lower() == "x-amz-sdk-checksum-algorithm":
                self.checksum_headers.append((request.command, request.path, name.lower()))
        if "aws-chunked" in request.headers.get("Content-Encoding", ""):
            self._error(request, 400, "InvalidArgument", "aws-chunked content encoding is not supported")
            return
        if request.command == "PUT":
            for name in [n for n in headers if n.lower() in _CONDITIONAL_PUT_HEADERS]:
                self.dropped_conditions.append(name.lower())
                del headers[name]
            if request.headers.get("x-cos-forbid-overwrite", "").lower() == "true":
                signed = {k: v for k, v in headers.items() if k.lower() in ("authorization", "x-amz-date")}
                status, _, _ = forward(self._upstream, "HEAD", request.path, signed, None)
                if status == 200:
                    self._error(
                        request, 409, "FileAlreadyExists", "x-cos-forbid-overwrite: the object exists"
                    )
                    return
        status, answer_headers, answer = forward(
            self._upstream, request.command, request.path, headers, body or None
        )
        relay(request, status, answer_headers, answer, _DROPPED)

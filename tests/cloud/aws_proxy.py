"""A small HTTP proxy in front of moto's server: fault injection, and the Lambda provisioned-concurrency
configs moto lacks.

- Faults (:class:`tests.cloud.faults.FaultPlan`, keyed by operation name such as ``UpdateAlias``,
  ``RegisterScalableTarget``, ``GetMetricStatistics``, ``PutObject``): ``throttle`` answers 429
  ``TooManyRequestsException``/``ThrottlingException``, ``5xx`` answers 503, ``timeout`` holds the request
  and closes the connection unanswered (nothing is applied), ``lost`` does so after moto applied it.
- Provisioned concurrency: moto implements Application Auto Scaling but not Lambda's provisioned
  concurrency configs. The proxy plays the part AWS plays: a successful ``RegisterScalableTarget`` on
  ``function:<fn>:<qualifier>`` requests MinCapacity instances for that qualifier, which become
  available ``warmup_s`` later; ``GetProvisionedConcurrencyConfig`` / ``DeleteProvisionedConcurrencyConfig``
  are answered from that record (READY / IN_PROGRESS, 404 when absent).
- Every successful alias change is recorded with the ready capacity of each routed version.
- Strict: each Application Auto Scaling, CloudWatch and Lambda request is checked against botocore's
  service model and the documented cross-field rules (:mod:`tests.cloud.aws_rules`) before moto sees
  it, and refused with AWS's error code; :attr:`AwsProxy.refused` lists what was refused. A
  ``RegisterScalableTarget`` is also checked against the target moto already holds (a new one needs
  both capacities, an update keeps what it leaves out: :func:`tests.cloud.aws_rules.register_against_existing`).
- Lambda Managed Instances (GPU functions): capacity providers, function scaling configs and the GPU
  fields of CreateFunction / UpdateFunctionConfiguration, checked against botocore's model and the
  documented rules (:class:`tests.cloud.aws_gpu_standin.ManagedInstancesStandIn`).
"""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.cloud import aws_gpu_standin, aws_rules
from tests.cloud.aws_gpu_standin import ManagedInstancesStandIn
from tests.cloud.faults import FaultPlan
from tests.cloud.warm_capacity import WarmCapacity
from tests.loopback_server import HOP_BY_HOP, LoopbackServer, forward, relay

_LAMBDA_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    (
        "GET",
        re.compile(r"^/2019-09-30/functions/([^/]+)/provisioned-concurrency$"),
        "GetProvisionedConcurrencyConfig",
    ),
    (
        "PUT",
        re.compile(r"^/2019-09-30/functions/([^/]+)/provisioned-concurrency$"),
        "PutProvisionedConcurrencyConfig",
    ),
    (
        "DELETE",
        re.compile(r"^/2019-09-30/functions/([^/]+)/provisioned-concurrency$"),
        "DeleteProvisionedConcurrencyConfig",
    ),
    ("GET", re.compile(r"^/2015-03-31/functions/([^/]+)/aliases/([^/]+)$"), "GetAlias"),
    ("PUT", re.compile(r"^/2015-03-31/functions/([^/]+)/aliases/([^/]+)$"), "UpdateAlias"),
    ("POST", re.compile(r"^/2015-03-31/functions/([^/]+)/aliases$"), "CreateAlias"),
    ("POST", re.compile(r"^/2015-03-31/functions/([^/]+)/versions$"), "PublishVersion"),
    ("GET", re.compile(r"^/2015-03-31/functions/([^/]+)/versions$"), "ListVersionsByFunction"),
    ("PUT", re.compile(r"^/2015-03-31/functions/([^/]+)/configuration$"), "UpdateFunctionConfiguration"),
    ("GET", re.compile(r"^/2015-03-31/functions/([^/]+)/configuration$"), "GetFunctionConfiguration"),
    ("POST", re.compile(r"^/2015-03-31/functions/([^/]+)/invocations$"), "Invoke"),
    *aws_gpu_standin.ROUTES,
]


def operation_of(method: str, path: str, headers: Any, body: bytes) -> str:
    """The AWS operation a request is (enough of them to target faults)."""
    target = headers.get("X-Amz-Target")
    if target:
        return target.rsplit(".", 1)[-1]
    if "/operation/" in path:
        return path.rsplit("/operation/", 1)[-1]
    for route_method, pattern, name in _LAMBDA_ROUTES:
        if method == route_method and pattern.match(path):
            return name
    if body.startswith(b"Action="):
        return parse_qs(body.decode())["Action"][0]
    return {"PUT": "PutObject", "GET": "GetObject", "HEAD": "HeadObject", "DELETE": "DeleteObject"}.get(
        method, method
    )


class AwsProxy:
    """Start in front of a moto server URL; point boto3's ``endpoint_url`` at :attr:`url`."""

    def __init__(self, moto_url: str, warmup_s: float = 0.05) -> None:
        parts = urlsplit(moto_url)
        self._moto_host, self._moto_port = parts.hostname or "127.0.0.1", parts.port or 80
        self.capacity = WarmCapacity(warmup_s)
        self.faults = FaultPlan()
        self.managed_instances = ManagedInstancesStandIn(apply_s=warmup_s)
        self.operations: list[str] = []
        self.refused: list[tuple[str, aws_rules.Violation]] = []
        self.requests: list[aws_rules.DecodedRequest] = []  # every checked request, decoded
        self._lock = threading.RLock()
        self._server: LoopbackServer | None = None

    # ----- lifecycle -----
    def start(self) -> AwsProxy:
        self._server = LoopbackServer(self._handle, ("GET", "PUT", "POST", "DELETE", "HEAD")).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the proxy first"
        return self._server.url

    # ----- test-side setup and checks -----
    def prewarm(self, function: str, qualifier: str, instances: int) -> None:
        """Capacity that is already warm for ``function:qualifier`` (stack state before a test)."""
        with self._lock:
            self.capacity.prewarm(function, qualifier, instances)

    def unwarmed_routes(self) -> list[dict[str, Any]]:
        """Alias changes that sent traffic to a version with no warm provisioned instance."""
        return self.capacity.unwarmed_routes()

    @property
    def alias_updates(self) -> list[dict[str, Any]]:
        return self.capacity.alias_updates

    # ----- proxying -----
    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        body = request.rfile.read(int(request.headers.get("Content-Length", "0") or 0))
        split = urlsplit(request.path)
        path = unquote(split.path)
        operation = operation_of(request.command, path, request.headers, body)
        with self._lock:
            self.operations.append(operation)
        fault = self.faults.take(operation)
        if fault == "timeout":
            time.sleep(self.faults.timeout_delay_s)
            request.close_connection = True
            return
        if fault == "throttle":
            code = "TooManyRequestsException" if path.startswith("/20") else "ThrottlingException"
            self._send_json(request, 429, {"__type": code, "message": "Rate exceeded"}, code)
            return
        if fault == "5xx":
            self._send_json(
                request, 503, {"__type": "ServiceUnavailable", "message": "try later"}, "ServiceUnavailable"
            )
            return
        decoded = aws_rules.decode(request.command, path, split.query, request.headers, body)
        violation = aws_rules.check(decoded) if decoded is not None else None
        if decoded is not None and violation is None and decoded.operation == "RegisterScalableTarget":
            existing = self._scalable_target(request, decoded.params)
            message = aws_rules.register_against_existing(decoded.params, existing)
            violation = aws_rules.Violation("ValidationException", message) if message else None
        if decoded is not None:
            with self._lock:
                self.requests.append(decoded)
        if decoded is not None and violation is not None:
            with self._lock:
                self.refused.append((decoded.operation, violation))
            status, headers, answer = aws_rules.error_answer(decoded, violation)
            request.send_response(status)
            for name, value in headers.items():
                request.send_header(name, value)
            request.send_header("Content-Length", str(len(answer)))
            request.end_headers()
            request.wfile.write(answer)
            return
        query = parse_qs(split.query)
        if operation.endswith("ProvisionedConcurrencyConfig"):
            self._provisioned_config(request, operation, path, query)
            return
        owned = self.managed_instances.intercept(operation, path, query, body, request.headers)
        if owned is not None:
            self._send_json(request, *owned)
            return
        status, headers, answer = self._forward(request, body)
        if status < 300:
            answer = self.managed_instances.amend(operation, path, answer)
            self._observe(operation, path, body, answer)
            self.managed_instances.observe(operation, path, answer)
        if fault == "lost":
            time.sleep(self.faults.timeout_delay_s)
            request.close_connection = True
            return
        relay(request, status, headers, answer)

    def _forward(
        self, request: BaseHTTPRequestHandler, body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        return forward((self._moto_host, self._moto_port), request.command, request.path, headers, body)

    def _scalable_target(
        self, request: BaseHTTPRequestHandler, params: dict[str, Any]
    ) -> tuple[int, int] | None:
        """(MinCapacity, MaxCapacity) of the target a RegisterScalableTarget names, as moto holds it
        (asked with the caller's headers, so the same account and region); None when there is none."""
        query = {
            "ServiceNamespace": params.get("ServiceNamespace"),
            "ResourceIds": [params.get("ResourceId")],
            "ScalableDimension": params.get("ScalableDimension"),
        }
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["X-Amz-Target"] = "AnyScaleFrontendService.DescribeScalableTargets"
        connection = http.client.HTTPConnection(self._moto_host, self._moto_port, timeout=30)
        try:
            connection.request("POST", "/", body=json.dumps(query).encode(), headers=headers)
            answer = json.loads(connection.getresponse().read() or b"{}")
        finally:
            connection.close()
        for target in answer.get("ScalableTargets", []):
            if target.get("ResourceId") == params.get("ResourceId"):
                return int(target["MinCapacity"]), int(target["MaxCapacity"])
        return None

    @staticmethod
    def _send_json(
        request: BaseHTTPRequestHandler, status: int, payload: dict[str, Any], error: str = ""
    ) -> None:
        data = json.dumps(payload).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        if error:
            request.send_header("x-amzn-ErrorType", error)
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    def _observe(self, operation: str, path: str, body: bytes, answer: bytes) -> None:
        """Record what moto accepted: scalable targets (as provisioned requests) and alias routing."""
        with self._lock:
            if operation in ("RegisterScalableTarget", "DeregisterScalableTarget"):
                params = json.loads(body)
                _, function, qualifier = params["ResourceId"].split(":", 2)
                if operation == "DeregisterScalableTarget" or params.get("MinCapacity") is None:
                    return  # AWS keeps the last capacity; DeleteProvisionedConcurrencyConfig removes it
                self.capacity.request(function, qualifier, int(params["MinCapacity"]))
            elif operation in ("UpdateAlias", "CreateAlias"):
                function = path.split("/")[3]
                alias = json.loads(answer)
                weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
                self.capacity.log_alias(
                    function,
                    alias["Name"],
                    alias["FunctionVersion"],
                    {v: float(w) for v, w in weights.items()},
                )

    def _provisioned_config(
        self, request: BaseHTTPRequestHandler, operation: str, path: str, query: dict[str, list[str]]
    ) -> None:
        function = path.split("/")[3]
        qualifier = query.get("Qualifier", [""])[0]
        with self._lock:
            requested = self.capacity.requested(function, qualifier)
            if operation == "PutProvisionedConcurrencyConfig":
                self._send_json(request, 400, {"__type": "InvalidParameterValueException",
                                               "message": "drive provisioned concurrency through Application Auto Scaling"},
                                "InvalidParameterValueException")  # fmt: skip
                return
            if not requested:
                self._send_json(
                    request,
                    404,
                    {"__type": "ProvisionedConcurrencyConfigNotFoundException", "message": "No config"},
                    "ProvisionedConcurrencyConfigNotFoundException",
                )
                return
            if operation == "DeleteProvisionedConcurrencyConfig":
                self.capacity.release(function, qualifier)
                request.send_response(204)
                request.send_header("Content-Length", "0")
                request.end_headers()
                return
            available = self.capacity.ready(function, qualifier)
            self._send_json(
                request,
                200,
                {
                    "RequestedProvisionedConcurrentExecutions": requested,
                    "AvailableProvisionedConcurrentExecutions": available,
                    "AllocatedProvisionedConcurrentExecutions": available,
                    "Status": "READY" if available >= requested else "IN_PROGRESS",
                    "LastModified": "2026-01-01T00:00:00.000+0000",
                },
            )

"""An SCF (and Cloud Monitor) API emulator speaking Tencent Cloud API 3.0 on 127.0.0.1.

Requests are ``POST /`` with a JSON body and the ``X-TC-Action`` / ``X-TC-Version`` / ``X-TC-Timestamp`` /
``X-TC-Region`` headers; ``Authorization`` is verified exactly as ``tencentcloud-sdk-python`` signs it
(TC3-HMAC-SHA256 over content-type and host). Answers are ``{"Response": {..., "RequestId"}}``, errors
``{"Response": {"Error": {"Code", "Message"}, "RequestId"}}`` with SCF's documented error codes (the
SDK's ``scf/v20180416/errorcodes.py``).

SCF rules enforced: a function stays "Updating" for ``update_s`` after a configuration change and
refuses to publish meanwhile; provisioned concurrency never on ``$LATEST``; alias routing weights in [0, 1] on
existing versions other than the alias's own; the sum of provisioned concurrency over a function's
versions <= its concurrency quota - 100; PutProvisionedConcurrencyConfig at most 20 requests/s.
Provisioned instances become available ``warmup_s`` seconds after they are requested. Every alias
update is recorded with the ready capacity of each routed version, so tests can check that traffic
never reached a version without warm capacity.

Documented rules enforced (each constant below cites its source):

- API 3.0: a signed request body larger than 10 MB is refused (``RequestSizeLimitExceeded``);
- Cloud Monitor ``GetMonitorData``: namespace ``QCE/SCF_V2`` only, the documented metric names and
  periods, dimensions ``functionName`` + ``namespace`` + exactly one of ``version`` / ``alias``; a
  version's data is under ``version``, an alias's under ``alias`` (nothing is found under the other);
- ``CreateFunction`` / ``UpdateFunctionConfiguration``: a Description of letters, digits, spaces, commas,
  newlines, periods and Chinese only (:func:`function_description_problem`);
- ``CreateFunction``: the runtime must be in SCF's documented list (newest Python: 3.10); an inline
  ``Code.ZipFile`` rides in the signed request (so above 10 MB it cannot be sent; COS instead);
- layers: SCF unpacks a layer under ``/opt`` and its runtimes put ``/var/user:/opt`` on
  ``PYTHONPATH`` (:func:`scf_python_path`), so a package a layer holds under ``python/`` is not
  importable unless the function adds ``/opt/python`` itself;
- function URLs (``CreateTrigger`` / ``DeleteTrigger`` with ``Type="http"``): one per alias or version,
  never on a missing qualifier; each URL is served on 127.0.0.1 and forwards to the backend a test
  registers for the version the qualifier resolves to (:meth:`ScfEmulator.serve_version`);
- API gateway (``apigateway`` service): refuses to create services, as Tencent does since 2024-07-01;
- ``UpdateFunctionConfiguration``'s ``InstanceConcurrencyConfig``: web functions only, ``MaxConcurrency``
  in [1, 100]; a published version freezes it;
- ``PublishVersion`` while the function is not Active: ``FailedOperation.PublishVersion``; at most
  ``version_limit`` versions per function (``LimitExceeded.FunctionVersions``); ``DeleteFunction`` with a
  ``Qualifier`` deletes that version (refused while an alias routes to it).
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.cloud.faults import FaultPlan
from tests.cloud.warm_capacity import WarmCapacity
from tests.loopback_server import LoopbackServer

SCF_API_VERSION = "2018-04-16"
MONITOR_API_VERSION = "2018-07-24"
PUT_PROVISIONED_MAX_PER_S = 20
SIGNATURE_MAX_SKEW_S = 300
RESERVED_CONCURRENCY_MARGIN = 100  # the sum over versions must stay <= quota - 100
# "POST 请求包大小不得超过 10 MB" (API 3.0 signature v3, https://cloud.tencent.com/document/api/583/17238)
SIGNED_REQUEST_MAX_BYTES = 10 * 1024 * 1024
APIGATEWAY_API_VERSION = "2018-08-08"
# API gateway's retirement (https://cloud.tencent.com/document/product/628/106651): from 2024-07-01
# "新、老用户无法再购买或创建资源, 包含实例、服务"; SCF's trigger page (doc 583/107631) says to use the
# function URL instead ("建议改用 函数 URL").
APIGATEWAY_RETIRED = (
    "API 网关自 2024-07-01 起新、老用户无法再购买或创建资源, 包含实例、服务 (doc 628/106651); "
    "建议改用 函数 URL (doc 583/107631)"
)
# InstanceConcurrencyConfig (SDK model): "单实例多并发配置。只支持Web函数", MaxConcurrency "取值范围 [1,100]".
MAX_CONCURRENCY_RANGE = (1, 100)
# The per-function version limit: SCF's error codes have LimitExceeded.FunctionVersions ("函数版本超限"),
# but neither the quota page (doc 583/11637) nor the version page (doc 583/15371: "The version number
# has no upper limit", i.e. numbers are never reused) states the count; tests set ``version_limit``.
# Cloud Monitor's SCF metrics (https://cloud.tencent.com/document/product/248/37207): namespace,
# metric names, statistic periods, and dimensions "functionName、version、namespace、alias".
MONITOR_NAMESPACE = "QCE/SCF_V2"
MONITOR_METRICS = frozenset(
    {
        "Invocation", "Error", "Throttle", "ConcurrentExecutions", "DlqFailedNum", "Duration",
        "BillDuration", "Mem", "MemDuration", "ConfigMem", "OutFlow", "Http2xx", "Http432", "Http433",
        "Http434", "Http4xx", "FunctionErrorPercentage", "ServerErrorPercentage",
    }
)  # fmt: skip
MONITOR_PERIODS_S = frozenset({60, 300, 3600, 86400})
MONITOR_DIMENSIONS = frozenset({"functionName", "namespace", "version", "alias"})
# CreateFunction Runtime, as listed in tencentcloud/scf/v20180416/models.py (CreateFunctionRequest):
# the newest Python is Python3.10.
SCF_RUNTIMES = frozenset(
    {
        "Python2.7", "Python3.6", "Python3.7", "Python3.9", "Python3.10", "Nodejs8.9", "Nodejs10.15",
        "Nodejs12.16", "Nodejs14.18", "Nodejs16.13", "Nodejs18.15", "Php5.6", "Php7.2", "Php7.4",
        "Php8.0", "Go1", "Java8", "Java11", "CustomRuntime",
    }
)  # fmt: skip
SCF_DEFAULT_PYTHONPATH = ("/var/user", "/opt")  # SCF's Python runtimes; layers unpack under /opt


# CreateFunctionRequest.Description (SDK model, tencentcloud/scf/v20180416/models.py): "函数描述,最大支持
# 1000 个英文字母、数字、空格、逗号、换行符和英文句号，支持中文"; the provider's schema says the same ("Description
# supports English letters, numbers, spaces, commas, newlines, periods and Chinese"); a breach is
# InvalidParameterValue.Description ("Description传入错误", the SDK's errorcodes.py).
FUNCTION_DESCRIPTION_MAX_CHARS = 1000
_FUNCTION_DESCRIPTION = re.compile(r"[A-Za-z0-9 ,.\n\u4e00-\u9fff]*")


def function_description_problem(text: str) -> str | None:
    """Why SCF refuses ``text`` as a function's Description, or None when it accepts it."""
    if len(text) > FUNCTION_DESCRIPTION_MAX_CHARS:
        return f"Description is {len(text)} characters, over {FUNCTION_DESCRIPTION_MAX_CHARS}"
    if not _FUNCTION_DESCRIPTION.fullmatch(text):
        bad = sorted({c for c in text if not _FUNCTION_DESCRIPTION.fullmatch(c)})
        return (
            f"Description {text!r} holds {''.join(bad)!r}: only English letters, digits, spaces, commas, "
            "newlines, periods and Chinese are allowed"
        )
    return None


def scf_python_path(environment: dict[str, str] | None = None) -> list[str]:
    """Where an SCF Python function imports from: ``PYTHONPATH`` from its environment (when set),
    then SCF's default ``/var/user:/opt``. A layer's files land under ``/opt`` as they are in its zip."""
    own = [p for p in (environment or {}).get("PYTHONPATH", "").split(":") if p]
    return own + [p for p in SCF_DEFAULT_PYTHONPATH if p not in own]


class ApiError(Exception):
    """An error answer: ``code`` is one of SCF's documented error codes."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class ScfFunction:
    """One function's emulated state: ``$LATEST`` config, published versions, aliases, provisioned."""

    name: str
    namespace: str
    concurrency_quota: int
    latest: dict[str, Any]
    versions: dict[str, dict[str, Any]] = field(default_factory=dict)
    aliases: dict[str, dict[str, Any]] = field(default_factory=dict)
    failing_versions: set[str] = field(default_factory=set)
    updating_until: float = 0.0  # clock seconds: "Updating" after a configuration change until then
    func_type: str = "HTTP"  # "HTTP" (web function) or "Event"
    published: int = 0  # the last version number: doc 583/15371, numbers start at 1 and only increase
    # function URLs: qualifier (alias or version) -> the trigger as ListTriggers would show it
    urls: dict[str, dict[str, Any]] = field(default_factory=dict)


def _now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


def tc3_signature(secret_key: str, service: str, timestamp: int, canonical_request: str) -> str:
    """TC3-HMAC-SHA256 as ``tencentcloud.common.sign.Sign.sign_tc3`` computes it."""
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    scope = f"{date}/{service}/tc3_request"
    digest = hashlib.sha256(canonical_request.encode()).hexdigest()
    string_to_sign = f"TC3-HMAC-SHA256\n{timestamp}\n{scope}\n{digest}"
    key = hmac.new(("TC3" + secret_key).encode(), date.encode(), hashlib.sha256).digest()
    key = hmac.new(key, service.encode(), hashlib.sha256).digest()
    key = hmac.new(key, b"tc3_request", hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


class ScfEmulator:
    """The emulator: start it, add functions, point ``ScfClient`` / ``MonitorClient`` at ``endpoint``."""

    def __init__(self, secret_id: str = "AKIDtest", secret_key: str = "test-secret", warmup_s: float = 0.05):
        self.secret_id = secret_id
        self.secret_key = secret_key
        self.clock: Callable[[], float] = time.monotonic  # seconds; tests may replace it
        self.capacity = WarmCapacity(warmup_s, clock=lambda: self.clock())
        self.update_s = 0.01  # how long $LATEST stays "Updating" after UpdateFunctionConfiguration
        self.faults = FaultPlan()
        self.functions: dict[tuple[str, str], ScfFunction] = {}
        # (function, "version" | "alias", qualifier, metric) -> [(epoch s, value)]
        self.metrics: dict[tuple[str, str, str, str], list[tuple[int, float]]] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._put_times: deque[float] = deque()
        self._lock = threading.RLock()
        self._server: LoopbackServer | None = None
        self._url_server: LoopbackServer | None = None
        self.version_limit: int | None = None  # see the comment on LimitExceeded.FunctionVersions
        # (function, version) -> base URL of the HTTP server that plays that version (tests start it)
        self.backends: dict[tuple[str, str], str] = {}
        self.url_requests: list[tuple[str, str, str, str]] = []  # (qualifier, version, method, path)

    # ----- lifecycle -----
    def start(self) -> ScfEmulator:
        self._server = LoopbackServer(self._handle, ("POST",)).start()
        self._url_server = LoopbackServer(self._serve_url, ("GET", "POST", "HEAD")).start()
        return self

    def stop(self) -> None:
        for server in (self._server, self._url_server):
            if server is not None:
                server.stop()
        self._server = self._url_server = None

    @property
    def endpoint(self) -> str:
        """``host:port`` for ``HttpProfile(endpoint=..., protocol="http")``."""
        assert self._server is not None, "start() the emulator first"
        return self._server.host_port

    # ----- test-side setup -----
    def add_function(
        self,
        name: str,
        namespace: str = "default",
        environment: dict[str, str] | None = None,
        concurrency_quota: int = 300,
    ) -> ScfFunction:
        """Create a function whose ``$LATEST`` has ``environment``."""
        latest = {
            "Environment": {"Variables": [{"Key": k, "Value": v} for k, v in (environment or {}).items()]},
            "MemorySize": 16384,
            "Timeout": 60,
            "Description": "",
        }
        fn = ScfFunction(name, namespace, concurrency_quota, latest)
        with self._lock:
            self.functions[(namespace, name)] = fn
        return fn

    def prewarm(self, name: str, version: str, instances: int, namespace: str = "default") -> None:
        """Give ``version`` provisioned capacity that is already warm (stack state before a test)."""
        with self._lock:
            self.capacity.prewarm(name, version, instances)

    def put_metric(self, name: str, qualifier: str, metric: str, timestamp: int, value: float) -> None:
        """Record one Cloud Monitor data point (namespace QCE/SCF_V2) for ``name``/``qualifier``: under
        the ``alias`` dimension when the function has an alias of that name, else under ``version``."""
        with self._lock:
            fn = next((f for f in self.functions.values() if f.name == name), None)
            kind = "alias" if fn is not None and qualifier in fn.aliases else "version"
            self.metrics.setdefault((name, kind, qualifier, metric), []).append((timestamp, value))

    def serve_version(self, name: str, version: str, base_url: str) -> None:
        """Requests to a function URL that resolves to ``version`` go to ``base_url`` (a test's server)."""
        with self._lock:
            self.backends[(name, version)] = base_url.rstrip("/")

    def function_url(self, name: str, qualifier: str, namespace: str = "default") -> str | None:
        """The function URL bound to ``qualifier``, None when there is none."""
        with self._lock:
            trigger = self.functions[(namespace, name)].urls.get(qualifier)
        return None if trigger is None else str(trigger["url"])

    def unwarmed_routes(self) -> list[dict[str, Any]]:
        """Alias updates that sent traffic to a version with no warm provisioned instance."""
        return self.capacity.unwarmed_routes()

    @property
    def alias_updates(self) -> list[dict[str, Any]]:
        return self.capacity.alias_updates

    # ----- protocol -----
    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length", "0"))
        body = request.rfile.read(length)
        action = request.headers.get("X-TC-Action", "")
        fault = self.faults.take(action)
        if fault == "timeout":
            time.sleep(self.faults.timeout_delay_s)
            request.close_connection = True
            return
        if fault == "5xx":
            self._send(request, 502, b"<html><body>502 Bad Gateway</body></html>", "text/html")
            return
        request_id = str(uuid.uuid4())
        try:
            if len(body) > SIGNED_REQUEST_MAX_BYTES:
                raise ApiError(
                    "RequestSizeLimitExceeded",
                    f"request body of {len(body)} bytes exceeds {SIGNED_REQUEST_MAX_BYTES}",
                )
            if fault == "throttle":
                raise ApiError("RequestLimitExceeded", "request frequency exceeds the limit")
            service = self._verify(request, body)
            params = json.loads(body or b"{}")
            with self._lock:
                self.calls.append((action, copy.deepcopy(params)))
                result = self._dispatch(service, action, request.headers.get("X-TC-Version", ""), params)
            response = {**result, "RequestId": request_id}
        except ApiError as error:
            response = {"Error": {"Code": error.code, "Message": error.message}, "RequestId": request_id}
        if fault == "lost":
            time.sleep(self.faults.timeout_delay_s)
            request.close_connection = True
            return
        self._send(request, 200, json.dumps({"Response": response}).encode(), "application/json")

    @staticmethod
    def _send(request: BaseHTTPRequestHandler, status: int, payload: bytes, content_type: str) -> None:
        request.send_response(status)
        request.send_header("Content-Type", content_type)
        request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        request.wfile.write(payload)

    def _verify(self, request: BaseHTTPRequestHandler, body: bytes) -> str:
        """Check the TC3-HMAC-SHA256 ``Authorization`` header; return the signed service name."""
        auth = request.headers.get("Authorization", "")
        try:
            algorithm, rest = auth.split(" ", 1)
            parts = dict(p.strip().split("=", 1) for p in rest.split(","))
            secret_id, date, service, terminator = parts["Credential"].split("/")
            signed_headers, signature = parts["SignedHeaders"], parts["Signature"]
            timestamp = int(request.headers["X-TC-Timestamp"])
        except (ValueError, KeyError) as exc:
            raise ApiError("AuthFailure.InvalidAuthorization", f"malformed Authorization: {exc}") from exc
        if (
            algorithm != "TC3-HMAC-SHA256"
            or terminator != "tc3_request"
            or signed_headers != "content-type;host"
        ):
            raise ApiError("AuthFailure.InvalidAuthorization", "Authorization must be TC3-HMAC-SHA256")
        if secret_id != self.secret_id:
            raise ApiError("AuthFailure.SecretIdNotFound", f"SecretId {secret_id} not found")
        if abs(time.time() - timestamp) > SIGNATURE_MAX_SKEW_S:
            raise ApiError("AuthFailure.SignatureExpire", "X-TC-Timestamp is more than 5 minutes off")
        canonical = "\n".join(
            [
                "POST",
                "/",
                "",
                f"content-type:{request.headers.get('Content-Type', '')}\nhost:{request.headers.get('Host', '')}\n",
                signed_headers,
                hashlib.sha256(body).hexdigest(),
            ]
        )
        expected = tc3_signature(self.secret_key, service, timestamp, canonical)
        if date != datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d"):
            raise ApiError("AuthFailure.SignatureFailure", "credential date does not match X-TC-Timestamp")
        if not hmac.compare_digest(expected, signature):
            raise ApiError("AuthFailure.SignatureFailure", "the request signature does not match")
        return service

    def _dispatch(self, service: str, action: str, version: str, params: dict[str, Any]) -> dict[str, Any]:
        handlers = {
            "scf": (SCF_API_VERSION, self._scf_actions()),
            "monitor": (MONITOR_API_VERSION, {"GetMonitorData": self._get_monitor_data}),
            "apigateway": (APIGATEWAY_API_VERSION, {"CreateService": self._apigateway_retired}),
        }
        if service not in handlers:
            raise ApiError("AuthFailure.InvalidAuthorization", f"unknown service {service}")
        expected_version, actions = handlers[service]
        if version != expected_version:
            raise ApiError("NoSuchVersion", f"version {version} of {service} does not exist")
        if action not in actions:
            raise ApiError("InvalidAction", f"action {action} does not exist")
        return actions[action](params)

    # ----- SCF actions -----
    def _scf_actions(self) -> dict[str, Any]:
        return {
            "CreateFunction": self._create_function,
            "GetFunction": self._get_function,
            "UpdateFunctionConfiguration": self._update_function_configuration,
            "PublishVersion": self._publish_version,
            "ListVersionByFunction": self._list_versions,
            "GetAlias": self._get_alias,
            "ListAliases": self._list_aliases,
            "CreateAlias": self._create_alias,
            "UpdateAlias": self._update_alias,
            "DeleteAlias": self._delete_alias,
            "PutProvisionedConcurrencyConfig": self._put_provisioned,
            "GetProvisionedConcurrencyConfig": self._get_provisioned,
            "DeleteProvisionedConcurrencyConfig": self._delete_provisioned,
            "Invoke": self._invoke,
            "CreateTrigger": self._create_trigger,
            "DeleteTrigger": self._delete_trigger,
            "ListTriggers": self._list_triggers,
            "DeleteFunction": self._delete_function,
        }

    @staticmethod
    def _apigateway_retired(params: dict[str, Any]) -> dict[str, Any]:
        raise ApiError("UnsupportedOperation", APIGATEWAY_RETIRED)

    def _function(self, params: dict[str, Any]) -> ScfFunction:
        name = params.get("FunctionName")
        if not name:
            raise ApiError("InvalidParameter.Payload", "FunctionName is required")
        fn = self.functions.get((params.get("Namespace") or "default", name))
        if fn is None:
            raise ApiError("ResourceNotFound.Function", f"function {name} does not exist")
        return fn

    def _resolve(self, fn: ScfFunction, qualifier: str) -> str:
        """The version a qualifier (version, alias or $LATEST) names."""
        if qualifier == "$LATEST" or qualifier in fn.versions:
            return qualifier
        if qualifier in fn.aliases:
            return fn.aliases[qualifier]["FunctionVersion"]
        raise ApiError("ResourceNotFound.Qualifier", f"qualifier {qualifier} does not exist")

    def _create_function(self, params: dict[str, Any]) -> dict[str, Any]:
        name, namespace = params.get("FunctionName", ""), params.get("Namespace") or "default"
        if (namespace, name) in self.functions:
            raise ApiError("ResourceInUse.Function", f"function {name} already exists")
        problem = function_description_problem(params.get("Description") or "")
        if problem:
            raise ApiError("InvalidParameterValue.Description", problem)
        code = params.get("Code") or {}
        if not code.get("ImageConfig"):
            runtime = params.get("Runtime") or "Python2.7"  # the documented default
            if runtime not in SCF_RUNTIMES:
                raise ApiError(
                    "InvalidParameterValue.Runtime",
                    f"Runtime {runtime} is not supported; supported: {', '.join(sorted(SCF_RUNTIMES))}",
                )
        env = {v["Key"]: v["Value"] for v in (params.get("Environment") or {}).get("Variables") or []}
        fn = self.add_function(name, namespace, env)
        fn.func_type = params.get("Type") or "Event"  # CreateFunctionRequest.Type: "Event" (default) / "HTTP"
        return {}

    def _get_function(self, params: dict[str, Any]) -> dict[str, Any]:
        fn = self._function(params)
        qualifier = self._resolve(fn, params.get("Qualifier") or "$LATEST")
        config = fn.latest if qualifier == "$LATEST" else fn.versions[qualifier]
        return {
            "FunctionName": fn.name,
            "Namespace": fn.namespace,
            "Qualifier": qualifier,
            "Status": self._status(fn),
            "Type": fn.func_type,
            "UseGpu": "TRUE",
            "Triggers": [self._trigger_view(t) for t in fn.urls.values()],
            **copy.deepcopy(config),
        }

    def _status(self, fn: ScfFunction) -> str:
        return "Updating" if self.clock() < fn.updating_until else "Active"

    def _settled(self, params: dict[str, Any]) -> ScfFunction:
        """The function, which must not be in the middle of an update."""
        fn = self._function(params)
        if self._status(fn) != "Active":
            raise ApiError("FailedOperation.FunctionStatusError", f"function {fn.name} is being updated")
        return fn

    def _update_function_configuration(self, params: dict[str, Any]) -> dict[str, Any]:
        fn = self._settled(params)
        problem = function_description_problem(params["Description"]) if "Description" in params else None
        if problem:
            raise ApiError("InvalidParameterValue.Description", problem)
        if "InstanceConcurrencyConfig" in params:
            self._check_instance_concurrency(fn, params["InstanceConcurrencyConfig"])
        for key in ("Environment", "MemorySize", "Timeout", "Description", "InstanceConcurrencyConfig"):
            if key in params:
                fn.latest[key] = copy.deepcopy(params[key])
        fn.updating_until = self.clock() + self.update_s
        return {}

    @staticmethod
    def _check_instance_concurrency(fn: ScfFunction, config: Any) -> None:
        """InstanceConcurrencyConfig (SDK model): "单实例多并发配置。只支持Web函数"; MaxConcurrency
        "单实例并发数最大值。取值范围 [1,100]"."""
        if fn.func_type != "HTTP":
            raise ApiError(
                "InvalidParameterValue.InstanceConcurrencyConfig",
                f"InstanceConcurrencyConfig: 只支持Web函数 (function {fn.name} is {fn.func_type})",
            )
        value = (config or {}).get("MaxConcurrency")
        low, high = MAX_CONCURRENCY_RANGE
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise ApiError(
                "InvalidParameterValue.MaxConcurrency",
                f"MaxConcurrency {value!r}: 取值范围 [{low},{high}]",
            )

    def _publish_version(self, params: dict[str, Any]) -> dict[str, Any]:
        fn = self._function(params)
        if self._status(fn) != "Active":
            # errorcodes.py: FailedOperation.PublishVersion "当前函数状态无法发布版本，请在状态为正常时发布"
            raise ApiError(
                "FailedOperation.PublishVersion",
                f"当前函数状态无法发布版本，请在状态为正常时发布 (function {fn.name} is {self._status(fn)})",
            )
        if self.version_limit is not None and len(fn.versions) >= self.version_limit:
            raise ApiError(
                "LimitExceeded.FunctionVersions",
                f"函数版本超限: function {fn.name} has {len(fn.versions)} versions (limit {self.version_limit})",
            )
        fn.published = max([fn.published, *(int(v) for v in fn.versions)]) + 1
        number = str(fn.published)
        snapshot = copy.deepcopy(fn.latest)
        snapshot["Description"] = params.get("Description", "")
        snapshot["AddTime"] = snapshot["ModTime"] = _now_text()
        fn.versions[number] = snapshot
        return {"FunctionVersion": number, "Description": snapshot["Description"], "Namespace": fn.namespace}

    def _list_versions(self, params: dict[str, Any]) -> dict[str, Any]:
        fn = self._function(params)
        offset, limit = int(params.get("Offset", 0)), int(params.get("Limit", 20))
        if limit > 100 or limit < 1:
            raise ApiError("InvalidParameterValue.Limit", "Limit must be in [1, 100]")
        names = ["$LATEST", *sorted(fn.versions, key=int)]
        if params.get("Order", "ASC") == "DESC":
            names.reverse()
        page = names[offset : offset + limit]
        versions = [
            {
                "Version": v,
                "Description": (fn.latest if v == "$LATEST" else fn.versions[v]).get("Description", ""),
                "Status": "Active",
            }
            for v in page
        ]
        return {"FunctionVersion": page, "Versions": versions, "TotalCount": len(names)}

    def _alias_body(self, fn: ScfFunction, name: str) -> dict[str, Any]:
        alias = fn.aliases.get(name)
        if alias is None:
            raise ApiError("ResourceNotFound.Alias", f"alias {name} does not exist")
        return copy.deepcopy(alias)

    def _get_alias(self, params: dict[str, Any]) -> dict[str, Any]:
        fn = self._function(params)
        return self._alias_body(fn, params.get("Name", ""))

    def _list_aliases(self, params: dict[str, Any]) -> dict[str, Any]:
        """ListAliasesRequest (SDK model): FunctionVersion "如果提供此参数，则只返回与该函数版本有关联的别名";
        Limit "默认值为 20"."""
        fn = self._function(params)
        offset, limit = int(params.get("Offset", 0)), int(params.get("Limit", 20))
        wanted = params.get("FunctionVersion")
        aliases = [
            copy.deepcopy(a)
            for a in fn.aliases.values()
            if wanted is None
            or wanted == a["FunctionVersion"]
            or wanted in {w["Version"] for w in a["RoutingConfig"]["AdditionalVersionWeights"]}
        ]
        return {"Aliases": aliases[offset : offset + limit], "TotalCount": len(aliases)}

    def _checked_routing(
        self, fn: ScfFunction, primary: str, routing: dict[str, Any] | None
    ) -> dict[str, Any]:
        weights = (routing or {}).get("AdditionalVersionWeights") or []
        for entry in weights:
            version, weight = entry.get("Version"), entry.get("Weight")
            if version not in fn.versions:
                raise ApiError("ResourceNotFound.Version", f"version {version} does not exist")
            if version == primary:
                raise ApiError("InvalidParameterValue.RoutingConfig", "routing names the alias's own version")
            if not isinstance(weight, int | float) or not 0 <= weight <= 1:
                raise ApiError("InvalidParameterValue.RoutingConfig", f"weight {weight} is not in [0, 1]")
        return {"AdditionalVersionWeights": copy.deepcopy(weights), "AddtionVersionMatchs": []}

    def _record_alias(self, fn: ScfFunction, alias: dict[str, Any]) -> None:
        weights = {
            e["Version"]: float(e["Weight"]) for e in alias["RoutingConfig"]["AdditionalVersionWeights"]
        }
        self.capacity.log_alias(fn.name, alias["Name"], alias["FunctionVersion"], weights)

    def _create_alias(self, params: dict[str, Any]) -> dict[str, Any]:
        fn = self._function(params)
        name, version = params.get("Name", ""), params.get("FunctionVersion", "")
        if name in fn.aliases:
            raise ApiError("ResourceInUse.Alias", f"alias {name} already exists")
        if version not in fn.versions and version != "$LATEST":
            raise ApiError("ResourceNotFound.Version", f"version {version} does not exist")
        alias = {
            "Name": name,
            "FunctionVersion": version,
            "RoutingConfig": self._checked_routing(fn, version, params.get("RoutingConfig")),
            "Description": params.get("Description", ""),
            "AddTime": _now_text(),
            "ModTime": _now_text(),
        }
        fn.aliases[name] = alias
        self._record_alias(fn, alias)
        return {}

    def _update_alias(self, params: dict[str, Any]) -> dict[str, Any]:
        fn = self._function(params)
        alias = fn.aliases.get(params.get("Name", ""))
        if alias is None:
            raise ApiError("ResourceNotFound.Alias", f"alias {params.get('Name')} does not exist")
        version = params.get("FunctionVersion", "")
        if version not in fn.versions and version != "$LATEST":
            raise ApiError("ResourceNotFound.Version", f"version {version} does not exist")
        routing = self._checked_routing(fn, version, params.get("RoutingConfig"))
        alias.update(FunctionVersion=version, RoutingConfig=routing, ModTime=_now_text())
        if "Description" in params:
            alias["Description"] = params["Description"]
        self._record_alias(fn, alias)
        return {}

    def _delete_alias(self, params: dict[str, Any]) -> dict[str, Any]:
        fn = self._function(params)
        name = params.get("Name", "")
        if name not in fn.aliases:
            raise ApiError("ResourceNotFound.Alias", f"alias {name} does not exist")
        del fn.aliases[name]
        return {}

    def _provisionable(self, params: dict[str, Any]) -> tuple[ScfFunction, str]:
        """The function and a qualifier that may hold provisioned concurrency (a published version)."""
        fn = self._function(params)
        qualifier = params.get("Qualifier", "")
        if qualifier == "$LATEST":
            raise ApiError(
                "InvalidParameterValue.Qualifier", "$LATEST does not support provisioned concurrency"
            )
        if qualifier not in fn.versions:
            raise ApiError("ResourceNotFound.Version", f"version {qualifier} does not exist")
        return fn, qualifier

    def _put_provisioned(self, params: dict[str, Any]) -> dict[str, Any]:
        now = self.clock()
        while self._put_times and now - self._put_times[0] >= 1.0:
            self._put_times.popleft()
        if len(self._put_times) >= PUT_PROVISIONED_MAX_PER_S:
            raise ApiError("RequestLimitExceeded", "PutProvisionedConcurrencyConfig allows 20 requests/s")
        self._put_times.append(now)
        fn, qualifier = self._provisionable(params)
        number = params.get("VersionProvisionedConcurrencyNum")
        if not isinstance(number, int) or number < 0:
            raise ApiError("InvalidParameterValue.VersionProvisionedConcurrencyNum", f"bad number {number}")
        if params.get("ProvisionedType") == "ConcurrencyUtilizationTracking":
            # PutProvisionedConcurrencyConfigRequest (SDK model): TrackingTarget "设置范围(0,1)",
            # MinCapacity "缩容时的最小值, 最小值为1", MaxCapacity "扩容时的最大值"
            target, low, high = (
                params.get("TrackingTarget"),
                params.get("MinCapacity"),
                params.get("MaxCapacity"),
            )
            if not isinstance(target, int | float) or not 0 < target < 1:
                raise ApiError(
                    "InvalidParameterValue.TrackingTarget", f"TrackingTarget {target} is not in (0, 1)"
                )
            if not isinstance(low, int) or low < 1 or not isinstance(high, int) or high < low:
                raise ApiError(
                    "InvalidParameterValue.MinCapacity",
                    f"need 1 <= MinCapacity <= MaxCapacity, got {low}, {high}",
                )
        others = sum(
            self.capacity.requested(fn.name, v) for v in self.capacity.qualifiers(fn.name) if v != qualifier
        )
        limit = fn.concurrency_quota - RESERVED_CONCURRENCY_MARGIN
        if others + number > limit:
            raise ApiError(
                "FailedOperation.ProvisionedExceedAvailable",
                f"provisioned sum {others + number} exceeds concurrency quota - 100 = {limit}",
            )
        self.capacity.request(fn.name, qualifier, number)
        return {}

    def _get_provisioned(self, params: dict[str, Any]) -> dict[str, Any]:
        fn = self._function(params)
        qualifier = params.get("Qualifier")
        allocated = []
        for version in self.capacity.qualifiers(fn.name):
            if qualifier and version != qualifier:
                continue
            requested, available = (
                self.capacity.requested(fn.name, version),
                self.capacity.ready(fn.name, version),
            )
            allocated.append(
                {
                    "Qualifier": version,
                    "AllocatedProvisionedConcurrencyNum": requested,
                    "AvailableProvisionedConcurrencyNum": available,
                    "Status": "Done" if available == requested else "Doing",
                    "StatusReason": "",
                    "TriggerActions": [],
                }
            )
        used = sum(self.capacity.requested(fn.name, v) for v in self.capacity.qualifiers(fn.name))
        unallocated = fn.concurrency_quota - RESERVED_CONCURRENCY_MARGIN - used
        return {"UnallocatedConcurrencyNum": unallocated, "Allocated": allocated}

    def _delete_provisioned(self, params: dict[str, Any]) -> dict[str, Any]:
        fn, qualifier = self._provisionable(params)
        self.capacity.release(fn.name, qualifier)
        return {}

    def _invoke(self, params: dict[str, Any]) -> dict[str, Any]:
        fn = self._function(params)
        if fn.func_type == "HTTP" and params.get("InvocationType") == "Event":
            # Web functions take HTTP requests only: no asynchronous invocation (SCF, Web 函数 limits)
            raise ApiError(
                "UnsupportedOperation",
                f"{fn.name} is a Web function: asynchronous invocation is not supported",
            )
        version = self._resolve(fn, params.get("Qualifier") or "$LATEST")
        config = fn.latest if version == "$LATEST" else fn.versions[version]
        env = {v["Key"]: v["Value"] for v in config["Environment"]["Variables"]}
        failing = version in fn.failing_versions
        body = json.dumps({"version": version, "environment": env, "ok": not failing})
        # No "InvokeResult": the SDK model marks it "该参数不再维护" (no longer maintained), so nothing
        # may rely on it; a function error fills ErrMsg.
        return {
            "Result": {
                "RetMsg": "" if failing else body,
                "ErrMsg": body if failing else "",
                "Duration": 12.0,
                "BillDuration": 13,
                "MemUsage": 1024,
                "Log": "",
                "FunctionRequestId": str(uuid.uuid4()),
            }
        }

    # ----- function URLs (http triggers) -----
    def _url_target(self, fn: ScfFunction, params: dict[str, Any]) -> str:
        """The qualifier an http trigger binds: doc 583/100227, "URL 绑定在别名或者版本维度"; CreateTrigger's
        Qualifier "默认为 $LATEST"."""
        qualifier = params.get("Qualifier") or "$LATEST"
        self._resolve(fn, qualifier)  # ResourceNotFound.Qualifier for a missing alias or version
        return qualifier

    def _create_trigger(self, params: dict[str, Any]) -> dict[str, Any]:
        fn = self._function(params)
        kind = params.get("Type", "")
        if kind == "apigw":
            raise ApiError("UnsupportedOperation", APIGATEWAY_RETIRED)
        if kind != "http":
            raise ApiError(
                "InvalidParameterValue.Type", f"the emulator implements Type http only, got {kind!r}"
            )
        qualifier = self._url_target(fn, params)
        if qualifier in fn.urls:
            # doc 583/100227: "每一个别名或者版本仅允许创建一个 URL"
            raise ApiError("ResourceInUse.Trigger", f"{fn.name}:{qualifier} already has a function URL")
        try:
            desc = json.loads(params.get("TriggerDesc") or "")
        except json.JSONDecodeError as exc:
            raise ApiError("InvalidParameterValue.TriggerDesc", f"TriggerDesc is not JSON: {exc}") from exc
        # doc 583/100227: AuthType (CAM | NONE) and NetConfig{EnableIntranet, EnableExtranet} are required
        if desc.get("AuthType") not in ("CAM", "NONE"):
            raise ApiError("InvalidParameterValue.TriggerDesc", "TriggerDesc.AuthType must be CAM or NONE")
        net = desc.get("NetConfig")
        if not isinstance(net, dict) or not all(
            isinstance(net.get(k), bool) for k in ("EnableIntranet", "EnableExtranet")
        ):
            raise ApiError(
                "InvalidParameterValue.TriggerDesc",
                "TriggerDesc.NetConfig needs EnableIntranet and EnableExtranet (Bool)",
            )
        assert self._url_server is not None
        url = f"{self._url_server.url}/fn/{fn.namespace}/{fn.name}/{qualifier}"
        shown = {**desc, "Url": {"Extranet": url if net["EnableExtranet"] else "", "Intranet": ""}}
        trigger = {
            "TriggerName": params.get("TriggerName", ""),
            "Type": "http",
            "Qualifier": qualifier,
            "Enable": 1 if params.get("Enable", "OPEN") == "OPEN" else 0,
            "TriggerDesc": json.dumps(shown),
            "AddTime": _now_text(),
            "ModTime": _now_text(),
            "url": url,
        }
        fn.urls[qualifier] = trigger
        return {"TriggerInfo": self._trigger_view(trigger)}

    @staticmethod
    def _trigger_view(trigger: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in trigger.items() if k != "url"}

    def _delete_trigger(self, params: dict[str, Any]) -> dict[str, Any]:
        fn = self._function(params)
        # DeleteTriggerRequest.Qualifier (SDK model): "要删除的触发器实际所指向的版本或别名，默认值为 $LATEST"
        qualifier = params.get("Qualifier") or "$LATEST"
        trigger = fn.urls.get(qualifier)
        if (
            params.get("Type") != "http"
            or trigger is None
            or trigger["TriggerName"] != params.get("TriggerName")
        ):
            raise ApiError(
                "ResourceNotFound.Trigger",
                f"no {params.get('Type')} trigger {params.get('TriggerName')} on {fn.name}:{qualifier}",
            )
        del fn.urls[qualifier]
        return {}

    def _list_triggers(self, params: dict[str, Any]) -> dict[str, Any]:
        fn = self._function(params)
        triggers = [self._trigger_view(t) for t in fn.urls.values()]
        return {"Triggers": triggers, "TotalCount": len(triggers)}

    def _delete_function(self, params: dict[str, Any]) -> dict[str, Any]:
        """DeleteFunctionRequest.Qualifier (SDK model): "填写需要删除的版本号，不填默认删除函数下全部版本"."""
        fn = self._function(params)
        qualifier = params.get("Qualifier")
        if not qualifier:
            del self.functions[(fn.namespace, fn.name)]
            for version in list(self.capacity.qualifiers(fn.name)):
                self.capacity.release(fn.name, version)
            return {}
        if qualifier not in fn.versions:
            raise ApiError("ResourceNotFound.Version", f"version {qualifier} does not exist")
        routed = [
            a["Name"]
            for a in fn.aliases.values()
            if qualifier == a["FunctionVersion"]
            or qualifier in {w["Version"] for w in a["RoutingConfig"]["AdditionalVersionWeights"]}
        ]
        if routed:
            raise ApiError(
                "ResourceInUse.Alias", f"version {qualifier} is routed by alias {', '.join(routed)}"
            )
        del fn.versions[qualifier]
        fn.urls.pop(qualifier, None)
        self.capacity.release(fn.name, qualifier)
        return {}

    def _serve_url(self, request: BaseHTTPRequestHandler) -> None:
        """A function URL: ``/fn/<namespace>/<function>/<qualifier>/<path>`` forwards ``/<path>`` to the
        backend of the version the qualifier resolves to now (an alias's weights pick one at random)."""
        import random
        import urllib.error
        import urllib.request

        parts = request.path.split("/", 5)
        length = int(request.headers.get("Content-Length", "0") or 0)
        body = request.rfile.read(length) if length else None
        with self._lock:
            fn = self.functions.get((parts[2], parts[3])) if len(parts) >= 5 and parts[1] == "fn" else None
            qualifier = parts[4] if fn is not None else ""
            if fn is None or qualifier not in fn.urls:
                self._send(request, 404, b'{"error": "no such function URL"}', "application/json")
                return
            version = self._resolve(fn, qualifier)
            alias = fn.aliases.get(qualifier)
            if alias is not None:
                for entry in alias["RoutingConfig"]["AdditionalVersionWeights"]:
                    if random.random() < float(entry["Weight"]):
                        version = entry["Version"]
                        break
            backend = self.backends.get((fn.name, version))
        path = "/" + (parts[5] if len(parts) > 5 else "")
        with self._lock:
            self.url_requests.append((qualifier, version, request.command, path))
        if backend is None:
            self._send(request, 502, b'{"error": "version has no running instance"}', "application/json")
            return
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "content-type")}
        forward = urllib.request.Request(backend + path, data=body, method=request.command, headers=headers)
        try:
            with urllib.request.urlopen(forward, timeout=60) as answer:
                status, payload, kind = answer.status, answer.read(), answer.headers.get("Content-Type", "")
        except urllib.error.HTTPError as error:
            status, payload, kind = error.code, error.read(), error.headers.get("Content-Type", "")
        except (urllib.error.URLError, OSError) as error:  # the instance did not answer
            status, payload, kind = 502, json.dumps({"error": str(error)}).encode(), "application/json"
        self._send(request, status, payload, kind or "application/json")

    # ----- Cloud Monitor -----
    def _get_monitor_data(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("Namespace") != MONITOR_NAMESPACE:
            raise ApiError("InvalidParameterValue", f"namespace {params.get('Namespace')} is not supported")
        metric = params.get("MetricName", "")
        if metric not in MONITOR_METRICS:
            raise ApiError("InvalidParameterValue", f"metric {metric} does not exist in {MONITOR_NAMESPACE}")
        if int(params.get("Period", 300)) not in MONITOR_PERIODS_S:
            raise ApiError("InvalidParameterValue", f"period {params.get('Period')} is not supported")
        start = int(datetime.fromisoformat(params["StartTime"]).timestamp())
        end = int(datetime.fromisoformat(params["EndTime"]).timestamp())
        points = []
        for instance in params.get("Instances", []):
            dims = {d["Name"]: d["Value"] for d in instance["Dimensions"]}
            unknown = set(dims) - MONITOR_DIMENSIONS
            if (
                unknown
                or not {"functionName", "namespace"} <= set(dims)
                or ("version" in dims) == ("alias" in dims)
            ):
                raise ApiError(
                    "InvalidParameterValue",
                    f"dimensions {sorted(dims)}: SCF metrics take functionName, namespace and one of version / alias",
                )
            kind = "alias" if "alias" in dims else "version"
            series = sorted(self.metrics.get((dims["functionName"], kind, dims[kind], metric), []))
            window = [(t, v) for t, v in series if start <= t <= end]
            points.append(
                {
                    "Dimensions": instance["Dimensions"],
                    "Timestamps": [float(t) for t, _ in window],
                    "Values": [v for _, v in window],
                }
            )
        return {
            "Period": int(params.get("Period", 60)),
            "MetricName": metric,
            "DataPoints": points,
            "StartTime": params["StartTime"],
            "EndTime": params["EndTime"],
            "Msg": "",
        }

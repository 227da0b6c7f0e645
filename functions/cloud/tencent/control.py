"""Tencent Cloud: SCF control (versions, aliases, provisioned concurrency); the metric source is
:mod:`functions.cloud.tencent.metrics`.

Calls go through ``tencentcloud-sdk-python`` (TC3-HMAC-SHA256 signed API 3.0); transient errors
(``RequestLimitExceeded*``, ``InternalError*``, ``FailedOperation.ProvisionedInProgress``,
``FailedOperation.FunctionStatusError`` while an update deploys, 5xx answers, network timeouts) are retried by :class:`functions.cloud.retry.RetryPolicy`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from core.contract import SCF_URL_TRIGGER, scf_url_of_trigger_desc, scf_url_trigger_desc
from functions.cloud.retry import RetryPolicy
from functions.cloud.types import AliasRouting, Capacity, CloudError, InvokeResult
from functions.secrets import reveal

_TRANSIENT_CODES = (
    "ClientNetworkError",
    "ServerNetworkError",
    "FailedOperation.ProvisionedInProgress",
    "FailedOperation.FunctionStatusError",  # still deploying the last configuration change
)
_TRANSIENT_PREFIXES = ("RequestLimitExceeded", "InternalError")
FUNCTION_ACTIVE = "Active"
# GetFunction Status values that waiting does not turn into Active (doc 583/115197, the status list)
FUNCTION_FAILED = frozenset({"CreateFailed", "UpdateFailed", "PublishFailed", "DeleteFailed"})


def is_transient(error: BaseException) -> bool:
    """True for Tencent Cloud errors worth retrying: throttling, internal errors, 5xx, timeouts."""
    from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

    if not isinstance(error, TencentCloudSDKException):
        return False
    code = error.get_code() or ""
    return code in _TRANSIENT_CODES or code.startswith(_TRANSIENT_PREFIXES)


@dataclass(frozen=True)
class TencentEndpoint:
    """Where and as whom to call. ``endpoint`` overrides the service domain (``host:port``, tests);
    ``timeout_s`` is the per-request timeout in seconds; ``session_token`` goes with temporary keys."""

    region: str
    secret_id: SecretStr
    secret_key: SecretStr
    endpoint: str | None = None
    protocol: str = "https"
    timeout_s: float = 10.0
    session_token: SecretStr | None = None

    def __post_init__(self) -> None:  # credentials as SecretStr (strings given are wrapped): masked repr
        for name in ("secret_id", "secret_key", "session_token"):
            value = getattr(self, name)
            object.__setattr__(self, name, value if isinstance(value, SecretStr | None) else SecretStr(value))

    def client(self, service: str, version: str) -> Any:
        """A signed ``CommonClient`` for ``service`` at API ``version``."""
        from tencentcloud.common import credential
        from tencentcloud.common.common_client import CommonClient
        from tencentcloud.common.profile.client_profile import ClientProfile
        from tencentcloud.common.profile.http_profile import HttpProfile

        http = HttpProfile(protocol=self.protocol, endpoint=self.endpoint, reqTimeout=self.timeout_s)
        cred = credential.Credential(
            self.secret_id.get_secret_value(), self.secret_key.get_secret_value(), reveal(self.session_token)
        )
        return CommonClient(service, version, cred, self.region, profile=ClientProfile(httpProfile=http))


def _call(client: Any, retry: RetryPolicy, action: str, params: dict[str, Any]) -> dict[str, Any]:
    """``action`` with retries; the ``Response`` object, or :class:`CloudError` naming the code."""
    from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

    try:
        return retry.call(action, lambda: client.call_json(action, params)["Response"], is_transient)
    except TencentCloudSDKException as error:
        raise CloudError(action, error.get_code(), error.get_message()) from error


@dataclass
class ScfControl:
    """One SCF function and its alias (the SCF actuator). Versions are strings ("1", "2", ...).
    active_timeout_s / active_poll_s: how long :meth:`publish_version` waits for the function to be
    Active, and how often it looks (seconds)."""

    endpoint: TencentEndpoint
    function: str
    alias_name: str
    namespace: str = "default"
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    active_timeout_s: float = 600.0
    active_poll_s: float = 2.0
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        self._scf = self.endpoint.client("scf", "2018-04-16")

    def _call(self, action: str, **params: Any) -> dict[str, Any]:
        return _call(
            self._scf,
            self.retry,
            action,
            {"FunctionName": self.function, "Namespace": self.namespace, **params},
        )

    def alias(self) -> AliasRouting:
        answer = self._call("GetAlias", Name=self.alias_name)
        weights = (answer.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or []
        return AliasRouting(
            primary=answer["FunctionVersion"],
            weights={w["Version"]: float(w["Weight"]) for w in weights},
            description=answer.get("Description") or "",
        )

    def set_routing(self, primary: str, weights: Mapping[str, float]) -> None:
        routing = {"AdditionalVersionWeights": [{"Version": v, "Weight": w} for v, w in weights.items()]}
        self._call("UpdateAlias", Name=self.alias_name, FunctionVersion=primary, RoutingConfig=routing)

    def versions(self) -> dict[str, str]:
        found: dict[str, str] = {}
        offset = 0
        while True:
            page = self._call("ListVersionByFunction", Offset=offset, Limit=100, Order="ASC")
            for entry in page.get("Versions") or []:
                if entry["Version"] != "$LATEST":
                    found[entry["Version"]] = entry.get("Description") or ""
            offset += 100
            if offset >= int(page.get("TotalCount", 0)):
                return found

    def set_environment(self, variables: Mapping[str, str]) -> None:
        current = self._call("GetFunction", Qualifier="$LATEST").get("Environment") or {}
        merged = {v["Key"]: v["Value"] for v in current.get("Variables") or []} | dict(variables)
        env = {"Variables": [{"Key": k, "Value": v} for k, v in merged.items()]}
        self._call("UpdateFunctionConfiguration", Environment=env)

    def wait_active(self) -> None:
        """Poll ``GetFunction`` until ``Status == "Active"``: ``PublishVersion`` answers
        ``FailedOperation.PublishVersion`` ("当前函数状态无法发布版本，请在状态为正常时发布", SCF's error
        codes) while a configuration change still deploys. :class:`CloudError` after ``active_timeout_s``."""
        deadline = time.monotonic() + self.active_timeout_s
        while True:
            status = self._call("GetFunction", Qualifier="$LATEST").get("Status")
            if status == FUNCTION_ACTIVE:
                return
            if status in FUNCTION_FAILED or time.monotonic() >= deadline:
                raise CloudError(
                    "GetFunction",
                    "FunctionNotActive",
                    f"function {self.function} is {status}, not Active (waited up to {self.active_timeout_s} s)",
                )
            self.sleep(self.active_poll_s)

    def publish_version(self, description: str) -> str:
        self.wait_active()
        return str(self._call("PublishVersion", Description=description)["FunctionVersion"])

    def routed_versions(self) -> set[str]:
        """Every version some alias of the function routes to (its version or a weighted one)."""
        routed: set[str] = set()
        offset = 0
        while True:
            page = self._call("ListAliases", Offset=offset, Limit=100)
            for alias in page.get("Aliases") or []:
                routed.add(str(alias["FunctionVersion"]))
                weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or []
                routed |= {str(w["Version"]) for w in weights}
            offset += 100
            if offset >= int(page.get("TotalCount", 0)):
                return routed

    def delete_version(self, version: str) -> None:
        """Delete one published version (``DeleteFunction`` with ``Qualifier``: "填写需要删除的版本号")."""
        if not version.isdigit():
            raise ValueError(f"only a published version can be deleted, got {version!r}")
        self._call("DeleteFunction", Qualifier=version)

    def scaling_qualifier(self, routing: AliasRouting) -> str:
        return routing.primary

    def function_url(self, qualifier: str) -> str:
        """The function URL of ``qualifier`` (an alias or version), created when it has none: SCF binds
        at most one URL to each ("每一个别名或者版本仅允许创建一个 URL", doc 583/100227)."""
        try:
            answer = self._call(
                "CreateTrigger",
                TriggerName=SCF_URL_TRIGGER,
                Type="http",
                Qualifier=qualifier,
                Enable="OPEN",
                TriggerDesc=scf_url_trigger_desc(),
            )
            triggers = [answer.get("TriggerInfo") or {}]
        except CloudError as error:
            if not error.code.startswith("ResourceInUse.Trigger"):  # .Trigger / .TriggerName: it exists
                raise
            triggers = self._call("ListTriggers").get("Triggers") or []
        for trigger in triggers:
            if trigger.get("Type") == "http" and trigger.get("Qualifier") == qualifier:
                url = scf_url_of_trigger_desc(str(trigger.get("TriggerDesc") or ""))
                if url:
                    return url
        raise CloudError(
            "CreateTrigger", "NoFunctionUrl", f"no function URL found for {self.function}:{qualifier}"
        )

    def delete_function_url(self, qualifier: str) -> None:
        """Delete the URL :meth:`function_url` created on ``qualifier`` (none there: nothing to do)."""
        try:
            self._call("DeleteTrigger", TriggerName=SCF_URL_TRIGGER, Type="http", Qualifier=qualifier)
        except CloudError as error:
            if error.code != "ResourceNotFound.Trigger":
                raise

    def capacity(self, version: str) -> Capacity:
        answer = self._call("GetProvisionedConcurrencyConfig", Qualifier=version)
        for entry in answer.get("Allocated") or []:
            if entry.get("Qualifier") == version:
                return Capacity(
                    requested=int(entry.get("AllocatedProvisionedConcurrencyNum") or 0),
                    ready=int(entry.get("AvailableProvisionedConcurrencyNum") or 0),
                )
        return Capacity(0, 0)

    def set_capacity(self, version: str, instances: int) -> None:
        if self.capacity(version).requested == instances:
            return
        if instances == 0:
            self._call("DeleteProvisionedConcurrencyConfig", Qualifier=version)
        else:
            self._call(
                "PutProvisionedConcurrencyConfig",
                Qualifier=version,
                VersionProvisionedConcurrencyNum=instances,
            )

    def invoke(self, qualifier: str, payload: Mapping[str, Any], asynchronous: bool = False) -> InvokeResult:
        answer = self._call(
            "Invoke",
            Qualifier=qualifier,
            InvocationType="Event" if asynchronous else "RequestResponse",
            ClientContext=json.dumps(dict(payload)),
        )
        # Result.InvokeResult is "no longer maintained" (SDK model); a function error fills ErrMsg.
        # An asynchronous call returns neither: accepted without an API error is success.
        result = answer.get("Result") or {}
        error = result.get("ErrMsg") or ""
        return InvokeResult(ok=not error, body=str(error or result.get("RetMsg") or ""))

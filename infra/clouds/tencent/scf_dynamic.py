"""What ``tencentcloud-iac-pulumi`` 0.2.3 cannot do on SCF, as Pulumi dynamic resources over
``tencentcloud-sdk-python-scf``: the alias's function URL, and the per-instance concurrency.

- :class:`ScfFunctionUrl`: a function URL bound to the alias (infra/README.md, "Tencent endpoint"). The
  provider that 0.2.3 wraps (terraform-provider-tencentcloud v1.82.42) creates ``Function.triggers``
  without a ``Qualifier`` (``service_tencentcloud_scf.go`` ``CreateTriggers``), so an ``http`` trigger there
  lands on ``$LATEST``, which holds no provisioned concurrency and bypasses the alias that ``llmfn
  promote`` moves; ``TriggerConfig`` only updates an existing trigger. So this resource calls
  ``CreateTrigger`` (``Type="http"``, ``Qualifier=<alias>``, ``Enable="OPEN"``) and ``DeleteTrigger`` on
  destroy. DELETE this resource once a Pulumi package carries ``tencentcloud_scf_trigger`` (provider
  v1.83.16 and later) with a ``qualifier``: remove it from the program in one release (this module still
  installed, so Pulumi can run its delete), then delete the module.
- :class:`ScfInstanceConcurrency`: ``UpdateFunctionConfiguration`` with ``InstanceConcurrencyConfig``
  (SDK model: "单实例多并发配置。只支持Web函数", ``MaxConcurrency`` "取值范围 [1,100]"), which 0.2.3's
  ``Function`` has no argument for. It runs after the function's own updates and before the version is
  published (the stack makes the version depend on it), so the version freezes it; it then waits until
  the function is Active, since ``PublishVersion`` answers ``FailedOperation.PublishVersion`` ("当前函数
  状态无法发布版本，请在状态为正常时发布") while it is not.

Credentials: the same environment the provider reads (``TENCENTCLOUD_SECRET_ID``,
``TENCENTCLOUD_SECRET_KEY``, ``TENCENTCLOUD_SECURITY_TOKEN``: v1.82.42 ``tencentcloud/provider.go``).
``endpoint`` (``host:port`` over http) points the calls at a stand-in; None: the real API.

Pulumi's mocks do not run a dynamic provider: ``tests/infra/test_tencent.py`` runs these providers'
create / update / delete against the SCF emulator, and the program under mocks for the wiring.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, Resource, ResourceProvider, UpdateResult

from core.contract import SCF_URL_TRIGGER, scf_url_of_trigger_desc, scf_url_trigger_desc
from core.errors import LlmfnError

ACTIVE = "Active"
# GetFunction Status values that will not become Active by waiting (doc 583/115197's status list)
FAILED_STATUSES = frozenset({"CreateFailed", "UpdateFailed", "PublishFailed", "DeleteFailed"})
WAIT_POLL_S = 2.0
WAIT_TIMEOUT_S = 600.0  # image functions take minutes to deploy


class ScfCallError(LlmfnError, RuntimeError):
    """An SCF call the dynamic resource made failed; the message names the action and SCF's code."""


def scf_client(region: str, endpoint: str | None = None) -> Any:
    """A typed ``ScfClient`` with the provider's credentials from the environment."""
    from tencentcloud.common import credential
    from tencentcloud.common.profile.client_profile import ClientProfile
    from tencentcloud.common.profile.http_profile import HttpProfile
    from tencentcloud.scf.v20180416 import scf_client as scf

    secret_id = os.environ.get("TENCENTCLOUD_SECRET_ID", "")
    secret_key = os.environ.get("TENCENTCLOUD_SECRET_KEY", "")
    if not (secret_id and secret_key):
        raise ScfCallError(
            "TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY must be set (as for the provider)"
        )
    cred = credential.Credential(secret_id, secret_key, os.environ.get("TENCENTCLOUD_SECURITY_TOKEN") or None)
    http = HttpProfile(endpoint=endpoint, protocol="http") if endpoint else HttpProfile()
    return scf.ScfClient(cred, region, ClientProfile(httpProfile=http))


def call(client: Any, action: str, params: dict[str, Any]) -> dict[str, Any]:
    """``action`` through the SDK; the ``Response`` object, or :class:`ScfCallError` naming SCF's code."""
    from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

    try:
        return dict(client.call_json(action, params)["Response"])
    except TencentCloudSDKException as error:
        raise ScfCallError(f"{action}: {error.get_code()}: {error.get_message()}") from error


def wait_active(
    client: Any,
    function: str,
    namespace: str,
    timeout_s: float = WAIT_TIMEOUT_S,
    poll_s: float = WAIT_POLL_S,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Poll ``GetFunction`` until ``Status == "Active"`` (seconds: ``timeout_s``, every ``poll_s``)."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = call(client, "GetFunction", {"FunctionName": function, "Namespace": namespace}).get("Status")
        if status == ACTIVE:
            return
        if status in FAILED_STATUSES or time.monotonic() >= deadline:
            raise ScfCallError(f"function {function} is {status}, not {ACTIVE} (waited up to {timeout_s} s)")
        sleep(poll_s)


class FunctionUrlProvider(ResourceProvider):
    """Create: ``CreateTrigger`` type http on the qualifier, and its URL; delete: ``DeleteTrigger``."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        client = scf_client(props["region"], props.get("endpoint") or None)
        answer = call(
            client,
            "CreateTrigger",
            {
                "FunctionName": props["function_name"],
                "Namespace": props["namespace"],
                "TriggerName": SCF_URL_TRIGGER,
                "Type": "http",
                "Qualifier": props["qualifier"],
                "Enable": "OPEN",
                "TriggerDesc": scf_url_trigger_desc(),
            },
        )
        url = scf_url_of_trigger_desc(str((answer.get("TriggerInfo") or {}).get("TriggerDesc") or ""))
        if url is None:
            raise ScfCallError(f"CreateTrigger answered no URL: {answer.get('TriggerInfo')}")
        outs = {**props, "url": url}
        return CreateResult(
            id_=f"{props['namespace']}/{props['function_name']}:{props['qualifier']}", outs=outs
        )

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        keys = ("function_name", "namespace", "qualifier", "region")
        changed = [k for k in keys if olds.get(k) != news.get(k)]
        # one URL per alias or version (doc 583/100227): delete the old one before creating the new
        return DiffResult(changes=bool(changed), replaces=changed, delete_before_replace=True)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        client = scf_client(props["region"], props.get("endpoint") or None)
        try:
            call(
                client,
                "DeleteTrigger",
                {
                    "FunctionName": props["function_name"],
                    "Namespace": props["namespace"],
                    "TriggerName": SCF_URL_TRIGGER,
                    "Type": "http",
                    "Qualifier": props["qualifier"],
                },
            )
        except ScfCallError as error:
            if "ResourceNotFound" not in str(error):  # already gone (with its function): nothing to do
                raise


class ScfFunctionUrl(Resource):
    """The function URL of ``function_name:qualifier``; ``url`` is its public address."""

    url: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        function_name: pulumi.Input[str],
        namespace: str,
        qualifier: pulumi.Input[str],
        region: str,
        endpoint: str | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {
            "function_name": function_name,
            "namespace": namespace,
            "qualifier": qualifier,
            "region": region,
            "endpoint": endpoint,
            "url": None,
        }
        super().__init__(FunctionUrlProvider(), name, props, opts)


class InstanceConcurrencyProvider(ResourceProvider):
    """Create/update: wait Active, set ``MaxConcurrency``, wait Active. Delete: nothing (the setting goes
    with the function)."""

    def _apply(self, props: dict[str, Any]) -> dict[str, Any]:
        client = scf_client(props["region"], props.get("endpoint") or None)
        name, namespace = props["function_name"], props["namespace"]
        wait_active(client, name, namespace)
        call(
            client,
            "UpdateFunctionConfiguration",
            {
                "FunctionName": name,
                "Namespace": namespace,
                "InstanceConcurrencyConfig": {
                    "DynamicEnabled": "FALSE",  # "'FALSE'时是静态并发": exactly MaxConcurrency
                    "MaxConcurrency": int(props["max_concurrency"]),
                },
            },
        )
        wait_active(client, name, namespace)
        return dict(props)

    def create(self, props: dict[str, Any]) -> CreateResult:
        outs = self._apply(props)
        return CreateResult(id_=f"{props['namespace']}/{props['function_name']}", outs=outs)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        keys = ("function_name", "namespace", "region", "max_concurrency", "frozen")
        changed = [k for k in keys if olds.get(k) != news.get(k)]
        replaces = [k for k in changed if k in ("function_name", "namespace", "region")]
        return DiffResult(changes=bool(changed), replaces=replaces, delete_before_replace=False)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=self._apply(news))

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        return None


class ScfInstanceConcurrency(Resource):
    """``MaxConcurrency`` of a web function's instances. ``frozen`` (what the next version freezes)
    re-runs it, and its wait for Active, before every new version."""

    def __init__(
        self,
        name: str,
        *,
        function_name: pulumi.Input[str],
        namespace: str,
        max_concurrency: int,
        region: str,
        frozen: pulumi.Input[str],
        endpoint: str | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {
            "function_name": function_name,
            "namespace": namespace,
            "max_concurrency": max_concurrency,
            "region": region,
            "frozen": frozen,
            "endpoint": endpoint,
        }
        super().__init__(InstanceConcurrencyProvider(), name, props, opts)

"""The Tencent stack's first day, in order, against the stand-ins: deploy, a chat request through the
endpoint the stack outputs (without and with the key), a scaler tick that moves provisioned
concurrency, a second deploy with a new model revision, ``llmfn promote`` through its canary steps, a
rollback of a third revision, destroy; then nothing is left (no versions, triggers, provisioned configs).

Pulumi's mocks run the program (the wiring: which resources, which inputs) but no provider code, so
:class:`ProviderStandIn` plays terraform-provider-tencentcloud v1.82.42 on the SCF emulator for the
``tencentcloud:Scf/*`` resources (the calls its create / update / delete send, infra/README.md), and the
stack's own dynamic providers (``infra.clouds.tencent.scf_dynamic``) run for real against the same emulator. What a
provider computes (the published version, the function URL) comes from the emulator, not the mocks.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from typer.testing import CliRunner

from core.contract import ENV_CLOUD_ENDPOINT, ENV_PREWARM_URL, ENV_STATE_ENDPOINT
from functions.cloud.tencent.entry_web import EVENT_PATH, event_function_app
from functions.scaler.handler import main_handler
from infra.clouds.tencent.scf_dynamic import FunctionUrlProvider, InstanceConcurrencyProvider
from llmfn.cli import app
from tests.cloud.aws_proxy import AwsProxy
from tests.cloud.cos_standin import CosStandIn
from tests.cloud.scf_emulator import ScfEmulator
from tests.functions.helpers import running, wait_ready
from tests.infra.mocks import REPO_ROOT, StackRun, example_with, plain, run_stack

EXAMPLE = "Pulumi.example-tencent.yaml"
API_KEY = "sk-rehearsal-0123456789abcdef"
REGION = "ap-guangzhou"
FUNCTION = "tencentcloud:Scf/function:Function"
VERSION = "tencentcloud:Scf/functionVersion:FunctionVersion"
ALIAS = "tencentcloud:Scf/functionAlias:FunctionAlias"
DYNAMIC = "pulumi-python:dynamic:Resource"
REVISIONS = ("1" * 40, "2" * 40, "3" * 40)


class ProviderStandIn:
    """Applies one ``pulumi up`` (the mocked registrations) to the emulator as the provider would, and
    tracks the stack's state between runs. Only the paths this stack takes are played."""

    def __init__(self, scf: ScfEmulator) -> None:
        self.scf = scf
        self.last_run: StackRun | None = None
        self.state: dict[str, dict[str, Any]] = {}  # logical name -> {"inputs", "outs"}

    def call(self, action: str, params: dict[str, Any]) -> dict[str, Any]:
        from infra.clouds.tencent.scf_dynamic import call, scf_client

        return call(scf_client(REGION, self.scf.endpoint), action, params)

    def _props(self, run: StackRun, name: str) -> dict[str, Any]:
        inputs = next(r.inputs for r in run.registered if r.name == name)
        return {k: v for k, v in inputs.items() if k != "__provider"} | {"endpoint": self.scf.endpoint}

    def up(self, run: StackRun) -> dict[str, Any]:
        """Apply ``run`` in the program's dependency order; returns the outputs the engine would export."""
        for resource in [r for r in run.registered if r.typ == FUNCTION]:
            self._function(resource.name, resource.inputs)
        concurrency = self._props(run, "llmfn-concurrency")
        concurrency["function_name"] = self.state["llmfn-function"]["outs"]["name"]
        old = self.state.get("llmfn-concurrency")
        provider = InstanceConcurrencyProvider()
        if old is None:
            provider.create(concurrency)
        elif provider.diff("id", old["inputs"], concurrency).changes:
            provider.update("id", old["inputs"], concurrency)
        self.state["llmfn-concurrency"] = {"inputs": concurrency, "outs": concurrency}
        version = self._version(run.one(VERSION).inputs)
        self._alias(run.one(ALIAS).inputs, version)
        url_props = self._props(run, "llmfn-url")
        url_props["qualifier"] = run.one(ALIAS).inputs["name"]
        if "llmfn-url" not in self.state:
            created = FunctionUrlProvider().create(url_props)
            self.state["llmfn-url"] = {"inputs": url_props, "outs": created.outs}
        else:
            assert not FunctionUrlProvider().diff("id", self.state["llmfn-url"]["inputs"], url_props).changes
        return run.outputs | {"endpointUrl": self.state["llmfn-url"]["outs"]["url"], "version": version}

    def _function(self, name: str, inputs: dict[str, Any]) -> None:
        env = plain(inputs["environment"])
        variables = {"Variables": [{"Key": k, "Value": v} for k, v in sorted(env.items())]}
        old = self.state.get(name)
        if old is None:  # resource_tc_scf_function.go create: CreateFunction, then waitScfFunctionReady
            (image,) = inputs["imageConfigs"]
            self.call(
                "CreateFunction",
                {
                    "FunctionName": inputs["name"],
                    "Namespace": inputs["namespace"],
                    "Type": "HTTP" if inputs["funcType"] == "HTTP" else "Event",
                    "MemorySize": inputs["memSize"],
                    "Timeout": inputs["timeout"],
                    "Description": inputs["description"],
                    "Environment": variables,
                    "Code": {"ImageConfig": {"ImageType": image["imageType"], "ImageUri": image["imageUri"]}},
                },
            )
        elif (
            plain(old["inputs"]["environment"]) != env
        ):  # update: HasChange("environment") -> ModifyFunctionConfig
            self.call(
                "UpdateFunctionConfiguration",
                {"FunctionName": inputs["name"], "Namespace": inputs["namespace"], "Environment": variables},
            )
        self.state[name] = {"inputs": inputs, "outs": {"name": inputs["name"]}}

    def _version(self, inputs: dict[str, Any]) -> str:
        old = self.state.get("llmfn-version")
        if old is not None and old["inputs"]["description"] == inputs["description"]:
            return str(old["outs"]["version"])
        # every input ForceNew: a new PublishVersion; the old version is retained (retain_on_delete)
        published = self.call(
            "PublishVersion",
            {
                "FunctionName": inputs["functionName"],
                "Namespace": inputs["namespace"],
                "Description": inputs["description"],
            },
        )
        version = str(published["FunctionVersion"])
        self.state["llmfn-version"] = {"inputs": inputs, "outs": {"version": version}}
        return version

    def _alias(self, inputs: dict[str, Any], version: str) -> None:
        if "llmfn-alias" in self.state:  # functionVersion / routingConfig ignored: promote's after creation
            return
        self.call(
            "CreateAlias",
            {
                "FunctionName": inputs["functionName"],
                "Namespace": inputs["namespace"],
                "Name": inputs["name"],
                "FunctionVersion": version,
            },
        )
        self.state["llmfn-alias"] = {"inputs": inputs, "outs": {}}

    def destroy(self) -> None:
        """Reverse dependency order: the URL, the alias, the functions (their versions with them)."""
        url = self.state.pop("llmfn-url")
        FunctionUrlProvider().delete("id", url["outs"])
        alias = self.state.pop("llmfn-alias")["inputs"]
        self.call(
            "DeleteAlias",
            {"FunctionName": alias["functionName"], "Namespace": alias["namespace"], "Name": alias["name"]},
        )
        InstanceConcurrencyProvider().delete("id", self.state.pop("llmfn-concurrency")["inputs"])
        self.state.pop("llmfn-version")  # retained: goes with the function
        for name in ("llmfn-scaler", "llmfn-function"):
            inputs = self.state.pop(name)["inputs"]
            self.call("DeleteFunction", {"FunctionName": inputs["name"], "Namespace": inputs["namespace"]})


@pytest.fixture
def cloud(
    scf: ScfEmulator, moto_reset: str, aws_proxy: AwsProxy, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Any]]:
    monkeypatch.setenv("TENCENTCLOUD_SECRET_ID", scf.secret_id)  # the provider's (and pulumi's) keys
    monkeypatch.setenv("TENCENTCLOUD_SECRET_KEY", scf.secret_key)
    for key in ("TENCENTCLOUD_SECRETID", "TENCENTCLOUD_SECRETKEY", "TENCENTCLOUD_SESSIONTOKEN"):
        monkeypatch.delenv(key, raising=False)  # an image function's environment has none
    scf.update_s = 0.05  # "Updating" after every configuration change: publishing must wait for Active
    cos = CosStandIn(aws_proxy.url).start()
    boto3.client("s3", region_name="us-east-1", endpoint_url=moto_reset).create_bucket(
        Bucket="llmfn-state-1250000000"
    )
    from functions.api.router import create_app
    from functions.settings import ServeSettings

    inference = create_app(ServeSettings(engine="null", model_name="tiny", api_key=API_KEY))
    with running(inference) as instance:
        wait_ready(instance, api_key=API_KEY)
        yield {"scf": scf, "cos": cos, "instance": instance}
    cos.stop()


def _live_smoke() -> Any:
    """bench/live_smoke.py (a script, not a package): its Tencent checks run here against the stand-ins."""
    spec = importlib.util.spec_from_file_location("live_smoke", REPO_ROOT / "bench" / "live_smoke.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _deploy(provider: ProviderStandIn, revision: str) -> dict[str, Any]:
    run = run_stack(example_with(EXAMPLE, modelRevision=revision, apiKey=API_KEY))
    provider.last_run = run
    return provider.up(run)


def _metrics(scf: ScfEmulator, qualifier: str, errors: float = 0.0) -> None:
    minute = int((datetime.now(UTC) - timedelta(seconds=120)).timestamp())
    for metric, value in (
        ("Invocation", 100.0),
        ("Error", errors),
        ("ConcurrentExecutions", 6.0),
        ("Duration", 400.0),
    ):
        scf.put_metric("qwen3-4b-infer", qualifier, metric, minute, value)


def _promote(outputs: dict[str, Any], revision: str, scf: ScfEmulator, tmp_path: Path) -> dict[str, Any]:
    outputs_file = tmp_path / f"outputs-{revision[:4]}.json"
    outputs_file.write_text(json.dumps(outputs))
    report = tmp_path / f"report-{revision[:4]}.json"
    args = [
        "promote", "--stack", "prod", "--outputs", str(outputs_file), "--model-revision", revision,
        "--api-endpoint", f"http://{scf.endpoint}", "--interval", "0", "--poll", "0.01", "--warm-timeout", "10",
        "--max-error-rate", "0.05", "--report", str(report),
    ]  # fmt: skip
    env = {
        "TENCENTCLOUD_SECRETID": scf.secret_id,
        "TENCENTCLOUD_SECRETKEY": scf.secret_key,
        "LLMFN_API_KEY": API_KEY,
    }
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code in (0, 1), result.output
    return dict(json.loads(report.read_text()))


def test_first_day_on_tencent(cloud: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scf: ScfEmulator = cloud["scf"]
    monkeypatch.setenv("TENCENTCLOUD_SECRETID", scf.secret_id)  # the operator's llmfn clients (live_smoke)
    monkeypatch.setenv("TENCENTCLOUD_SECRETKEY", scf.secret_key)
    provider = ProviderStandIn(scf)

    # 1. deploy: the function, its concurrency, version 1, the alias, the alias's function URL, the scaler
    outputs = _deploy(provider, REVISIONS[0])
    endpoint = outputs["endpointUrl"]
    assert endpoint == scf.function_url("qwen3-4b-infer", "live")
    fn = scf.functions[("default", "qwen3-4b-infer")]
    assert fn.versions["1"]["InstanceConcurrencyConfig"]["MaxConcurrency"] == 8  # frozen by the version
    assert not [a for a, _ in scf.calls if a.startswith("CreateService")]
    scf.serve_version("qwen3-4b-infer", "1", cloud["instance"])
    smoke, api = _live_smoke(), f"http://{scf.endpoint}"  # bench/live_smoke.py's checks for a real account
    checked = smoke.tencent_checks_after_deploy(outputs, 8, api_endpoint=api)
    assert checked == {"url": endpoint, "max_concurrency": 8}

    # 2. one chat request through the endpoint the stack outputs, without and with the key
    body = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    refused = httpx.post(endpoint + "/v1/chat/completions", json=body, timeout=30)
    answered = httpx.post(
        endpoint + "/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=30,
    )
    assert refused.status_code == 401, refused.text
    assert answered.status_code == 200 and answered.json()["choices"][0]["message"]["content"] is not None

    # 3. a scaler tick (the scaler image, role keys in the request headers) moves provisioned concurrency
    assert provider.last_run is not None
    scaler = next(r.inputs for r in provider.last_run.registered if r.name == "llmfn-scaler")
    scaler_env = dict(plain(scaler["environment"]))
    scaler_env |= {
        ENV_CLOUD_ENDPOINT: f"http://{scf.endpoint}",
        ENV_STATE_ENDPOINT: cloud["cos"].url,
        ENV_PREWARM_URL: endpoint,  # what the engine resolves from the URL resource's output
    }
    _metrics(scf, "live")
    with pytest.MonkeyPatch.context() as patch:
        for key, value in scaler_env.items():
            patch.setenv(key, value)
        for key in ("TENCENTCLOUD_SECRETID", "TENCENTCLOUD_SECRETKEY"):
            patch.delenv(key)  # the scaler image's environment has no keys: they come in the headers
        with running(event_function_app(main_handler)) as scaler_url:
            headers = {
                "X-Scf-Secret-Id": scf.secret_id,
                "X-Scf-Secret-Key": scf.secret_key,
                "X-Scf-Session-Token": "t",
            }
            tick = httpx.post(
                scaler_url + EVENT_PATH,
                json={"Type": "Timer", "Time": datetime.now(UTC).isoformat()},
                headers=headers,
                timeout=60,
            )
    assert tick.status_code == 200 and tick.json()["action"] == "scaled", tick.text
    reserved = tick.json()["decision"]["reserved"]
    assert reserved > 0 and scf.capacity.requested("qwen3-4b-infer", "1") == reserved
    scf.prewarm("qwen3-4b-infer", "1", reserved)

    # 4. a second deploy with a new model revision: a new version, the alias untouched
    outputs = _deploy(provider, REVISIONS[1])
    assert outputs["version"] == "2" and fn.aliases["live"]["FunctionVersion"] == "1"
    assert fn.versions["2"]["InstanceConcurrencyConfig"]["MaxConcurrency"] == 8
    scf.serve_version("qwen3-4b-infer", "2", cloud["instance"])

    # 5. llmfn promote through the canary steps (smoke over the canary's own function URL)
    _metrics(scf, "2")
    report = _promote(outputs, REVISIONS[1], scf, tmp_path)
    assert report["status"] == "promoted", report["reason"]
    assert [s["percent"] for s in report["steps"]] == [10, 50, 100]
    assert fn.aliases["live"]["FunctionVersion"] == "2"
    assert scf.function_url("qwen3-4b-infer", "2") is None
    assert smoke.tencent_checks_after_promote(outputs, report, api_endpoint=api) == {"versions": ["1", "2"]}
    # no canary step routed traffic to a version without warm capacity (the alias's creation on day one,
    # before the scaler's first tick, is the only unwarmed route)
    assert scf.unwarmed_routes() == scf.alias_updates[:1]

    # 6. a third revision whose canary fails: rolled back, the alias as before; the old versions pruned
    outputs = _deploy(provider, REVISIONS[2])
    _metrics(scf, "3", errors=30.0)
    scf.serve_version("qwen3-4b-infer", "3", cloud["instance"])
    report = _promote(outputs, REVISIONS[2], scf, tmp_path)
    assert report["status"] == "rolled-back" and "error rate" in report["reason"]
    assert fn.aliases["live"]["FunctionVersion"] == "2"
    assert fn.aliases["live"]["RoutingConfig"]["AdditionalVersionWeights"] == []
    assert scf.capacity.requested("qwen3-4b-infer", "3") == 0

    # nothing orphaned while the stack lives: one URL (the alias's), provisioned only where the alias
    # points, and the promotion's canary URLs gone
    assert set(fn.urls) == {"live"}
    assert scf.capacity.qualifiers("qwen3-4b-infer") == ["2"]

    # 7. destroy, then nothing is left
    provider.destroy()
    smoke.tencent_checks_after_destroy(outputs, api_endpoint=api)
    assert scf.functions == {}
    assert scf.capacity.qualifiers("qwen3-4b-infer") == []
    assert provider.state == {}

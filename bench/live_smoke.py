"""A real-cloud smoke of the whole promise: deploy, call over HTTP, one scaler tick, promote, destroy.

Not a test (it needs an account, the Pulumi CLI and a pushed image, and it costs a little money):

    python bench/live_smoke.py --cloud aws --region us-east-1 \\
        --image-uri 123456789012.dkr.ecr.us-east-1.amazonaws.com/llmfn-serve:0.1.0 \\
        --model-repo Qwen/Qwen3-0.6B --model-revision <sha> --new-model-revision <another sha>

    python bench/live_smoke.py --cloud tencentcloud --region ap-guangzhou \\
        --image-uri ccr.ccs.tencentyun.com/<ns>/llmfn-serve:0.1.0 --state-bucket <name-appid> \\
        --scaler-role <CAM role> --model-repo ... --model-revision ... --new-model-revision ...

Credentials come from the environment, as for ``pulumi up``: the AWS chain (``AWS_PROFILE`` or
``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``), or ``TENCENTCLOUD_SECRET_ID`` /
``TENCENTCLOUD_SECRET_KEY`` (the provider) plus ``TENCENTCLOUD_SECRETID`` / ``TENCENTCLOUD_SECRETKEY``
(llmfn's own clients; set both spellings). The stack is a tiny CPU one: the smallest memory that runs
the image, no reserved hours (rates 0) but a floor of one instance (``minInstances`` 1) so the
scaler has something to hold, and a random API key.

Steps (each printed with its wall time): ``pulumi up`` (Automation API, this repository's program),
wait for ``GET /healthz`` through the gateway, one chat completion over HTTP with the key, one tick
of the deployed scaler (invoked directly with a timer event, synchronously), ``pulumi up`` with the
new model revision (publishes a version; the alias stays), ``llmfn promote`` of that revision in two
steps with a short interval, then ``pulumi destroy`` and removal of the stack (``--keep`` skips both).
Any step's failure is printed and the stack is still destroyed.

Tencent adds the first-day checks of infra/README.md ("Tencent endpoint"), each its own step: after
the deploy, that ``endpointUrl`` is the function URL bound to the alias (``ListTriggers``), that the
published version froze ``InstanceConcurrencyConfig.MaxConcurrency`` (``--concurrency``), and that a
request without the key is refused (401); after the promotion, that the canary's own URL is gone and no
version older than the rollback target is left; with ``--rollback-model-revision``, a third revision
deployed and promoted behind a gate no version passes, which must roll back with the alias unchanged;
after the destroy, that the function is gone.

AWS GPU (Lambda Managed Instances), :func:`gpu_main`: ``--gpu '{"acceleratorMemoryGb": 24,
"instanceTypes": ["g6.xlarge"], "subnetIds": [...], "securityGroupIds": [...]}'`` with
``--image-uri`` (the gpu target), ``--scaler-image-uri`` (the scaler target), ``--new-image-uri`` (a
second digest) and optionally ``--rollback-revision``: deploy (the publish starts three environments),
version Active, time to the first streamed token through the alias, one scaler tick and the floors,
a redeploy with the new digest, ``llmfn promote`` of it in canary steps, the rollback, the floors
left (only the alias's versions may hold one), destroy; each step's time printed.

``--smoke`` (no account, seconds): :func:`smoke_main` runs the Tencent steps above through this script's
own step functions against the stand-ins of ``tests/cloud/test_tencent_rehearsal.py``: the SCF emulator
(API, function URLs, Cloud Monitor metrics, warm capacity), the stack's Pulumi program under Pulumi's mocks
with that test's provider stand-in playing ``pulumi up`` / ``pulumi destroy``, and a null-engine
inference app behind each version. Covered: deploy, ``/healthz`` and one chat completion through the
function URL, the three after-deploy checks, a redeploy with a new revision, ``llmfn promote`` (10, 50,
100), the after-promote checks, the promotion that must roll back, destroy and the after-destroy check.
Not covered: the Pulumi CLI and the real provider, the scaler tick (the rehearsal test runs the scaler
image against a COS stand-in) and the AWS and GPU paths (``tests/cloud/test_aws_gpu.py``).
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    smoke = "--smoke" in sys.argv[1:]  # the stand-ins need none of the account's arguments
    parser.add_argument(
        "--smoke", action="store_true", help="the Tencent steps against the local stand-ins, no account"
    )
    parser.add_argument("--cloud", choices=["aws", "tencentcloud"], required=not smoke)
    parser.add_argument("--region", required=not smoke)
    parser.add_argument("--image-uri", required=not smoke, help="a pushed llmfn serve image (CPU is enough)")
    parser.add_argument("--model-repo", required=not smoke)
    parser.add_argument("--model-revision", required=not smoke, help="40-character commit sha")
    parser.add_argument("--new-model-revision", required=not smoke, help="the revision to promote")
    parser.add_argument("--state-bucket", help="tencentcloud: COS bucket (name-appid) for the scaler state")
    parser.add_argument("--scaler-role", help="tencentcloud: CAM role the scaler runs as (required there)")
    parser.add_argument("--memory-mb", type=int, default=3072)
    parser.add_argument("--concurrency", type=int, default=2, help="tencentcloud: requests per instance")
    parser.add_argument(
        "--rollback-model-revision", help="tencentcloud: a third revision whose promotion must roll back"
    )
    parser.add_argument("--stack", default=f"llmfn-smoke-{secrets.token_hex(3)}")
    parser.add_argument("--keep", action="store_true", help="leave the stack deployed")
    parser.add_argument("--http-timeout-s", type=float, default=600.0, help="wait for /healthz this long")
    # AWS GPU (Lambda Managed Instances): gpu_main's steps
    parser.add_argument("--gpu", help="aws: the llmfn:gpu map as JSON (subnetIds, securityGroupIds, ...)")
    parser.add_argument("--scaler-image-uri", help="aws --gpu: the scaler image (Dockerfile target scaler)")
    parser.add_argument("--new-image-uri", help="aws --gpu: a second image digest for the redeploy")
    parser.add_argument("--rollback-revision", help="aws --gpu: a revision whose promotion must roll back")
    return parser.parse_args()


class Steps:
    """Runs named steps, printing each one's wall time; remembers the first failure."""

    def __init__(self) -> None:
        self.timings: list[tuple[str, float, str]] = []
        self.failed: str | None = None

    def run(self, name: str, fn: Callable[[], Any]) -> Any:
        if self.failed is not None:
            print(f"-- {name}: skipped (an earlier step failed)")
            return None
        print(f"-> {name} ...", flush=True)
        start = time.perf_counter()
        try:
            result = fn()
        except Exception as exc:  # a smoke reports every failure and goes on to destroy
            elapsed = time.perf_counter() - start
            self.failed = f"{name}: {type(exc).__name__}: {exc}"
            self.timings.append((name, elapsed, "FAILED"))
            print(f"   FAILED after {elapsed:.1f} s: {exc}", flush=True)
            return None
        elapsed = time.perf_counter() - start
        self.timings.append((name, elapsed, "ok"))
        print(f"   ok in {elapsed:.1f} s", flush=True)
        return result

    def table(self) -> str:
        lines = [f"{'step':<44} {'seconds':>8}  result"]
        lines += [f"{name:<44} {seconds:>8.1f}  {result}" for name, seconds, result in self.timings]
        return "\n".join(lines)


def stack_config(args: argparse.Namespace, api_key: str) -> dict[str, Any]:
    """The smoke stack's ``llmfn:*`` config (values as Pulumi stores them; lists as JSON)."""
    from pulumi import automation as auto

    values: dict[str, Any] = {
        "cloud": args.cloud,
        "region": args.region,
        "name": args.stack[:40],
        "modelRepo": args.model_repo,
        "modelRevision": args.model_revision,
        "imageUri": args.image_uri,
        "memoryMb": str(args.memory_mb),
        "timeoutS": "120",
        "p95LatencyS": "10",
        "ratesByHour": json.dumps([0.0] * 24),
        "minInstances": "1",
        "maxInstances": "2",
    }
    if args.cloud == "aws":
        values["ephemeralStorageMb"] = "2048"
    else:
        values["scalerStateBucket"] = args.state_bucket or ""
        values["scalerRole"] = args.scaler_role or ""
        values["concurrencyPerInstance"] = str(args.concurrency)
    config = {f"llmfn:{k}": auto.ConfigValue(value=str(v)) for k, v in values.items()}
    config["llmfn:apiKey"] = auto.ConfigValue(value=api_key, secret=True)
    return config


def wait_healthy(url: str, timeout_s: float) -> int:
    """Poll ``GET {url}/healthz`` until it answers 200; returns the number of polls."""
    deadline, polls = time.monotonic() + timeout_s, 0
    while True:
        polls += 1
        try:
            with urllib.request.urlopen(url.rstrip("/") + "/healthz", timeout=30) as answer:
                if answer.status == 200:
                    return polls
        except OSError as exc:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url}/healthz not healthy after {timeout_s} s: {exc}") from exc
        time.sleep(5)


def chat(url: str, api_key: str) -> str:
    """One chat completion through the gateway with the bearer key; the answer's text."""
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
    models = urllib.request.Request(url.rstrip("/") + "/v1/models", headers=headers)
    with urllib.request.urlopen(models, timeout=60) as answer:
        model = json.load(answer)["data"][0]["id"]
    body = {"model": model, "messages": [{"role": "user", "content": "Say OK."}], "max_tokens": 8}
    request = urllib.request.Request(
        url.rstrip("/") + "/v1/chat/completions", json.dumps(body).encode(), headers, method="POST"
    )
    with urllib.request.urlopen(request, timeout=120) as answer:
        return str(json.load(answer)["choices"][0]["message"]["content"])


def scaler_tick(args: argparse.Namespace, scaler_name: str) -> dict[str, Any]:
    """Invoke the deployed scaler once, synchronously, with a timer event of now; its tick outcome."""
    now = datetime.now(UTC).isoformat()
    if args.cloud == "aws":
        import boto3

        answer = boto3.client("lambda", region_name=args.region).invoke(
            FunctionName=scaler_name, InvocationType="RequestResponse", Payload=json.dumps({"time": now})
        )
        payload = answer["Payload"].read().decode()
        if "FunctionError" in answer:
            raise RuntimeError(f"scaler failed: {payload[:500]}")
        return json.loads(payload)
    return tencent_scaler_tick(args, scaler_name, now)


# ----- Tencent (SCF) steps -----


def tencent_scaler_tick(args: argparse.Namespace, scaler_name: str, now: str) -> dict[str, Any]:
    """Invoke the scaler (an event function: synchronous Invoke works; SCF hands it its role's keys in
    the request headers) with a timer event of ``now``; its tick outcome."""
    from functions.cloud.connect import CloudTarget
    from functions.cloud.tencent.control import ScfControl, TencentEndpoint

    keys = CloudTarget.tencent_credentials()
    endpoint = TencentEndpoint(
        args.region, keys["secret_id"] or "", keys["secret_key"] or "", session_token=keys["session_token"]
    )
    control = ScfControl(endpoint, scaler_name, alias_name="unused")
    result = control.invoke("$LATEST", {"Type": "Timer", "Time": now})
    if not result.ok:
        raise RuntimeError(f"scaler failed: {result.body[:500]}")
    return dict(json.loads(result.body))


def _tencent_stack(outputs: dict[str, Any], api_endpoint: str | None = None) -> Any:
    """The stack's target (``llmfn.release.stack.StackTarget``) from its outputs."""
    import tempfile

    from llmfn.release.stack import resolve_stack

    with tempfile.TemporaryDirectory() as folder:
        outputs_file = Path(folder) / "outputs.json"
        outputs_file.write_text(json.dumps(outputs))
        return resolve_stack("live-smoke", outputs_file, api_endpoint=api_endpoint)


def _tencent_control(outputs: dict[str, Any], api_endpoint: str | None = None) -> Any:
    from functions.cloud.retry import RetryPolicy

    return _tencent_stack(outputs, api_endpoint).target.control(RetryPolicy())


def tencent_checks_after_deploy(
    outputs: dict[str, Any], concurrency: int, api_endpoint: str | None = None
) -> dict[str, Any]:
    """The endpoint is the alias's function URL; the stack's version froze ``MaxConcurrency``; a
    request without the key is refused. ``api_endpoint``: SCF API override (tests: the emulator)."""
    import urllib.error

    from core.contract import scf_url_of_trigger_desc

    control = _tencent_control(outputs, api_endpoint)
    triggers = control._call("ListTriggers").get("Triggers") or []
    urls = {
        t.get("Qualifier"): scf_url_of_trigger_desc(str(t.get("TriggerDesc")))
        for t in triggers
        if t.get("Type") == "http"
    }
    if urls != {outputs["aliasName"]: outputs["endpointUrl"]}:
        raise RuntimeError(f"function URLs {urls}: expected only the alias's, {outputs['endpointUrl']}")
    frozen = (
        control._call("GetFunction", Qualifier=str(outputs["version"])).get("InstanceConcurrencyConfig") or {}
    )
    if frozen.get("MaxConcurrency") != concurrency:
        raise RuntimeError(
            f"version {outputs['version']} froze InstanceConcurrencyConfig {frozen}, not {concurrency}"
        )
    try:
        urllib.request.urlopen(str(outputs["endpointUrl"]).rstrip("/") + "/v1/models", timeout=60)
        raise RuntimeError("a request without the API key was answered")
    except urllib.error.HTTPError as refused:
        if refused.code != 401:
            raise RuntimeError(f"a request without the API key got {refused.code}, not 401") from refused
    return {"url": outputs["endpointUrl"], "max_concurrency": frozen["MaxConcurrency"]}


def tencent_checks_after_promote(
    outputs: dict[str, Any], report: dict[str, Any], api_endpoint: str | None = None
) -> dict[str, Any]:
    """The canary's own URL is gone and no version older than the rollback target is left."""
    control = _tencent_control(outputs, api_endpoint)
    triggers = control._call("ListTriggers").get("Triggers") or []
    extra = [
        t.get("Qualifier")
        for t in triggers
        if t.get("Type") == "http" and t.get("Qualifier") != outputs["aliasName"]
    ]
    if extra:
        raise RuntimeError(f"function URLs left on {extra}")
    target = int(report["previous_version"])
    older = [v for v in control.versions() if int(v) < target and v not in control.routed_versions()]
    if older:
        raise RuntimeError(f"versions older than the rollback target {target} left: {older}")
    return {"versions": sorted(control.versions(), key=int)}


def tencent_rollback(
    outputs: dict[str, Any], revision: str, api_key: str, api_endpoint: str | None = None, poll_s: float = 5.0
) -> dict[str, Any]:
    """Promote ``revision`` (already deployed) behind a P95 gate no version passes: it must roll back
    and leave the alias as it was; the report. ``poll_s``: seconds between warm-capacity polls."""
    from functions.cloud.retry import RetryPolicy
    from llmfn.release.gates import GateThresholds, SmokeCheck
    from llmfn.release.promotion import Promotion, PromotionPlan

    stack = _tencent_stack(outputs, api_endpoint)
    control = stack.target.control(RetryPolicy())
    before = control.alias()
    report = Promotion(
        control=control,
        metrics=stack.target.metrics(RetryPolicy()),
        plan=PromotionPlan(
            model_revision=revision,
            steps=(50, 100),
            interval_s=0,
            metrics_window_s=120,
            thresholds=GateThresholds(max_error_rate=0.5, max_p95_s=1e-6),
            warm_timeout_s=900,
            poll_s=poll_s,
        ),
        smoke=SmokeCheck(endpoint_url=stack.endpoint_url, api_key=api_key, timeout_s=120),
    ).run()
    if report.succeeded or control.alias() != before:
        raise RuntimeError(
            f"expected a rollback with the alias unchanged, got {report.status}: {control.alias()}"
        )
    return report.as_dict()


def tencent_checks_after_destroy(outputs: dict[str, Any], api_endpoint: str | None = None) -> None:
    """The inference function (with its versions, URL and provisioned configs) is gone."""
    from functions.cloud.types import CloudError

    try:
        _tencent_control(outputs, api_endpoint)._call("GetFunction")
    except CloudError as error:
        if error.code.startswith("ResourceNotFound"):
            return
        raise
    raise RuntimeError(f"function {outputs['functionName']} still exists after destroy")


def promote(
    outputs: dict[str, Any],
    revision: str,
    api_key: str,
    steps: tuple[int, ...] = (50, 100),
    api_endpoint: str | None = None,
    interval_s: float = 60.0,
    poll_s: float = 5.0,
) -> dict[str, Any]:
    """``llmfn promote`` of ``revision`` in ``steps`` (default 50, 100) with an ``interval_s`` (60 s)
    interval; the report. ``api_endpoint``: the cloud API override (``--smoke``: the emulator, and the
    outputs go to a temporary file, not ``stack-outputs/``)."""
    from functions.cloud.retry import RetryPolicy
    from llmfn.release.gates import GateThresholds, SmokeCheck
    from llmfn.release.promotion import Promotion, PromotionPlan
    from llmfn.release.stack import resolve_stack

    if api_endpoint is not None:
        stack = _tencent_stack(outputs, api_endpoint)
    else:
        outputs_file = REPO_ROOT / "stack-outputs" / "live-smoke.json"
        outputs_file.parent.mkdir(exist_ok=True)
        outputs_file.write_text(json.dumps(outputs))
        stack = resolve_stack("live-smoke", outputs_file)
    retry = RetryPolicy()
    report = Promotion(
        control=stack.target.control(retry),
        metrics=stack.target.metrics(retry),
        plan=PromotionPlan(
            model_revision=revision,
            steps=steps,
            interval_s=interval_s,
            metrics_window_s=120,
            thresholds=GateThresholds(max_error_rate=0.5, max_p95_s=60.0),
            warm_timeout_s=900,
            poll_s=poll_s,
        ),
        smoke=SmokeCheck(endpoint_url=stack.endpoint_url, api_key=api_key, timeout_s=120),
    ).run()
    if not report.succeeded:
        raise RuntimeError(f"promotion rolled back: {report.reason}")
    return report.as_dict()


def open_stack(args: argparse.Namespace) -> tuple[str, Steps, Any]:
    """A fresh API key, the step log, and the stack selected (None when that step failed)."""
    from pulumi import automation as auto

    steps = Steps()
    stack = steps.run(
        "select stack", lambda: auto.create_or_select_stack(stack_name=args.stack, work_dir=str(REPO_ROOT))
    )
    return secrets.token_hex(24), steps, stack


def redeploy(steps: Steps, stack: Any, name: str, key: str, value: str) -> None:
    """Set one config value and ``pulumi up`` again, as the step ``name``."""
    from pulumi import automation as auto

    steps.run(
        name,
        lambda: (stack.set_config(key, auto.ConfigValue(value=value)), stack.up(on_output=lambda line: None)),
    )


def destroy_unless_kept(
    args: argparse.Namespace,
    steps: Steps,
    stack: Any,
    after_destroy: tuple[str, Callable[[], Any]] | None = None,
) -> None:
    """``pulumi destroy`` and the stack's removal (even after a failed step), unless ``--keep``;
    ``after_destroy`` (name, check) runs between the two (e.g. that nothing is left behind)."""
    if not args.keep:
        failed, steps.failed = steps.failed, None  # destroy even after a failure
        steps.run("pulumi destroy", lambda: stack.destroy(on_output=lambda line: None))
        if after_destroy is not None:
            steps.run(*after_destroy)
        steps.run("remove stack", lambda: stack.workspace.remove_stack(args.stack))
        steps.failed = steps.failed or failed


def report_steps(steps: Steps) -> int:
    """Print the steps' table (and the first failure); the exit code."""
    print()
    print(steps.table())
    if steps.failed:
        print(f"\nFAILED: {steps.failed}")
        return 1
    return 0


def gpu_stack_config(args: argparse.Namespace, api_key: str) -> dict[str, Any]:
    """The CPU smoke config plus ``llmfn:gpu`` (Lambda Managed Instances) and the scaler's image."""
    from pulumi import automation as auto

    config = stack_config(args, api_key)
    gpu = {**json.loads(args.gpu), "scalerImageUri": args.scaler_image_uri}
    config["llmfn:gpu"] = auto.ConfigValue(value=json.dumps(gpu))
    config["llmfn:memoryMb"] = auto.ConfigValue(value=str(max(args.memory_mb, 8192)))
    config["llmfn:timeoutS"] = auto.ConfigValue(value="900")  # the init limit: max(130 s, the timeout)
    config["llmfn:concurrencyPerInstance"] = auto.ConfigValue(value="8")
    return config


def first_token_s(url: str, api_key: str) -> float:
    """Seconds to the first streamed chunk of one chat completion through the gateway."""
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
    body = {"model": "default", "messages": [{"role": "user", "content": "Say OK."}], "max_tokens": 8,
            "stream": True}  # fmt: skip
    request = urllib.request.Request(
        url.rstrip("/") + "/v1/chat/completions", json.dumps(body).encode(), headers, method="POST"
    )
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as answer:
        for line in answer:
            if line.startswith(b"data:"):
                return time.perf_counter() - start
    raise RuntimeError("the stream ended without a chunk")


def gpu_version_state(region: str, function: str, version: str) -> str:
    """Wait until the published version is Active (its three environments started); its state."""
    import boto3

    client = boto3.client("lambda", region_name=region)
    client.get_waiter("published_version_active").wait(
        FunctionName=function, Qualifier=version, WaiterConfig={"Delay": 10, "MaxAttempts": 210}
    )
    return str(client.get_function_configuration(FunctionName=function, Qualifier=version)["State"])


def gpu_floors(region: str, function: str) -> dict[str, int]:
    """Every published version's requested MinExecutionEnvironments (0 when it has no config)."""
    import boto3

    client = boto3.client("lambda", region_name=region)
    floors: dict[str, int] = {}
    for page in client.get_paginator("list_versions_by_function").paginate(FunctionName=function):
        for entry in page["Versions"]:
            if entry["Version"] == "$LATEST":
                continue
            config = client.get_function_scaling_config(FunctionName=function, Qualifier=entry["Version"])
            wanted = (
                config.get("RequestedFunctionScalingConfig")
                or config.get("AppliedFunctionScalingConfig")
                or {}
            )
            floors[entry["Version"]] = int(wanted.get("MinExecutionEnvironments") or 0)
    return floors


def gpu_promote(outputs: dict[str, Any], revision: str, api_key: str, must_roll_back: bool) -> dict[str, Any]:
    """``llmfn promote`` with canary steps 10, 50, 100; a rollback is expected when ``must_roll_back``."""
    try:
        report = promote(outputs, revision, api_key, steps=(10, 50, 100))
    except RuntimeError as failure:
        if must_roll_back and "rolled back" in str(failure):
            return {"status": "rolled-back", "reason": str(failure)}
        raise
    if must_roll_back:
        raise RuntimeError(f"promotion of {revision} was expected to roll back: {report['status']}")
    return report


def gpu_main(args: argparse.Namespace) -> int:
    """The GPU stack's first day on a real account, each step timed: deploy (publish: three execution
    environments), version Active, first token through the alias, one scaler tick and the floor, a
    redeploy with a new image digest, a canary promotion, an optional rollback, the floors left, destroy."""

    if not (args.gpu and args.scaler_image_uri and args.new_image_uri):
        print("--gpu, --scaler-image-uri and --new-image-uri are required for the GPU smoke", file=sys.stderr)
        return 2
    api_key, steps, stack = open_stack(args)
    if stack is None:
        return report_steps(steps)
    outputs: dict[str, Any] = {}
    function = f"{args.stack[:40]}-infer"
    try:
        steps.run("set config", lambda: stack.set_all_config(gpu_stack_config(args, api_key)))
        up = steps.run("pulumi up (publish, 3 environments)", lambda: stack.up(on_output=lambda line: None))
        if up is not None:
            outputs = {k: v.value for k, v in up.outputs.items()}
        url, version = str(outputs.get("endpointUrl") or ""), str(outputs.get("version") or "")
        steps.run("version Active", lambda: gpu_version_state(args.region, function, version))
        ttft = steps.run("first token through the alias", lambda: first_token_s(url, api_key))
        if ttft is not None:
            print(f"   first token after {ttft:.2f} s")
        steps.run("one scaler tick", lambda: scaler_tick(args, f"{args.stack[:40]}-scaler"))
        print(f"   floors {steps.run('floors after the tick', lambda: gpu_floors(args.region, function))}")
        redeploy(steps, stack, "pulumi up (new image digest)", "llmfn:imageUri", args.new_image_uri)
        steps.run(
            "llmfn promote (10, 50, 100)", lambda: gpu_promote(outputs, args.model_revision, api_key, False)
        )
        if args.rollback_revision:
            steps.run("llmfn promote (rolled back)",
                      lambda: gpu_promote(outputs, args.rollback_revision, api_key, True))  # fmt: skip
        floors = steps.run("floors after promotion", lambda: gpu_floors(args.region, function))
        print(f"   floors {floors} (only the alias's versions may hold one)")
    finally:
        destroy_unless_kept(args, steps, stack)
    return report_steps(steps)


SMOKE_FUNCTION = "qwen3-4b-infer"  # the function of Pulumi.example-tencent.yaml
SMOKE_CONCURRENCY = 8  # its concurrencyPerInstance
SMOKE_REVISIONS = ("1" * 40, "2" * 40, "3" * 40)  # deployed, promoted, rolled back
SMOKE_KEY = "sk-live-smoke-0123456789abcdef"


def _smoke_metrics(scf: Any, qualifier: str) -> None:
    """One minute of healthy Cloud Monitor data for ``qualifier`` (100 invocations of 0.4 s, no errors)."""
    minute = int(time.time()) - 120
    for metric, value in (
        ("Invocation", 100.0),
        ("Error", 0.0),
        ("ConcurrentExecutions", 6.0),
        ("Duration", 400.0),
    ):
        scf.put_metric(SMOKE_FUNCTION, qualifier, metric, minute, value)


def smoke_main() -> int:
    """``--smoke``: the Tencent steps of :func:`main` against the stand-ins (see the module docstring)."""
    import os

    from functions.api.router import create_app
    from functions.settings import ServeSettings
    from tests.cloud.scf_emulator import ScfEmulator
    from tests.cloud.test_tencent_rehearsal import EXAMPLE, ProviderStandIn
    from tests.functions.helpers import running, wait_ready
    from tests.infra.mocks import example_with, run_stack

    scf = ScfEmulator().start()
    scf.update_s = 0.05  # "Updating" after every configuration change: publishing must wait for Active
    for spelling in ("SECRET_ID", "SECRETID"):  # the provider's and llmfn's own spellings
        os.environ[f"TENCENTCLOUD_{spelling}"] = scf.secret_id
    for spelling in ("SECRET_KEY", "SECRETKEY"):
        os.environ[f"TENCENTCLOUD_{spelling}"] = scf.secret_key
    os.environ.pop("TENCENTCLOUD_SESSIONTOKEN", None)
    provider, api = ProviderStandIn(scf), f"http://{scf.endpoint}"
    app = create_app(ServeSettings(engine="null", model_name="tiny", api_key=SMOKE_KEY))
    steps, outputs = Steps(), {}

    def deploy(revision: str) -> dict[str, Any]:
        up = provider.up(run_stack(example_with(EXAMPLE, modelRevision=revision, apiKey=SMOKE_KEY)))
        scf.serve_version(SMOKE_FUNCTION, str(up["version"]), instance)
        _smoke_metrics(scf, str(up["version"]))
        return dict(up)

    try:
        with running(app) as instance:
            wait_ready(instance, api_key=SMOKE_KEY)
            outputs = steps.run("pulumi up (stand-in)", lambda: deploy(SMOKE_REVISIONS[0])) or {}
            url = str(outputs.get("endpointUrl") or "")
            print(f"   endpoint {url}, version {outputs.get('version')}")
            steps.run("GET /healthz through the gateway", lambda: wait_healthy(url, 30))
            print(f"   answer: {steps.run('POST /v1/chat/completions', lambda: chat(url, SMOKE_KEY))!r}")
            steps.run(
                "tencent: URL on the alias, concurrency, key",
                lambda: tencent_checks_after_deploy(outputs, SMOKE_CONCURRENCY, api_endpoint=api),
            )
            scf.prewarm(SMOKE_FUNCTION, "1", 1)  # what the scaler's first tick leaves (not run here)
            outputs = (
                steps.run("pulumi up (new model revision)", lambda: deploy(SMOKE_REVISIONS[1])) or outputs
            )
            report = steps.run(
                "llmfn promote",
                lambda: promote(
                    outputs, SMOKE_REVISIONS[1], SMOKE_KEY, (10, 50, 100), api, interval_s=0, poll_s=0.01
                ),
            )
            if report is not None:
                print(f"   {report['status']}: {report['previous_version']} -> {report['new_version']}")
                steps.run(
                    "tencent: canary URL gone, versions pruned",
                    lambda: tencent_checks_after_promote(outputs, report, api_endpoint=api),
                )
            outputs = (
                steps.run("pulumi up (rollback revision)", lambda: deploy(SMOKE_REVISIONS[2])) or outputs
            )
            rolled = steps.run(
                "tencent: promote that rolls back",
                lambda: tencent_rollback(outputs, SMOKE_REVISIONS[2], SMOKE_KEY, api, poll_s=0.01),
            )
            if rolled is not None:
                print(f"   {rolled['status']}: {rolled['reason']}")
    finally:
        if outputs:
            failed, steps.failed = steps.failed, None  # destroy even after a failure
            steps.run("pulumi destroy (stand-in)", provider.destroy)
            steps.run(
                "tencent: nothing left", lambda: tencent_checks_after_destroy(outputs, api_endpoint=api)
            )
            steps.failed = steps.failed or failed
        scf.stop()
    return report_steps(steps)


def main() -> int:
    args = _args()
    if args.smoke:
        return smoke_main()
    if args.cloud == "aws" and args.gpu:
        return gpu_main(args)
    if args.cloud == "tencentcloud" and not (args.state_bucket and args.scaler_role):
        print(
            "--state-bucket and --scaler-role are required with --cloud tencentcloud (a COS bucket "
            "name-appid, and the CAM role the scaler runs as: SCF gives it API keys only through one)",
            file=sys.stderr,
        )
        return 2

    api_key, steps, stack = open_stack(args)
    if stack is None:
        return report_steps(steps)
    outputs: dict[str, Any] = {}
    try:
        steps.run("set config", lambda: stack.set_all_config(stack_config(args, api_key)))
        up = steps.run("pulumi up", lambda: stack.up(on_output=lambda line: None))
        if up is not None:
            outputs = {k: v.value for k, v in up.outputs.items()}
            print(f"   endpoint {outputs.get('endpointUrl')}, version {outputs.get('version')}")
        url = str(outputs.get("endpointUrl") or "")
        steps.run("GET /healthz through the gateway", lambda: wait_healthy(url, args.http_timeout_s))
        text = steps.run("POST /v1/chat/completions", lambda: chat(url, api_key))
        if text is not None:
            print(f"   answer: {text!r}")
        if args.cloud == "tencentcloud":
            steps.run(
                "tencent: URL on the alias, concurrency, key",
                lambda: tencent_checks_after_deploy(outputs, args.concurrency),
            )
        scaler_name = f"{args.stack[:40]}-scaler"
        tick = steps.run("one scaler tick", lambda: scaler_tick(args, scaler_name))
        if tick is not None:
            print(f"   {tick.get('action')}: {json.dumps(tick.get('decision'))}")
        redeploy(
            steps, stack, "pulumi up (new model revision)", "llmfn:modelRevision", args.new_model_revision
        )
        report = steps.run("llmfn promote", lambda: promote(outputs, args.new_model_revision, api_key))
        if report is not None:
            print(f"   {report['status']}: {report['previous_version']} -> {report['new_version']}")
        if args.cloud == "tencentcloud" and report is not None:
            steps.run(
                "tencent: canary URL gone, versions pruned",
                lambda: tencent_checks_after_promote(outputs, report),
            )
        if args.cloud == "tencentcloud" and args.rollback_model_revision:
            redeploy(
                steps,
                stack,
                "pulumi up (rollback revision)",
                "llmfn:modelRevision",
                args.rollback_model_revision,
            )
            steps.run(
                "tencent: promote that rolls back",
                lambda: tencent_rollback(outputs, args.rollback_model_revision, api_key),
            )
    finally:
        after = (
            (lambda: tencent_checks_after_destroy(outputs))
            if args.cloud == "tencentcloud" and outputs
            else None
        )
        destroy_unless_kept(
            args, steps, stack, after_destroy=("tencent: nothing left", after) if after else None
        )
    return report_steps(steps)


if __name__ == "__main__":
    raise SystemExit(main())

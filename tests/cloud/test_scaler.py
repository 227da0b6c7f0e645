"""The scaler function against both stand-ins: same decisions as the policy object the simulator runs,
state kept safely between (and across concurrent) runs, dry runs, entry points and the CLI."""

from __future__ import annotations

import json
import math
import threading
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

from core.contract import (
    ENV_ALIAS,
    ENV_CLOUD,
    ENV_CLOUD_ENDPOINT,
    ENV_FUNCTION,
    ENV_POLICY_CONFIG,
    ENV_PREWARM_URL,
    ENV_REGION,
    ENV_STATE_BUCKET,
    ENV_STATE_ENDPOINT,
    LAMBDA_SCALER_HANDLER,
    SCF_SCALER_HANDLER,
    handler_module,
)
from functions.cloud.state import S3StateStore, StateConflict
from functions.cloud.tencent.state import CosStateStore
from functions.scaler.handler import lambda_handler, main_handler
from functions.scaler.run import Scaler
from functions.scaler.settings import ScalerSettings
from functions.secrets import reveal
from llmfn.cli import app
from scaling.policies import Observation, PolicyConfig, make_policy
from tests.cloud.standins import ALIAS, INITIAL_CAPACITY, STATE_BUCKET, StandIn, fast_retry
from tests.layers.packed import build_and_unpack, run_packed

# One instance serves one request (Lambda-like); a profile that wants 2 instances at every hour, a
# reactive correction after 2 minutes over it and scale to zero after 3 idle minutes.
POLICY_CONFIG: dict[str, Any] = {
    "concurrency_per_instance": 1,
    "max_reserved": 20,
    "hybrid": {
        "rates_by_hour": [1.0] * 24,
        "p95_latency_s": 1.5,
        "headroom": 0.2,
        "correction_after_s": 120,
        "idle_to_zero_s": 180,
    },
}
# Per minute: invocations, mean = max concurrency, Duration (ms).
SERIES = [(60, 1.0, 900), (600, 9.0, 1400), (900, 14.0, 1800), (840, 13.0, 1700), (120, 2.0, 800), (0, 0.0, None),
          (0, 0.0, None), (0, 0.0, None), (30, 1.0, 700)]  # fmt: skip


def settings(stand_in: StandIn, **overrides: Any) -> ScalerSettings:
    values: dict[str, Any] = {
        "target": stand_in.target,
        "state_bucket": STATE_BUCKET,
        "state_endpoint": stand_in.state_endpoint,
        "policy_config": POLICY_CONFIG,
        "prewarm_url": stand_in.endpoint_url,
    }
    return ScalerSettings(**(values | overrides))


def scaler(stand_in: StandIn) -> Scaler:
    return Scaler.from_settings(settings(stand_in), fast_retry())


def start_minute(minutes_back: int) -> datetime:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    return now - timedelta(minutes=minutes_back)


def test_scaler_decisions_equal_the_policy_on_the_same_metric_series(stand_in: StandIn) -> None:
    t0 = start_minute(len(SERIES) + 1)
    for i, (calls, concurrency, duration_ms) in enumerate(SERIES):
        stand_in.put_minute(ALIAS, t0 + timedelta(minutes=i), calls, 0, concurrency, duration_ms)

    run = scaler(stand_in)
    outcomes = [run.run_once(t0 + timedelta(minutes=i + 1, seconds=5)) for i in range(len(SERIES))]

    # The simulator's side: the very policy object, fed the observations the series defines.
    policy = make_policy("hybrid", PolicyConfig.from_mapping(POLICY_CONFIG))
    state = policy.initial_state()
    reserved = 0 if stand_in.cloud == "aws" else INITIAL_CAPACITY  # alias target on AWS, version on SCF
    expected = []
    for i, (calls, concurrency, duration_ms) in enumerate(SERIES):
        tick_end = (t0 + timedelta(minutes=i + 1)).timestamp()
        obs = Observation(
            t_s=tick_end,
            interval_s=60.0,
            hour_of_day=int(tick_end // 3600) % 24,
            arrival_rate_rps=calls / 60,
            in_flight=concurrency,
            reserved_instances=reserved,
            on_demand_instances=max(0, math.ceil(concurrency) - reserved),
            reserved_utilisation=min(1.0, concurrency / reserved) if reserved else 0.0,
            p95_latency_s=None if duration_ms is None else duration_ms / 1000,
        )
        decision, state = policy.decide(obs, state)
        expected.append(asdict(decision))
        reserved = decision.reserved

    assert [o.action for o in outcomes] == ["scaled"] * len(SERIES)
    assert [o.decision for o in outcomes] == expected
    assert len({d["reserved"] for d in expected}) >= 3  # the series moves capacity up and down
    assert any(d["prewarm"] for d in expected)
    assert stand_in.invocations() == sum(d["prewarm"] for d in expected)  # pre-warm requests sent
    if stand_in.scf is not None:  # a web function takes no async Invoke: over HTTP to the alias's URL
        assert not [a for a, _ in stand_in.scf.calls if a == "Invoke"]
        assert {(q, m, path) for q, _, m, path in stand_in.scf.url_requests} == {(ALIAS, "GET", "/healthz")}
    stored = run.store.load().document
    assert stored is not None and stored["state"] == state and stored["generation"] == len(SERIES)
    control = stand_in.target.control(fast_retry())
    assert control.capacity(control.scaling_qualifier(control.alias())).requested == expected[-1]["reserved"]


def test_two_concurrent_scaler_runs_never_corrupt_the_state(stand_in: StandIn) -> None:
    """Run A reads the state, then B runs the same tick to the end, then A writes: A's conditional
    write fails, A re-reads, sees the tick handled, and stops without writing or actuating."""
    stand_in.put_minute(ALIAS, start_minute(1), 600, 0, 9.0, 1200)
    now = start_minute(0) + timedelta(seconds=5)
    first, second = scaler(stand_in), scaler(stand_in)
    a_read, b_done = threading.Event(), threading.Event()
    original_save = first.store.save

    def save_after_b(document: dict[str, Any], etag: str | None) -> str:
        a_read.set()
        assert b_done.wait(30)
        return original_save(document, etag)

    first.store.save = save_after_b  # type: ignore[method-assign]
    result: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: result.setdefault("a", first.run_once(now)))
    thread.start()
    assert a_read.wait(30)
    b = second.run_once(now)
    b_done.set()
    thread.join(30)

    a = result["a"]
    assert (a.action, b.action) == ("skipped", "scaled")
    assert "already handled" in a.reason
    stored = second.store.load().document
    assert stored is not None
    assert stored["generation"] == 1 and stored["decision"] == b.decision
    assert stored["state"] == json.loads(json.dumps(stored["state"]))
    control = stand_in.target.control(fast_retry())
    assert control.capacity(control.scaling_qualifier(control.alias())).requested == b.decision["reserved"]

    later = first.run_once(now + timedelta(minutes=1))  # the next tick goes on from B's state
    assert later.action == "scaled" and later.generation == 2


def test_a_state_write_whose_answer_is_lost_is_recognised_as_ours(stand_in: StandIn) -> None:
    """PutObject applied but its answer lost: the retry's condition fails, the re-read finds this
    run's own write, and the run actuates instead of giving the tick up."""
    stand_in.put_minute(ALIAS, start_minute(1), 600, 0, 9.0, 900)
    stand_in.state_faults.inject("PutObject", "lost")
    run = scaler(stand_in)
    outcome = run.run_once(start_minute(0) + timedelta(seconds=5))
    assert outcome.action == "scaled" and outcome.generation == 1
    assert stand_in.state_faults.injected == [("PutObject", "lost")]
    control = stand_in.target.control(fast_retry())
    assert outcome.decision is not None
    assert (
        control.capacity(control.scaling_qualifier(control.alias())).requested == outcome.decision["reserved"]
    )


def test_conditional_write_refuses_a_stale_etag(moto_reset: str) -> None:
    client = boto3.client("s3", region_name="us-east-1", endpoint_url=moto_reset)
    client.create_bucket(Bucket="state-bucket")
    store = S3StateStore(client, "state-bucket", "s.json", fast_retry())
    assert store.load().document is None
    etag = store.save({"n": 1}, None)
    with pytest.raises(StateConflict):
        store.save({"n": 2}, None)  # created meanwhile by someone else
    store.save({"n": 2}, etag)
    with pytest.raises(StateConflict):
        store.save({"n": 3}, etag)  # stale
    assert store.load().document == {"n": 2}


def test_dry_run_decides_but_writes_and_changes_nothing(stand_in: StandIn) -> None:
    stand_in.put_minute(ALIAS, start_minute(1), 900, 0, 14.0, 1500)
    control = stand_in.target.control(fast_retry())
    qualifier = control.scaling_qualifier(control.alias())
    before = control.capacity(qualifier)
    now = start_minute(0) + timedelta(seconds=5)
    outcome = scaler(stand_in).run_once(now, dry_run=True)
    assert outcome.action == "dry-run"
    assert outcome.observation is not None and outcome.observation["arrival_rate_rps"] == 15.0
    assert control.capacity(qualifier) == before
    assert scaler(stand_in).store.load().document is None
    real = scaler(stand_in).run_once(now)
    assert (real.action, real.decision) == ("scaled", outcome.decision)


def test_scaler_holds_while_a_promotion_routes_weights(stand_in: StandIn) -> None:
    control = stand_in.target.control(fast_retry())
    control.set_environment({"LLMFN_MODEL_REVISION": "rev-2"})
    canary = control.publish_version("canary")
    (stand_in.aws_proxy or stand_in.scf).prewarm("llm", canary, 1)  # type: ignore[union-attr]
    control.set_routing("1", {canary: 0.1})
    outcome = scaler(stand_in).run_once(start_minute(0))
    assert outcome.action == "skipped" and "promotion in progress" in outcome.reason


def _scaler_env(stand_in: StandIn) -> dict[str, str]:
    """The deployed scaler's environment (as the stacks write it) for this stand-in."""
    target = stand_in.target
    return {
        ENV_CLOUD: target.cloud,
        ENV_FUNCTION: target.function,
        ENV_ALIAS: target.alias,
        ENV_REGION: target.region,
        ENV_CLOUD_ENDPOINT: str(target.endpoint),
        ENV_STATE_BUCKET: STATE_BUCKET,
        ENV_STATE_ENDPOINT: stand_in.state_endpoint,
        ENV_POLICY_CONFIG: json.dumps(POLICY_CONFIG),
        "TENCENTCLOUD_SECRETID": reveal(target.secret_id) or "",
        "TENCENTCLOUD_SECRETKEY": reveal(target.secret_key) or "",
        **({ENV_PREWARM_URL: stand_in.endpoint_url} if stand_in.endpoint_url else {}),
    }


def _timer_event(cloud: str, when: str) -> dict[str, str]:
    """The schedule event each cloud delivers: EventBridge's on AWS, an SCF timer trigger's on Tencent."""
    if cloud == "aws":
        return {"source": "aws.events", "detail-type": "Scheduled Event", "time": when}
    return {"Type": "Timer", "TriggerName": "llmfn-scaler", "Time": when, "Message": ""}


def test_entry_points_run_a_tick_and_skip_a_redelivered_event(
    stand_in: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in _scaler_env(stand_in).items():
        monkeypatch.setenv(key, value)
    stand_in.put_minute(ALIAS, start_minute(1), 300, 0, 5.0, 900)
    when = (start_minute(0) + timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    event = _timer_event(stand_in.target.cloud, when)
    handler = lambda_handler if stand_in.target.cloud == "aws" else main_handler
    first, again = handler(event, None), handler(event, None)
    assert (first["action"], first["generation"]) == ("scaled", 1)
    assert first["observation"]["arrival_rate_rps"] == 5.0 and first["observation"]["in_flight"] == 5.0
    assert again["action"] == "skipped"


def test_the_packed_scaler_runs_a_tick(stand_in: StandIn, tmp_path: Any) -> None:
    """The scaler's handler with only the function package's modules of ours (the zip Lambda runs;
    SCF's image holds the same modules and more): the lazily imported cloud clients are in it too."""
    unpacked = build_and_unpack(tmp_path)
    stand_in.put_minute(ALIAS, start_minute(1), 300, 0, 5.0, 900)
    when = (start_minute(0) + timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    name = LAMBDA_SCALER_HANDLER if stand_in.target.cloud == "aws" else SCF_SCALER_HANDLER
    code = (
        "import json\n"
        f"from {handler_module(name)} import {name.rpartition('.')[2]} as handler\n"
        f"print(json.dumps(handler(json.loads({json.dumps(_timer_event(stand_in.target.cloud, when))!r}), None)))\n"
    )
    done = run_packed(unpacked, code, _scaler_env(stand_in))
    assert done.returncode == 0, done.stderr[-3000:]
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert (outcome["action"], outcome["generation"]) == ("scaled", 1)
    assert outcome["observation"]["arrival_rate_rps"] == 5.0


def test_scale_command_prints_the_dry_run_decision(stand_in: StandIn, tmp_path: Any) -> None:
    for minutes_back in (1, 2):  # whichever minute has just ended when the command runs
        stand_in.put_minute(ALIAS, start_minute(minutes_back), 600, 0, 9.0, 900)
    config = tmp_path / "policy.json"
    config.write_text(json.dumps(POLICY_CONFIG))
    target = stand_in.target
    args = [
        "scale", "--once", "--dry-run", "--cloud", target.cloud, "--function", target.function,
        "--alias", target.alias, "--region", target.region, "--state-bucket", STATE_BUCKET,
        "--state-endpoint", stand_in.state_endpoint, "--api-endpoint", str(target.endpoint),
        "--policy-config", str(config),
    ]  # fmt: skip
    env = {
        "TENCENTCLOUD_SECRETID": reveal(target.secret_id) or "",
        "TENCENTCLOUD_SECRETKEY": reveal(target.secret_key) or "",
    }
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.output)
    assert outcome["action"] == "dry-run"
    assert outcome["observation"]["arrival_rate_rps"] == 10.0
    assert isinstance(outcome["decision"]["reserved"], int)


def test_scaler_settings_name_the_bad_value() -> None:
    with pytest.raises(ValueError, match="multiple of 60"):
        ScalerSettings.from_env(
            {"LLMFN_CLOUD": "aws", "LLMFN_FUNCTION": "f", "LLMFN_ALIAS": "live", "LLMFN_REGION": "us-east-1",
             "LLMFN_STATE_BUCKET": "b", "LLMFN_WINDOW_S": "90"}
        )  # fmt: skip
    with pytest.raises(ValueError, match=r"^cloud must be one of"):  # read from LLMFN_CLOUD: the field's name
        ScalerSettings.from_env(
            {"LLMFN_CLOUD": "gcp", "LLMFN_FUNCTION": "f", "LLMFN_ALIAS": "a", "LLMFN_REGION": "r"}
        )


@pytest.mark.parametrize("stand_in", ["tencent"], indirect=True)
def test_scf_image_scaler_signs_with_the_role_keys_of_each_request(
    stand_in: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An SCF image function's environment has no TENCENTCLOUD_* keys (doc 583/94320); the role's
    temporary keys arrive per request as X-Scf-Secret-Id / X-Scf-Secret-Key / X-Scf-Session-Token
    (doc 583/56051). The scaler image reads them there on every tick, so rotated keys are used."""
    import httpx

    from functions.cloud.tencent.entry_web import EVENT_PATH, event_function_app
    from tests.functions.helpers import running

    scf = stand_in.scf
    assert scf is not None
    env = _scaler_env(stand_in)
    for key in ("TENCENTCLOUD_SECRETID", "TENCENTCLOUD_SECRETKEY", "TENCENTCLOUD_SESSIONTOKEN"):
        env.pop(key, None)
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    stand_in.put_minute(ALIAS, start_minute(2), 300, 0, 5.0, 900)

    def tick(minute: int, secret_id: str, secret_key: str) -> httpx.Response:
        when = (start_minute(minute) + timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
        headers = {"X-Scf-Secret-Id": secret_id, "X-Scf-Secret-Key": secret_key, "X-Scf-Session-Token": "tok"}
        return httpx.post(url + EVENT_PATH, json=_timer_event("tencent", when), headers=headers, timeout=60)

    with running(event_function_app(main_handler)) as url:
        first = tick(1, scf.secret_id, scf.secret_key)
        scf.secret_key = "rotated-secret"  # the role's temporary keys changed between two ticks
        second = tick(0, scf.secret_id, "rotated-secret")
    assert first.status_code == 200 and first.json()["action"] == "scaled", first.text
    assert second.status_code == 200 and second.json()["generation"] == 2, second.text


@pytest.mark.parametrize("stand_in", ["tencent"], indirect=True)
def test_scaler_state_on_cos_sends_no_checksums_and_creates_only_once(stand_in: StandIn) -> None:
    """COS: boto3's default checksums are refused (aws-chunked) or unsupported, so every COS client asks
    for them only when required; PUT has no If-Match / If-None-Match ("新上传的对象将覆盖原来的对象"), so
    the first write is create-only with x-cos-forbid-overwrite and later writes send no condition COS
    would silently ignore (the scaler is single-flight: tests/infra/test_tencent.py)."""
    cos = stand_in.cos
    assert cos is not None
    store = scaler(stand_in).store
    assert isinstance(store, CosStateStore)
    config = store.client.meta.config
    assert (config.request_checksum_calculation, config.response_checksum_validation) == (
        "when_required",
        "when_required",
    )
    etag = store.save({"n": 1}, None)
    with pytest.raises(StateConflict):
        store.save({"n": 2}, None)  # a second first write: COS refuses the overwrite
    store.save({"n": 2}, etag)
    assert store.load().document == {"n": 2}
    assert cos.checksum_headers == [] and cos.dropped_conditions == []

"""``llmfn promote`` against both stand-ins: clean promotion, rollback, faults, resumption, warm capacity."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from functions.cloud.types import CloudControl
from functions.secrets import reveal
from llmfn.cli import app
from llmfn.errors import cli_message
from llmfn.release.gates import GateThresholds, SmokeCheck
from llmfn.release.promotion import Promotion, PromotionPlan, parse_steps
from tests.cloud.aws_proxy import AwsProxy
from tests.cloud.standins import (
    ALIAS,
    ALIAS_MAX_CAPACITY,
    FUNCTION,
    INITIAL_CAPACITY,
    StandIn,
    aws_stand_in,
    fast_retry,
)
from tests.functions.helpers import running, wait_ready

NEW_VERSION = "2"  # the stand-ins hold version 1; the promotion publishes 2


@pytest.fixture(scope="module")
def inference_endpoint() -> Iterator[str]:
    """The real inference app (null engine) on 127.0.0.1: what the smoke request goes through."""
    from functions.api.router import create_app
    from functions.settings import ServeSettings

    with running(create_app(ServeSettings(engine="null", model_name="tiny"))) as url:
        wait_ready(url)
        yield url


DEAD_ENDPOINT = "http://127.0.0.1:9"  # discard port: nothing answers


class JobKilled(BaseException):
    """Stands for the CI runner killing the job."""


class KillAfterRouting:
    """Delegates to a control but 'kills the job' right after its ``n``-th successful alias change."""

    def __init__(self, control: CloudControl, n: int) -> None:
        self._control, self._left = control, n

    def __getattr__(self, name: str) -> Any:
        return getattr(self._control, name)

    def set_routing(self, primary: str, weights: Any) -> None:
        self._control.set_routing(primary, weights)
        self._left -= 1
        if self._left == 0:
            raise JobKilled


def publish_canary_metrics(stand_in: StandIn, errors: float = 0.0, duration_ms: float = 400.0) -> None:
    """One minute of the new version's traffic, inside every gate's 5-minute window."""
    publish_canary_metrics_for(stand_in, NEW_VERSION, errors, duration_ms)


def publish_canary_metrics_for(
    stand_in: StandIn, version: str, errors: float = 0.0, duration_ms: float = 400.0
) -> None:
    minute = datetime.now(UTC) - timedelta(seconds=120)
    stand_in.put_minute(
        version, minute, invocations=100, errors=errors, concurrency=1, duration_ms=duration_ms
    )


def promotion(
    stand_in: StandIn,
    endpoint: str | None,
    control: Any = None,
    serve: tuple[str, ...] = ("1", NEW_VERSION),
    **plan: Any,
) -> Promotion:
    if stand_in.scf is not None and endpoint is not None:  # SCF: the versions' instances serve HTTP
        for version in serve:
            stand_in.scf.serve_version(FUNCTION, version, endpoint)
    retry = fast_retry()
    defaults: dict[str, Any] = {
        "model_revision": "rev-2",
        "interval_s": 0.0,
        "metrics_window_s": 300.0,
        "poll_s": 0.005,
        "warm_timeout_s": 5.0,
        "thresholds": GateThresholds(max_error_rate=0.05, max_p95_s=2.0),
    }
    return Promotion(
        control=control or stand_in.target.control(retry),
        metrics=stand_in.target.metrics(retry),
        plan=PromotionPlan(**(defaults | plan)),
        smoke=SmokeCheck(endpoint_url=endpoint, timeout_s=5.0),
    )


def test_clean_promotion(stand_in: StandIn, inference_endpoint: str) -> None:
    publish_canary_metrics(stand_in)
    report = promotion(stand_in, inference_endpoint).run()

    assert report.status == "promoted", report.reason
    assert (report.previous_version, report.new_version, report.resumed) == ("1", NEW_VERSION, False)
    assert [s["percent"] for s in report.steps] == [10, 50, 100]
    assert all(s["gate"]["passed"] and s["gate"]["smoke"]["via"] == "http" for s in report.steps)
    assert all(s["gate"]["invocations"] == 100 for s in report.steps)
    assert report.alias_after == {"primary": NEW_VERSION, "weights": {}, "description": "production"}
    control = stand_in.target.control(fast_retry())
    if stand_in.cloud == "tencent":  # the scaler takes this very config over (it scales the alias's version)
        assert (
            control.capacity(NEW_VERSION).warm and control.capacity(NEW_VERSION).requested == INITIAL_CAPACITY
        )
    else:  # AWS: the alias's capacity is the scaler's; promote released its own version-level one
        assert control.capacity(NEW_VERSION).requested == 0
    assert control.capacity("1").requested == 0  # the old version's capacity is released
    assert control.versions()[NEW_VERSION] == "llmfn model-revision=rev-2 previous=1"
    shares = [u["routing"].get(NEW_VERSION, 0.0) for u in stand_in.alias_updates()[1:]]
    assert shares == pytest.approx([0.1, 0.5, 1.0])
    assert stand_in.unwarmed_routes() == []


def test_aws_promotion_hands_capacity_to_the_alias_once_it_is_warm(
    moto_reset: str, aws_proxy: AwsProxy, inference_endpoint: str
) -> None:
    """One owner: after a promotion the alias's capacity (the scaler's floor) serves the new version;
    promote's own version-level capacity is released only once the alias's is warm."""
    stand_in = aws_stand_in(moto_reset, aws_proxy)
    control = stand_in.target.control(fast_retry())
    control.set_capacity(ALIAS, 3)  # the scaler's floor on the alias
    publish_canary_metrics(stand_in)
    report = promotion(stand_in, inference_endpoint).run()
    assert report.status == "promoted", report.reason
    assert control.capacity(ALIAS).warm and control.capacity(ALIAS).requested == 3
    assert control.capacity(NEW_VERSION).requested == 0
    assert "DeregisterScalableTarget" in aws_proxy.operations  # promote's own version target only
    assert control.floor() == (3, ALIAS_MAX_CAPACITY)  # the alias's target is untouched


def test_failing_canary_rolls_back_and_leaves_the_alias_as_before(
    stand_in: StandIn, inference_endpoint: str, tmp_path: Path
) -> None:
    publish_canary_metrics(stand_in, errors=30)
    before = stand_in.target.control(fast_retry()).alias()
    outputs = tmp_path / "prod.json"
    outputs.write_text(
        json.dumps({"functionName": FUNCTION, "aliasName": ALIAS, "endpointUrl": inference_endpoint})
    )
    args = [
        "promote", "--stack", "prod", "--outputs", str(outputs), "--model-revision", "rev-2",
        "--cloud", stand_in.target.cloud, "--region", stand_in.target.region,
        "--api-endpoint", str(stand_in.target.endpoint), "--interval", "0", "--poll", "0.005",
        "--max-error-rate", "0.05", "--report", str(tmp_path / "report.json"),
    ]  # fmt: skip
    env = {
        "TENCENTCLOUD_SECRETID": reveal(stand_in.target.secret_id) or "",
        "TENCENTCLOUD_SECRETKEY": reveal(stand_in.target.secret_key) or "",
    }
    result = CliRunner().invoke(app, args, env=env)

    assert result.exit_code == 1, result.output
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["status"] == "rolled-back"
    assert "error rate 0.3000 > 0.05" in report["reason"]
    assert [s["percent"] for s in report["steps"]] == [10]
    control = stand_in.target.control(fast_retry())
    assert control.alias() == before
    assert control.capacity(NEW_VERSION).requested == 0
    assert control.capacity("1").warm and control.capacity("1").requested == INITIAL_CAPACITY
    assert stand_in.unwarmed_routes() == []


def test_failing_smoke_request_rolls_back(stand_in: StandIn) -> None:
    publish_canary_metrics(stand_in)
    report = promotion(stand_in, DEAD_ENDPOINT).run()
    assert report.status == "rolled-back"
    assert "smoke request failed (http)" in report.reason
    assert report.alias_after == report.alias_before


@pytest.mark.parametrize("stand_in", ["aws"], indirect=True)
def test_without_an_endpoint_the_smoke_request_invokes_the_new_version(stand_in: StandIn) -> None:
    publish_canary_metrics(stand_in)
    report = promotion(stand_in, None, steps=(50, 100)).run()
    assert report.status == "promoted", report.reason
    smoke = report.steps[0]["gate"]["smoke"]
    assert smoke["ok"] and smoke["via"] == f"invoke {NEW_VERSION}"
    assert stand_in.invocations() == 2


@pytest.mark.parametrize("stand_in", ["tencent"], indirect=True)
def test_scf_smoke_goes_over_http_to_the_canary_versions_own_function_url(
    stand_in: StandIn, inference_endpoint: str
) -> None:
    """SCF web functions take HTTP, not Invoke: promote binds a function URL to the new version (doc
    583/100227: a URL binds to an alias or a version), smokes it, and deletes it when it is done."""
    scf = stand_in.scf
    assert scf is not None
    publish_canary_metrics(stand_in)
    report = promotion(stand_in, inference_endpoint, steps=(50, 100)).run()
    assert report.status == "promoted", report.reason
    assert all(s["gate"]["smoke"]["via"] == "http" for s in report.steps)
    assert not [a for a, _ in scf.calls if a == "Invoke"]
    smoked = {(q, v, path) for q, v, _, path in scf.url_requests}
    assert (NEW_VERSION, NEW_VERSION, "/v1/chat/completions") in smoked
    creates = [p for a, p in scf.calls if a == "CreateTrigger" and p["Qualifier"] == NEW_VERSION]
    assert len(creates) == 1 and creates[0]["Type"] == "http"
    assert scf.function_url(FUNCTION, NEW_VERSION) is None  # deleted when the promotion ended


@pytest.mark.parametrize("stand_in", ["tencent"], indirect=True)
def test_a_new_version_whose_instances_fail_rolls_back_and_drops_its_url(stand_in: StandIn) -> None:
    publish_canary_metrics(stand_in)
    assert stand_in.scf is not None
    report = promotion(stand_in, DEAD_ENDPOINT).run()  # the new version's instance never answers
    assert report.status == "rolled-back"
    assert "smoke request failed (http)" in report.reason
    assert report.alias_after == report.alias_before
    assert stand_in.scf.function_url(FUNCTION, NEW_VERSION) is None


@pytest.mark.parametrize("stand_in", ["tencent"], indirect=True)
def test_scf_promotion_deletes_versions_older_than_the_rollback_target(
    stand_in: StandIn, inference_endpoint: str
) -> None:
    """The stack retains every version it replaces; after a promotion, versions older than the rollback
    target that no alias routes to go (SCF refuses versions past its limit: LimitExceeded.FunctionVersions)."""
    scf = stand_in.scf
    assert scf is not None
    control = stand_in.target.control(fast_retry())
    # versions 2 and 3 (`pulumi up` twice), the alias moved to 3 by an earlier promotion; a second alias
    # `pinned` still routes to 2
    for revision in ("rev-1b", "rev-1c"):
        control.publish_version(f"llmfn model-revision={revision}")
    control.set_capacity("3", INITIAL_CAPACITY)
    scf.prewarm(FUNCTION, "3", INITIAL_CAPACITY)
    control.set_routing("3", {})
    control.set_capacity("1", 0)
    control._call("CreateAlias", Name="pinned", FunctionVersion="2")
    scf.version_limit = 4
    publish_canary_metrics_for(stand_in, "4")
    report = promotion(stand_in, inference_endpoint, serve=("3", "4")).run()
    assert report.status == "promoted", report.reason
    assert (report.previous_version, report.new_version) == ("3", "4")
    assert report.deleted_versions == ["1"]  # 2 is pinned; 3 is the rollback target; 4 serves
    assert sorted(control.versions(), key=int) == ["2", "3", "4"]
    control.publish_version("room for the next one")  # under the limit again


def test_slow_canary_rolls_back_on_p95(stand_in: StandIn, inference_endpoint: str) -> None:
    publish_canary_metrics(stand_in, duration_ms=3500)
    report = promotion(stand_in, inference_endpoint).run()
    assert report.status == "rolled-back"
    assert "P95 3.500 s > 2.0 s" in report.reason


def test_throttling_5xx_and_timeouts_mid_promotion_are_retried(
    stand_in: StandIn, inference_endpoint: str
) -> None:
    publish_canary_metrics(stand_in)
    if stand_in.scf is not None:
        stand_in.scf.update_s = 0.0  # count only the injected faults' retries
    provision = "RegisterScalableTarget" if stand_in.cloud == "aws" else "PutProvisionedConcurrencyConfig"
    stand_in.faults.inject("UpdateAlias", "throttle", times=2)
    stand_in.faults.inject(provision, "5xx")
    stand_in.faults.inject("PublishVersion", "throttle")
    stand_in.faults.inject("GetAlias", "timeout")
    stand_in.faults.inject("UpdateAlias", "lost")  # applied, answer lost: the retry must be harmless
    report = promotion(stand_in, inference_endpoint).run()
    assert report.status == "promoted", report.reason
    assert len(report.retries) == 6
    assert stand_in.faults.pending() == 0
    assert stand_in.unwarmed_routes() == []


@pytest.mark.parametrize("killed_after_shift", [2, 3])
def test_killed_job_resumes_from_the_alias_state(
    stand_in: StandIn, inference_endpoint: str, killed_after_shift: int
) -> None:
    """Killed right after the 50 % shift (2) or after the alias moved to the new version (3)."""
    publish_canary_metrics(stand_in)
    control = KillAfterRouting(stand_in.target.control(fast_retry()), killed_after_shift)
    with pytest.raises(JobKilled):
        promotion(stand_in, inference_endpoint, control=control).run()

    report = promotion(stand_in, inference_endpoint).run()
    assert report.status == "promoted", report.reason
    assert report.resumed and report.new_version == NEW_VERSION
    assert [s["percent"] for s in report.steps] == [50, 100][killed_after_shift - 2 :]
    control2 = stand_in.target.control(fast_retry())
    assert sorted(control2.versions()) == ["1", NEW_VERSION]  # nothing published twice
    assert control2.alias().primary == NEW_VERSION and control2.capacity("1").requested == 0
    assert stand_in.unwarmed_routes() == []

    again = promotion(stand_in, inference_endpoint).run()
    assert again.status == "already-promoted" and again.steps == []


def test_traffic_waits_for_warm_capacity(stand_in: StandIn, inference_endpoint: str) -> None:
    publish_canary_metrics(stand_in)
    warming = stand_in.aws_proxy or stand_in.scf
    assert warming is not None
    warming.capacity.warmup_s = 0.2  # polled ~40 times before the first shift
    report = promotion(stand_in, inference_endpoint).run()
    assert report.status == "promoted", report.reason
    first_shift = stand_in.alias_updates()[1]
    assert first_shift["ready"][NEW_VERSION] == INITIAL_CAPACITY
    assert stand_in.unwarmed_routes() == []


def test_capacity_that_never_warms_rolls_back_without_routing(
    stand_in: StandIn, inference_endpoint: str
) -> None:
    warming = stand_in.aws_proxy or stand_in.scf
    assert warming is not None
    warming.capacity.warmup_s = 3600.0
    report = promotion(stand_in, inference_endpoint, warm_timeout_s=0.05).run()
    assert report.status == "rolled-back"
    assert "not ready" in report.reason
    assert len(stand_in.alias_updates()) == 2  # the set-up, then the rollback's no-op re-assertion
    assert stand_in.unwarmed_routes() == []
    assert stand_in.target.control(fast_retry()).capacity(NEW_VERSION).requested == 0


def test_steps_are_validated() -> None:
    assert parse_steps("5, 25,100") == (5, 25, 100)
    for bad in ("10,50", "50,10,100", "0,100", "10,x,100"):
        with pytest.raises(ValueError, match=r"^steps must") as refused:
            parse_steps(bad)
        assert cli_message(refused.value, "promote").startswith("--steps must")


def test_a_promotion_refuses_an_alias_routing_to_versions_it_does_not_own(stand_in: StandIn) -> None:
    control = stand_in.target.control(fast_retry())
    control.set_environment({"X": "1"})
    other = control.publish_version("someone else's canary")
    control.set_capacity(other, 1)
    warming = stand_in.aws_proxy or stand_in.scf
    assert warming is not None
    warming.prewarm(FUNCTION, other, 1)
    control.set_routing("1", {other: 0.2})
    with pytest.raises(ValueError, match="did not create"):
        promotion(stand_in, None).run()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--cloud", "gcp"], "--cloud must be one of"),
        (["--cloud", "scf", "--steps", "50,10"], "--steps must increase"),
        (["--cloud", "lambda", "--max-error-rate", "2"], "--max-error-rate must be in [0, 1]"),
        (["--cloud", "aws"], "no value for --region"),
    ],
)
def test_bad_promote_flags_are_one_error_line(
    flags: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from llmfn.cli import main

    outputs = tmp_path / "prod.json"
    outputs.write_text(json.dumps({"functionName": FUNCTION, "aliasName": ALIAS}))
    with pytest.raises(SystemExit) as info:
        main(["promote", "--stack", "prod", "--outputs", str(outputs), "--model-revision", "rev-2", *flags])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_promote_moves_the_alias_to_the_version_the_stack_published(
    stand_in: StandIn, inference_endpoint: str
) -> None:
    """One owner: `pulumi up` with a new revision publishes `llmfn model-revision=REV` (infra/common.py)
    and leaves the alias; promote finds that version, publishes nothing, and moves the alias to it."""
    control = stand_in.target.control(fast_retry())
    control.set_environment({"LLMFN_MODEL_REVISION": "rev-2"})  # what the stack's update does
    published = control.publish_version("llmfn model-revision=rev-2 code=0123456789ab")
    publish_canary_metrics(stand_in)
    report = promotion(stand_in, inference_endpoint).run()
    assert report.status == "promoted", report.reason
    assert (report.previous_version, report.new_version, report.resumed) == ("1", published, False)
    assert sorted(control.versions()) == ["1", published]  # nothing else published
    assert control.alias().primary == published and not control.alias().weights
    assert stand_in.unwarmed_routes() == []

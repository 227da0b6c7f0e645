"""The deployed schedule is `llmfn plan`'s: the same profile and rule give the same counts and crons."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.infra.mocks import REPO_ROOT, StackRun, example_config, example_with, parse_example, run_stack

TENCENT = "Pulumi.example-tencent.yaml"
AWS = "Pulumi.example-aws.yaml"


def _llmfn_plan(config: dict[str, Any], source: list[str]) -> dict[str, Any]:
    """``llmfn plan --json`` for the stack's rule, run as users run it."""
    stack = parse_example(config)
    rule = [
        "--p95", str(stack.p95_latency_s),
        "--concurrency", str(stack.concurrency_per_instance),
        "--headroom", str(stack.headroom),
        "--min", str(stack.min_instances),
        "--max", str(stack.max_instances),
        "--utc-offset", str(stack.utc_offset_hours),
    ]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "llmfn", "plan", *source, *rule, "--json"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _assert_same_schedule(run: StackRun, plan: dict[str, Any], cron_key: str) -> None:
    assert run.outputs["reservedSchedule"] == plan["reserved_by_hour"]
    deployed = [(a["hour"], a["instances"], a["cron"]) for a in run.outputs["scheduleActions"]]
    assert deployed == [(c["hour"], c["instances"], c[cron_key]) for c in plan["changes"]]


@pytest.mark.parametrize(("example", "cron_key"), [(TENCENT, "scf_cron"), (AWS, "aws_cron")])
def test_example_schedule_equals_llmfn_plan(example: str, cron_key: str, tmp_path: Path) -> None:
    config = example_config(example)
    profile = tmp_path / "rates.json"
    profile.write_text(json.dumps(config["llmfn:ratesByHour"]))
    plan = _llmfn_plan(config, ["--rate-profile", str(profile)])
    _assert_same_schedule(run_stack(config), plan, cron_key)
    assert len(plan["changes"]) >= 10  # a real day-night profile, not a flat one


def test_trace_schedule_equals_llmfn_plan(traces_dir: Path) -> None:
    trace = traces_dir / "servegen_m-large_per_10min.csv"
    config = example_with(AWS, ratesByHour=None, trafficTrace=str(trace), maxInstances=1000)
    plan = _llmfn_plan(config, ["--trace", str(trace)])
    run = run_stack(config)
    _assert_same_schedule(run, plan, "aws_cron")
    assert max(run.outputs["reservedSchedule"]) > 100

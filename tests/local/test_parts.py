"""The local runtime's pieces without worker processes: configuration, routing, load plans, the
calibration fit and the simulator adapter, and the CLI's refusals."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from core.errors import InputError
from llmfn.errors import cli_message
from llmfn.local.autoscaler import Autoscaler, policy_config
from llmfn.local.client import Completion, v1_base
from llmfn.local.config import DevConfig
from llmfn.local.gateway import Gateway, request_tier
from llmfn.local.loadgen import check_target, percentile, poisson_plan, trace_plan
from llmfn.local.pool import WorkerPool
from llmfn.local.prediction import Calibration, calibrate, mean_cold_start_s, predict
from llmfn.local.status import ColdStartStatus, PoolStatus, RuntimeStatus, WorkerStatus
from llmfn.local.worker import worker_command
from tests.local.helpers import REPO_ROOT


@pytest.mark.parametrize(
    ("changes", "flag"),
    [
        ({"reserved": 3, "max_instances": 2}, "--reserved 3 exceeds --max 2"),
        ({"max_instances": 0}, "--max"),
        ({"concurrency_per_instance": 0}, "--slots"),
        ({"tick_s": 0.0}, "--tick"),
        ({"idle_timeout_s": float("nan")}, "--idle-timeout"),
        ({"port": 70000}, "--port"),
        ({"engine": "vllm"}, "--engine"),
        ({"host": "0.0.0.0"}, "host must be a loopback address"),  # no --host flag: the field
    ],
)
def test_config_errors_name_the_flag(changes: dict[str, object], flag: str) -> None:
    """The library names its field; the CLI's one printer words it as the flag the user typed."""
    with pytest.raises(InputError) as refused:
        DevConfig(model_dir=Path("m"), **changes)  # type: ignore[arg-type]
    assert refused.value.field in changes
    assert cli_message(refused.value, "dev").startswith(flag)


def test_config_serves_the_directory_name_unless_named() -> None:
    assert DevConfig(model_dir=Path("/x/tiny")).served_model_name == "tiny"
    assert DevConfig(model_dir=Path("/x/tiny"), model_name="org/m").served_model_name == "org/m"


def test_request_tier_reads_chat_parts_and_completion_prompts() -> None:
    assert request_tier({"messages": [{"role": "user", "content": "hi"}]})[0] == "S"
    code = "```python\n" + "def f(x):\n    for i in range(x): pass\n" * 300 + "```"
    tier, score = request_tier(
        {"messages": [{"role": "user", "content": [{"type": "text", "text": code}]}], "max_tokens": 512}
    )
    assert (tier, score) == ("L", 5.0)
    assert request_tier({"prompt": ["a " * 4000], "max_tokens": 256})[0] == "M"
    assert request_tier("not an object") == ("S", 0.0)
    assert request_tier({"messages": "wrong", "max_tokens": -4}) == ("S", 0.0)


def test_v1_base_and_loopback_guard() -> None:
    assert v1_base("http://127.0.0.1:8080/") == "http://127.0.0.1:8080/v1"
    assert v1_base("https://api.example.com/v1") == "https://api.example.com/v1"
    with pytest.raises(ValueError, match="http:// or https://"):
        v1_base("127.0.0.1:8080")
    check_target("http://127.0.0.1:8080", allow_remote=False)
    check_target("http://localhost:8080", allow_remote=False)
    check_target("http://[::1]:8080", allow_remote=False)
    with pytest.raises(ValueError, match="allow_remote"):
        check_target("https://api.example.com", allow_remote=False)
    check_target("https://api.example.com", allow_remote=True)


def test_trace_plan_slices_scales_and_caps() -> None:
    arrivals = [0.0, 1.0, 2.5, 4.0, 9.0]
    plan = trace_plan(
        arrivals,
        [100, 2000, 300, 40, 5],
        [10, 20, 500, 40, 5],
        1.0,
        4.0,
        time_scale=2.0,
        token_scale=0.5,
        max_prompt_tokens=512,
        max_output_tokens=64,
    )
    assert [p.at_s for p in plan] == [0.0, 0.75, 1.5]
    assert [(p.prompt_tokens, p.output_tokens) for p in plan] == [(512, 10), (150, 64), (20, 20)]
    with pytest.raises(ValueError, match="no request of the trace"):
        trace_plan(arrivals, [1] * 5, [1] * 5, 100.0, 10.0)
    with pytest.raises(ValueError, match="time_scale"):
        trace_plan(arrivals, [1] * 5, [1] * 5, 0.0, 10.0, time_scale=0)


def test_poisson_plan_is_seeded_and_bounded() -> None:
    first, again = poisson_plan(5.0, 60.0, 32, 8, seed=3), poisson_plan(5.0, 60.0, 32, 8, seed=3)
    assert first == again and 200 < len(first) < 400
    assert all(0 <= p.at_s < 60 for p in first)
    with pytest.raises(ValueError, match="duration_s"):
        poisson_plan(5.0, 1e6, 32, 8)
    with pytest.raises(ValueError, match="at most 20000"):
        poisson_plan(1000.0, 3600.0, 32, 8)


def test_percentile_interpolates() -> None:
    assert percentile([], 0.5) is None
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert percentile([0.0, 10.0], 0.99) == pytest.approx(9.9)


def test_calibration_recovers_a_known_service_model() -> None:
    overhead, prefill, decode = 0.02, 10_000.0, 0.004
    probes = [
        Completion(
            200,
            ttft_s=overhead + p / prefill,
            e2e_s=overhead + p / prefill + (o - 1) * decode,
            prompt_tokens=p,
            completion_tokens=o,
        )
        for p, o in ((16, 8), (512, 8), (1024, 8), (16, 64), (256, 64))
    ]
    fit = calibrate(probes)
    assert fit.overhead_s == pytest.approx(overhead)
    assert fit.prefill_tokens_per_s == pytest.approx(prefill)
    assert fit.decode_s_per_token == pytest.approx(decode)
    with pytest.raises(RuntimeError, match="distinct prompt sizes"):
        calibrate(probes[:1] * 4)


def _status(policy: str, config: dict[str, object], tmp_path: Path) -> RuntimeStatus:
    """The status of a runtime that was never started, with the policy and config given."""
    dev = DevConfig(model_dir=tmp_path, max_instances=2, idle_timeout_s=10.0, tick_s=1.0)
    pool = WorkerPool(dev, tmp_path)
    status = Gateway(dev, pool, Autoscaler(dev.policy, policy_config(dev), pool)).status()
    return status.model_copy(
        update={"policy": status.policy.model_copy(update={"name": policy, "config": config})}
    )


def test_the_gateway_status_is_the_typed_model_and_a_renamed_key_fails(tmp_path: Path) -> None:
    dev = DevConfig(model_dir=tmp_path, max_instances=3, concurrency_per_instance=2)
    pool = WorkerPool(dev, tmp_path)
    gateway = Gateway(dev, pool, Autoscaler(dev.policy, policy_config(dev), pool))
    status = gateway.status()
    assert (status.pool.quota, status.pool.slots_per_worker, status.pool.workers) == (3, 2, [])
    assert status.gateway.model_dir == str(tmp_path) and status.policy.name == dev.policy
    assert RuntimeStatus.model_validate_json(status.model_dump_json()) == status
    snapshot = pool.snapshot()
    snapshot["slots"] = snapshot.pop("slots_per_worker")
    with pytest.raises(ValidationError) as raised:
        PoolStatus.model_validate(snapshot)
    assert {".".join(map(str, e["loc"])) for e in raised.value.errors()} == {"slots_per_worker", "slots"}


def test_mean_cold_start_counts_the_workers_started_during_the_run(tmp_path: Path) -> None:
    status = _status("fixed", {}, tmp_path)

    def worker(worker_id: int, ready_s: float | None) -> WorkerStatus:
        cold_start = ColdStartStatus(listening_s=None, ready_s=ready_s, stages={}, preload_s={})
        return WorkerStatus(
            id=worker_id, kind="on-demand", state="ready", pid=1, port=1, in_flight=0, served=0,
            age_s=1.0, idle_s=None, cold_start=cold_start, failure=None, log="",
        )  # fmt: skip

    pool = status.pool.model_copy(
        update={"workers": [worker(1, 2.0), worker(3, 4.0)], "retired": [worker(2, 6.0)]}
    )
    status = status.model_copy(update={"pool": pool})
    assert mean_cold_start_s(status) == pytest.approx(4.0)
    assert mean_cold_start_s(status, after_worker_id=1) == pytest.approx(5.0)
    assert mean_cold_start_s(status, after_worker_id=3) == pytest.approx(4.0)  # none after: all of them
    empty = status.model_copy(
        update={"pool": pool.model_copy(update={"workers": [worker(4, None)], "retired": []})}
    )
    assert mean_cold_start_s(empty) is None


def test_prediction_of_a_warm_fixed_pool_has_no_cold_start_and_counts_the_window_only(tmp_path: Path) -> None:
    calibration = Calibration(overhead_s=0.05, prefill_tokens_per_s=10_000.0, decode_s_per_token=0.01)
    status = _status(
        "fixed", {"fixed_instances": 1, "concurrency_per_instance": 1, "max_reserved": 2}, tmp_path
    )
    got = predict(
        [1.0, 5.0],
        [100, 100],
        [10, 10],
        20.0,
        warm_reserved=1,
        status=status,
        calibration=calibration,
        cold_start_s=4.0,
    )
    assert got.cold_starts == 0 and got.cold_fraction == 0
    assert got.ttft_p99_s == pytest.approx(0.05 + 0.01)
    assert got.e2e_p99_s == pytest.approx(0.05 + 0.01 + 10 * 0.01)
    assert got.instance_seconds == pytest.approx(20.0)


def test_prediction_of_on_demand_pays_the_cold_start_and_the_keep_alive(tmp_path: Path) -> None:
    calibration = Calibration(overhead_s=0.0, prefill_tokens_per_s=10_000.0, decode_s_per_token=0.01)
    status = _status("on-demand", {"concurrency_per_instance": 1, "max_reserved": 2}, tmp_path)
    got = predict(
        [0.0], [100], [10], 30.0, warm_reserved=0, status=status, calibration=calibration, cold_start_s=4.0
    )
    assert got.cold_starts == 1 and got.cold_fraction == 1
    assert got.ttft_p99_s == pytest.approx(4.0 + 0.01)
    assert (
        4.0 + 0.11 + 10 - 1 <= got.instance_seconds <= 4.0 + 0.11 + 10 + 1
    )  # cold start + work + keep-alive


def _llmfn(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llmfn", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )


def test_load_refuses_a_remote_url_and_ambiguous_input() -> None:
    remote = _llmfn("load", "--url", "http://10.1.2.3:8080", "--rps", "1", "--duration", "1")
    assert remote.returncode == 2 and "--allow-remote" in remote.stderr
    both = _llmfn("load", "--url", "http://127.0.0.1:9", "--rps", "1", "--trace", "x.csv")
    assert both.returncode == 2 and "exactly one of --trace FILE or --rps R" in both.stderr


def test_invoke_says_clearly_when_nothing_listens() -> None:
    result = _llmfn("invoke", "hi", "--url", "http://127.0.0.1:9")
    assert result.returncode == 1
    assert "is `llmfn dev` running?" in result.stderr


def test_prewarm_renews_idle_on_demand_workers_before_starting_new_ones() -> None:
    """Decision.prewarm = N holds N on-demand workers warm: sent every tick, it must not start N more."""
    from pathlib import Path

    from llmfn.local.pool import prewarm_targets
    from llmfn.local.worker import Worker, WorkerKind, WorkerState

    def worker(worker_id: int, kind: WorkerKind, state: WorkerState, in_flight: int = 0) -> Worker:
        return Worker(worker_id, kind, 0, None, Path("log"), 0.0, state=state, in_flight=in_flight)  # type: ignore[arg-type]

    idle = worker(1, WorkerKind.ON_DEMAND, WorkerState.READY)
    starting = worker(2, WorkerKind.ON_DEMAND, WorkerState.STARTING)
    busy = worker(3, WorkerKind.ON_DEMAND, WorkerState.READY, in_flight=1)
    reserved = worker(4, WorkerKind.RESERVED, WorkerState.READY)
    dead = worker(5, WorkerKind.ON_DEMAND, WorkerState.FAILED)
    pool = [idle, starting, busy, reserved, dead]
    assert prewarm_targets(pool, 0) == ([], 0)
    assert prewarm_targets(pool, 1) == ([idle], 0)
    assert prewarm_targets(pool, 2) == ([idle, starting], 0)
    assert prewarm_targets(pool, 4) == ([idle, starting], 2)


def test_tier_exclusive_workers_take_only_their_tier_while_busy() -> None:
    """llmfn dev --tier-exclusive: the simulator's tiered dispatch (llmfn simulate --tiers)."""
    from pathlib import Path

    from llmfn.local.pool import pick_worker
    from llmfn.local.worker import Worker, WorkerKind, WorkerState

    def worker(worker_id: int, in_flight: int, tier: str | None) -> Worker:
        made = Worker(worker_id, WorkerKind.ON_DEMAND, 0, None, Path("log"), 0.0, state=WorkerState.READY)  # type: ignore[arg-type]
        made.in_flight, made.tier = in_flight, tier
        return made

    busy_s, busy_m, idle = worker(1, 3, "S"), worker(2, 1, "M"), worker(3, 0, "S")
    pool = [busy_s, busy_m, idle]
    assert pick_worker(pool, 4, 1, "M", tier_exclusive=False) is busy_s  # packing: the busiest
    assert pick_worker(pool, 4, 1, "M", tier_exclusive=True) is busy_m  # its own tier
    assert pick_worker(pool, 4, 1, "L", tier_exclusive=True) is idle  # an idle worker takes any tier
    assert pick_worker([busy_s, busy_m], 4, 1, "L", tier_exclusive=True) is None


def test_workers_run_the_deployed_serving_module(tmp_path: Path) -> None:
    """``llmfn dev`` is a laptop tool, but each worker is the deployed function: ``functions.serve``."""
    command = worker_command(DevConfig(model_dir=tmp_path, model_name="tiny"), 8123)
    assert command[:5] == [sys.executable, "-m", "functions.serve", "--model", str(tmp_path)]
    assert command[command.index("--port") + 1] == "8123"

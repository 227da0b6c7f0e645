"""``llmfn dev`` end to end: a real gateway subprocess in front of real worker processes (tiny model).

Two runtimes, each started once: one with a reserved worker under the fixed policy (answers, metrics,
a worker killed mid-request, SIGTERM), one with no reserved worker (a burst cold-starts on-demand
workers, idle ones are reaped to zero, Ctrl-C).
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.local.helpers import DevServer, leftover_processes, processes_in_groups, wait_until

pytestmark = pytest.mark.slow

_FAST = ("--tick", "0.2", "--worker-threads", "1", "--queue-timeout", "90")


@pytest.fixture(scope="module")
def reserved_runtime(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    log = tmp_path_factory.mktemp("dev-reserved") / "dev.log"
    server = DevServer(tiny_model_dir, log, "--policy", "fixed", "--reserved", "1", "--max", "2", *_FAST)
    try:
        server.wait_ready(1)
        yield server
    finally:
        server.kill_everything()


@pytest.fixture(scope="module")
def on_demand_runtime(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    log = tmp_path_factory.mktemp("dev-on-demand") / "dev.log"
    server = DevServer(
        tiny_model_dir,
        log,
        "--policy",
        "on-demand",
        "--reserved",
        "0",
        "--max",
        "2",
        "--idle-timeout",
        "2",
        *_FAST,
    )
    try:
        wait_until(lambda: _answers(server.url), 30, "the gateway to listen")
        yield server
    finally:
        server.kill_everything()


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _client(server: DevServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", timeout=120, max_retries=0)


def test_openai_client_gets_an_answer_streamed_and_not(reserved_runtime: DevServer) -> None:
    client = _client(reserved_runtime)
    model = client.models.list().data[0].id
    answer = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Hello!"}], max_tokens=8
    )
    assert answer.choices[0].message.content
    assert answer.usage is not None and answer.usage.completion_tokens >= 1
    deltas = [
        chunk.choices[0].delta.content or ""
        for chunk in client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "Hello!"}], max_tokens=8, stream=True
        )
        if chunk.choices
    ]
    assert "".join(deltas)
    raw = httpx.post(
        f"{reserved_runtime.url}/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2},
        timeout=60,
    )
    assert raw.headers["x-llmfn-tier"] in ("S", "M", "L")
    assert raw.headers["x-llmfn-cold-start"] == "0"  # the reserved worker was warm
    assert reserved_runtime.workers(kind="reserved", state="ready")[0]["served"] >= 3


def test_status_and_metrics_show_workers_and_stage_timings(reserved_runtime: DevServer) -> None:
    status = reserved_runtime.status()
    worker = status["pool"]["workers"][0]
    assert worker["kind"] == "reserved" and worker["state"] == "ready"
    assert worker["pid"] > 0 and worker["port"] > 0
    cold = worker["cold_start"]
    assert 0 < cold["listening_s"] <= cold["ready_s"]
    assert cold["stages"], "the preload stages seen on /readyz are recorded"
    timeline = {row["name"]: row for row in cold["timeline"]["stages"]}  # the worker's own, per worker
    assert {"interpreter", "imports", "weights", "engine"} <= timeline.keys()
    assert timeline["engine"]["end_s"] <= cold["timeline"]["ready_s"]
    assert status["policy"]["name"] == "fixed" and status["policy"]["decision"]["reserved"] == 1
    metrics = httpx.get(f"{reserved_runtime.url}/metrics", timeout=5).text
    assert 'llmfn_dev_workers{kind="reserved",state="ready"} 1.0' in metrics
    assert "llmfn_dev_worker_cold_start_seconds" in metrics
    assert "llmfn_dev_gateway_requests_total" in metrics


def test_load_measures_and_puts_the_simulator_beside(reserved_runtime: DevServer, tmp_path: Path) -> None:
    profile = tmp_path / "measured.json"
    args = ["load", "--url", reserved_runtime.url, "--rps", "3", "--duration", "3", "--output-tokens", "8"]
    args += ["--write-profile", str(profile)]
    result = subprocess.run(
        [sys.executable, "-m", "llmfn", *args, "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    measured, predicted = report["measured"], report["predicted"]
    assert measured["planned"] >= 1 and measured["answered"] == measured["planned"]
    assert measured["rejected_429"] == measured["server_errors"] == measured["transport_errors"] == 0
    assert 0 < measured["ttft_p50_s"] <= measured["ttft_p99_s"] <= measured["e2e_p99_s"]
    # one reserved worker over the sampled window (the 3 s horizon plus this machine's scheduling delays)
    assert measured["instance_seconds_sampled_s"] >= 3.0
    assert measured["instance_seconds"] == pytest.approx(measured["instance_seconds_sampled_s"], abs=0.5)
    assert predicted["instance_seconds"] == 3.0 and predicted["cold_starts"] == 0
    assert report["calibration"]["decode_s_per_token"] > 0  # fitted from probes: every prompt was alike
    # the measurement flows into the plan: the written profile is what simulate and plan read
    from scaling.profile import read_profile

    measured_profile = read_profile(profile)
    service = measured_profile.service_model()
    assert service.decode_s_per_token == pytest.approx(report["calibration"]["decode_s_per_token"])
    assert service.prefill_tokens_per_s == pytest.approx(report["calibration"]["prefill_tokens_per_s"])
    assert measured_profile.concurrency is not None and measured_profile.cold_start is not None


def test_worker_killed_mid_request_gives_503_or_retried_answer_and_pool_heals(
    reserved_runtime: DevServer,
) -> None:
    server = reserved_runtime
    victim = server.workers(kind="reserved", state="ready")[0]
    model = _client(server).models.list().data[0].id
    # greedy: sampled, the random-weight model can emit EOS early (seen: 96 tokens), and the answer would end
    # before the kill; greedy, it runs the whole 1900 tokens
    body = {
        "model": model,
        "messages": [{"role": "user", "content": "Tell me a story"}],
        "max_tokens": 1900,
        "temperature": 0,
    }
    started = threading.Event()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:

        def send() -> httpx.Response:
            started.set()
            return httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=120)

        future = pool.submit(send)
        started.wait()
        wait_until(
            lambda: any(w["in_flight"] for w in server.workers()), 30, "the request to reach the worker"
        )
        os.kill(victim["pid"], signal.SIGKILL)
        response = future.result(timeout=120)  # never a hang
    assert response.status_code in (200, 503)
    if response.status_code == 503:
        assert response.json()["error"]["message"]
        assert "retry-after" in response.headers
    else:
        assert response.headers["x-llmfn-worker"] != str(victim["id"])
    wait_until(lambda: not leftover_processes({victim["pid"]}), 15, "the killed worker to be reaped")
    healed = wait_until(
        lambda: [w for w in server.workers(kind="reserved", state="ready") if w["pid"] != victim["pid"]],
        90,
        "a replacement reserved worker",
    )
    assert len(healed) == 1
    assert server.status()["pool"]["counters"]["worker_deaths"] >= 1


def test_worker_killed_mid_stream_ends_the_stream_with_an_error(reserved_runtime: DevServer) -> None:
    server = reserved_runtime
    server.wait_ready(1)
    client = _client(server)
    model = client.models.list().data[0].id
    stream = client.chat.completions.create(  # greedy: it cannot end early on EOS (see the test above)
        model=model,
        messages=[{"role": "user", "content": "Go on"}],
        max_tokens=1900,
        temperature=0,
        stream=True,
    )
    chunks = iter(stream)
    next(chunks)  # the stream has started on a worker
    victim = next(w for w in server.workers() if w["in_flight"])
    os.kill(victim["pid"], signal.SIGKILL)
    with pytest.raises(openai.APIError, match="worker failed mid-stream"):
        for _ in chunks:
            pass
    wait_until(
        lambda: [w for w in server.workers(kind="reserved", state="ready") if w["pid"] != victim["pid"]],
        90,
        "a replacement reserved worker",
    )


def test_sigterm_leaves_no_process(reserved_runtime: DevServer) -> None:
    server = reserved_runtime
    live = {w["pid"] for w in server.workers()}
    assert live and leftover_processes(live) == sorted(live)  # the workers are alive before
    pids = set(server.worker_pids)
    assert server.stop(signal.SIGTERM) == -signal.SIGTERM  # shut down cleanly, then re-raised
    assert leftover_processes(pids | {server.process.pid}) == []
    assert processes_in_groups(pids) == []
    assert "every worker process has exited" in server.log_path.read_text()


def test_burst_cold_starts_on_demand_workers_that_serve(on_demand_runtime: DevServer) -> None:
    server = on_demand_runtime
    assert server.status()["pool"]["workers"] == []  # nothing reserved, nothing warm
    model = _client(server).models.list().data[0].id  # the gateway answers this without a worker
    assert server.status()["pool"]["workers"] == []
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        responses = list(
            pool.map(
                lambda i: httpx.post(
                    f"{server.url}/v1/chat/completions",
                    json={
                        "model": model,
                        "messages": [{"role": "user", "content": f"hi {i}"}],
                        "max_tokens": 32,
                    },
                    timeout=120,
                ),
                range(3),
            )
        )
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert any(r.headers["x-llmfn-cold-start"] == "1" for r in responses)
    workers = server.workers(kind="on_demand")
    assert 1 <= len(workers) <= 2  # the quota holds
    assert sum(w["served"] for w in workers) == 3
    for worker in workers:  # every worker that served went through a whole cold start
        if worker["served"]:
            assert 0 < worker["cold_start"]["listening_s"] <= worker["cold_start"]["ready_s"]
            assert worker["cold_start"]["preload_s"]
    assert server.status()["pool"]["counters"]["cold_starts"] == len(workers)


def test_idle_on_demand_workers_are_reaped_to_zero(on_demand_runtime: DevServer) -> None:
    server = on_demand_runtime
    server.status()
    pids = set(server.worker_pids)
    assert pids, "the burst test left warm on-demand workers"
    wait_until(lambda: server.status()["pool"]["workers"] == [], 30, "idle workers to be reaped")
    assert server.status()["pool"]["counters"]["reaped"] >= 1
    wait_until(lambda: not leftover_processes(pids), 15, "reaped worker processes to exit")


def test_ctrl_c_leaves_no_process(on_demand_runtime: DevServer) -> None:
    server = on_demand_runtime
    assert server.stop(signal.SIGINT) in (130, -signal.SIGINT)  # KeyboardInterrupt after a clean shutdown
    assert leftover_processes(server.worker_pids | {server.process.pid}) == []
    assert "every worker process has exited" in server.log_path.read_text()

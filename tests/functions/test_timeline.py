"""The cold-start timeline: process start -> imports -> fetch -> weights -> engine -> first token, on
``/readyz`` and in the ``ready`` log line, from a real ``python -m functions.serve`` process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from functions.engines.base import EventRelay
from functions.readiness import ColdStartTimeline, Readiness
from preload import StageEvent, plan_checkpoint
from tests.functions.helpers import free_port, wait_listening, wait_ready
from tests.preload.conftest import BUCKET, s3, upload  # noqa: F401  (s3: the bucket fixture)

REPO_ROOT = Path(__file__).resolve().parents[2]
CHAT = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3, "stream": True}


@contextmanager
def serve_process(args: list[str], env: dict[str, str], log: Path) -> Iterator[str]:
    """``python -m functions.serve`` with its stderr (the JSON log) in ``log``; yields its URL once listening."""
    port = free_port()
    with open(log, "wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "functions.serve", *args, "--host", "127.0.0.1", "--port", str(port)],
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT), **env},
            cwd=REPO_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_listening(url, process, log.read_text)
            yield url
        finally:
            process.terminate()
            process.wait(10)


def steps(timeline: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in timeline["stages"]}


def first_token(url: str) -> None:
    with httpx.stream("POST", url + "/v1/chat/completions", json=CHAT, timeout=60) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: ") and '"content"' in line:
                break


def test_timeline_of_a_local_checkpoint_on_readyz_and_in_the_ready_log_line(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    log = tmp_path / "serve.log"
    with serve_process(["--model", str(tiny_model_dir), "--model-name", "tiny"], {}, log) as url:
        ready = wait_ready(url)["timeline"]
        by_name = steps(ready)
        assert {"interpreter", "imports", "weights", "skeleton", "engine"} <= by_name.keys()
        assert by_name["interpreter"]["start_s"] == 0.0  # the origin is the process's own start
        assert by_name["weights"]["bytes"] == plan_checkpoint(tiny_model_dir).total_bytes
        # the overlap: weight I/O began before the serving stack's imports ended
        assert by_name["weights"]["start_s"] <= by_name["imports"]["end_s"]
        assert by_name["engine"]["end_s"] <= ready["ready_s"] == ready["total_s"]
        assert ready["first_token_s"] is None
        first_token(url)
        after = httpx.get(url + "/readyz").json()["timeline"]
        assert after["ready_s"] == ready["ready_s"]
        assert after["first_token_s"] >= after["ready_s"] and after["total_s"] == after["first_token_s"]
        assert steps(after)["first_token"]["end_s"] == after["first_token_s"]
        first_token(url)  # only the first request's first token counts
        assert httpx.get(url + "/readyz").json()["timeline"]["first_token_s"] == after["first_token_s"]
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    ready_line = next(line for line in lines if line.get("event") == "ready")
    assert steps(ready_line["timeline"]).keys() == by_name.keys()


def test_timeline_of_an_s3_source_streams_without_shards_on_disk(
    s3,  # noqa: F811  (the preload suite's bucket fixture)
    tiny_model_dir: Path,
    tmp_path: Path,
    moto_server_url: str,
) -> None:
    upload(s3, tiny_model_dir, "tiny", with_sha256=True)
    env = {"AWS_ENDPOINT_URL": moto_server_url, "LLMFN_CACHE": str(tmp_path / "cache")}
    args = ["--model-source", f"s3://{BUCKET}/tiny", "--model-name", "tiny"]
    with serve_process(args, env, tmp_path / "serve.log") as url:
        by_name = steps(wait_ready(url)["timeline"])
        assert {"fetch", "weights", "engine"} <= by_name.keys()
        assert by_name["fetch"]["end_s"] <= by_name["weights"]["end_s"]
        assert by_name["weights"]["bytes"] == plan_checkpoint(tiny_model_dir).total_bytes
        first_token(url)
    kept = sorted(p.name for p in (tmp_path / "cache").rglob("*") if p.is_file())
    assert not [name for name in kept if name.endswith(".safetensors")]  # streamed, not downloaded
    assert "config.json" in kept


def test_events_relayed_late_keep_their_own_times() -> None:
    relay = EventRelay()
    began = time.monotonic()
    relay.emit(StageEvent("embedding", "start", 0, 10, 0.0, 1, 5, began))
    relay.emit(StageEvent("embedding", "end", 10, 10, 0.5, 1, 5, began + 0.5))
    relay.step("fetch", began - 1.0, 0.25)
    readiness = Readiness()
    relay.attach(readiness.on_event)  # replayed now, seconds later than they happened
    timeline = readiness.timeline.as_dict()
    by_name = steps(timeline)
    origin = readiness.timeline.origin
    assert by_name["weights"]["start_s"] == pytest.approx(began - origin, abs=1e-3)
    assert by_name["weights"]["seconds"] == pytest.approx(0.5, abs=1e-3)
    assert by_name["weights"]["bytes"] == 10
    assert by_name["fetch"]["seconds"] == pytest.approx(0.25, abs=1e-3)
    assert readiness.stage == "embedding" and readiness.stages_done == {
        "embedding": 0.5
    }  # fetch: no progress


def test_timeline_total_is_first_token_then_ready_then_now() -> None:
    timeline = ColdStartTimeline(origin=time.monotonic() - 2.0)
    assert timeline.as_dict()["total_s"] >= 2.0 and timeline.as_dict()["ready_s"] is None
    timeline.mark_ready()
    ready = timeline.as_dict()["ready_s"]
    assert timeline.as_dict()["total_s"] == ready
    timeline.first_token(time.monotonic() - 0.1)
    done = timeline.as_dict()
    assert done["total_s"] == done["first_token_s"] >= ready
    assert steps(done)["first_token"]["seconds"] >= 0.1


def test_engine_primes_the_calling_thread_only_once_torch_is_imported(tiny_model_dir: Path) -> None:
    from functions.engines.transformers_engine import TransformersEngine
    from functions.settings import ServeSettings

    engine = TransformersEngine(ServeSettings.from_env(model=str(tiny_model_dir), preload_workers=2))
    assert engine.prime_calling_thread() is False  # nothing imported yet: nothing done, nothing blocked
    readiness = Readiness()
    engine.load(readiness.on_event)
    assert engine.imported.is_set() and engine.prime_calling_thread() is True
    assert engine.prime_calling_thread() is True  # idempotent
    assert "imports" in steps(readiness.timeline.as_dict())

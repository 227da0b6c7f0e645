"""One worker: a ``python -m functions.serve`` process on its own loopback port, supervised.

Each worker runs in its own process group (``start_new_session``) and, on Linux, dies with the
gateway even if the gateway is killed with SIGKILL (``PR_SET_PDEATHSIG``). Its cold start is
observed from outside: spawn, first answer of ``/healthz`` (listening), then every preload stage
that ``/readyz`` reports until it answers 200 (ready).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import httpx

from core.contract import ENV_API_KEY
from llmfn.local.config import DevConfig

_PR_SET_PDEATHSIG = 1


class WorkerKind(StrEnum):
    """Reserved workers are kept warm by the policy; on-demand ones absorb bursts and get reaped."""

    RESERVED = "reserved"
    ON_DEMAND = "on_demand"


class WorkerState(StrEnum):
    """Lifecycle: starting -> ready -> stopping -> stopped, or -> failed when it dies or never loads."""

    STARTING = "starting"
    READY = "ready"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (reads /proc where present)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return not Path("/proc/self").exists()  # without /proc, kill(pid, 0) succeeding is all we know
    return state != "Z"


@dataclass
class ColdStart:
    """What one cold start took, seconds since spawn (``None`` until reached)."""

    listening_s: float | None = None
    ready_s: float | None = None
    stages: dict[str, float] = field(default_factory=dict)
    """First time each preload stage was seen by ``/readyz``, seconds since spawn."""
    preload_s: dict[str, float] = field(default_factory=dict)
    """Duration of each preload stage as the worker measured it (``stages_done_s``), seconds."""
    timeline: dict[str, object] = field(default_factory=dict)
    """The worker's cold-start timeline from its ``/readyz`` (process start -> ... -> ready)."""


@dataclass
class Worker:
    """A supervised worker process and the gateway's bookkeeping about it.

    in_flight counts slots in use (a heavy request holds all of them); served counts completed
    requests; spawned_at, ready_at, idle_since (``None`` while busy) and stopped_at are
    ``time.monotonic()`` instants.
    """

    worker_id: int
    kind: WorkerKind
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    spawned_at: float
    state: WorkerState = WorkerState.STARTING
    cold_start: ColdStart = field(default_factory=ColdStart)
    in_flight: int = 0
    served: int = 0
    idle_since: float | None = None
    ready_at: float | None = None
    stopped_at: float | None = None
    failure: str | None = None
    tier: str | None = None  # the complexity tier of the requests it serves now (tier-exclusive pools)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive_seconds(self, now: float) -> float:
        """Instance-seconds this worker has accumulated: from spawn to retirement (or now)."""
        return (self.stopped_at if self.stopped_at is not None else now) - self.spawned_at

    def exited(self) -> bool:
        return self.process.poll() is not None

    def snapshot(self, now: float) -> dict[str, object]:
        """JSON-ready description for ``/_llmfn/status``."""
        return {
            "id": self.worker_id,
            "kind": self.kind.value,
            "state": self.state.value,
            "pid": self.pid,
            "port": self.port,
            "in_flight": self.in_flight,
            "served": self.served,
            "age_s": round(now - self.spawned_at, 3),
            "idle_s": None if self.idle_since is None else round(now - self.idle_since, 3),
            "cold_start": {
                "listening_s": self.cold_start.listening_s,
                "ready_s": self.cold_start.ready_s,
                "stages": self.cold_start.stages,
                "preload_s": self.cold_start.preload_s,
                "timeline": self.cold_start.timeline or None,
            },
            "failure": self.failure,
            "log": str(self.log_path),
        }


def worker_command(config: DevConfig, port: int) -> list[str]:
    """The command line of one worker process."""
    cmd = [sys.executable, "-m", "functions.serve", "--model", str(config.model_dir)]
    cmd += ["--model-name", config.served_model_name, "--engine", config.engine]
    cmd += ["--max-body-bytes", str(config.max_body_bytes)]
    return [*cmd, "--host", "127.0.0.1", "--port", str(port), *config.worker_args]


def spawn_worker(config: DevConfig, worker_id: int, kind: WorkerKind, log_dir: Path) -> Worker:
    """Start a worker process in its own process group; its output goes to ``log_dir/worker-N.log``."""
    port = free_port()
    log_path = log_dir / f"worker-{worker_id}.log"
    env = dict(os.environ, OMP_NUM_THREADS=str(config.worker_threads), PYTHONUNBUFFERED="1")
    env.pop(ENV_API_KEY, None)
    if config.api_key is not None:
        env[ENV_API_KEY] = config.api_key.get_secret_value()  # the environment keeps it out of `ps`
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            worker_command(config, port),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
    return Worker(worker_id, kind, port, process, log_path, spawned_at=time.monotonic())


async def watch_cold_start(worker: Worker, client: httpx.AsyncClient, timeout_s: float) -> bool:
    """Poll the worker until ``/readyz`` answers 200, recording each stage; False if it failed.

    A worker that exits, or is not ready within ``timeout_s`` of its spawn, is marked failed.
    """
    import asyncio

    poll_s = 0.05
    while True:
        now = time.monotonic()
        if worker.state is not WorkerState.STARTING:
            return worker.state is WorkerState.READY
        if worker.exited():
            worker.state, worker.failure = WorkerState.FAILED, f"exited with {worker.process.returncode}"
            return False
        if now - worker.spawned_at > timeout_s:
            worker.state, worker.failure = WorkerState.FAILED, f"not ready after {timeout_s:g} s"
            return False
        try:
            response = await client.get(f"{worker.url}/readyz", timeout=2.0)
        except httpx.TransportError:
            await asyncio.sleep(poll_s)
            continue
        seen_at = round(time.monotonic() - worker.spawned_at, 3)
        if worker.cold_start.listening_s is None:
            worker.cold_start.listening_s = seen_at
        body = _json_object(response)
        if "stage" in body:
            worker.cold_start.stages.setdefault(str(body["stage"]), seen_at)
        if isinstance(body.get("stages_done_s"), dict):
            worker.cold_start.preload_s = dict(body["stages_done_s"])
        if isinstance(body.get("timeline"), dict):
            worker.cold_start.timeline = dict(body["timeline"])
        if response.status_code == 200:
            worker.cold_start.ready_s = seen_at
            worker.state = WorkerState.READY
            worker.idle_since = worker.ready_at = time.monotonic()
            return True
        await asyncio.sleep(poll_s)


def _json_object(response: httpx.Response) -> dict[str, object]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def terminate(worker: Worker, grace_s: float = 3.0) -> None:
    """Stop the worker's whole process group: SIGTERM, then SIGKILL after ``grace_s``; reap it."""
    if worker.state not in (WorkerState.FAILED, WorkerState.STOPPED):
        worker.state = WorkerState.STOPPING
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(worker.pid, sig)
        try:
            worker.process.wait(timeout=wait_s)
            break
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(worker.pid, signal.SIGKILL)  # anything the worker itself started
    if worker.state is not WorkerState.FAILED:
        worker.state = WorkerState.STOPPED
    if worker.stopped_at is None:
        worker.stopped_at = time.monotonic()

"""Start ``llmfn dev`` as a real subprocess for the tests, and check what it leaves behind."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from llmfn.local.status import RuntimeStatus
from llmfn.local.worker import free_port, pid_alive

REPO_ROOT = Path(__file__).resolve().parents[2]


def wait_until(predicate: Callable[[], Any], timeout_s: float, what: str, poll_s: float = 0.1) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(poll_s)


class DevServer:
    """``python -m llmfn dev ...`` on a free port; remembers every worker pid it ever reported."""

    def __init__(self, model_dir: Path, log_path: Path, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        cmd = [
            sys.executable,
            "-m",
            "llmfn",
            "dev",
            "--model",
            str(model_dir),
            "--port",
            str(self.port),
            *args,
        ]
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
        self.worker_pids: set[int] = set()

    def status(self) -> dict[str, Any]:
        response = httpx.get(f"{self.url}/_llmfn/status", timeout=5)
        RuntimeStatus.model_validate_json(response.content)  # the wire format is the typed model
        body = response.json()
        self.worker_pids |= {w["pid"] for w in body["pool"]["workers"]}
        return body

    def workers(self, kind: str | None = None, state: str | None = None) -> list[dict[str, Any]]:
        return [
            w
            for w in self.status()["pool"]["workers"]
            if (kind is None or w["kind"] == kind) and (state is None or w["state"] == state)
        ]

    def wait_ready(self, count: int, timeout_s: float = 90.0) -> None:
        """Wait for the gateway to answer and ``count`` workers to be ready."""

        def ready() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"llmfn dev exited early:\n{self.log_path.read_text()}")
            try:
                return len(self.workers(state="ready")) >= count
            except httpx.TransportError:
                return False

        wait_until(ready, timeout_s, f"{count} ready worker(s) at {self.url}")

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> int:
        """Send ``sig`` and wait for the gateway to exit; returns its exit status."""
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout_s)

    def kill_everything(self) -> None:
        """Last-resort cleanup after a failed test: no process of ours may outlive the suite."""
        for pid in [self.process.pid, *self.worker_pids]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)


def leftover_processes(pids: set[int]) -> list[int]:
    """The pids among ``pids`` still alive (zombies count as gone)."""
    return sorted(pid for pid in pids if pid_alive(pid))


def processes_in_groups(pgids: set[int]) -> list[int]:
    """Pids of live processes whose process group is one of ``pgids`` (read from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) in pgids:
            found.append(int(stat.parent.name))
    return sorted(found)

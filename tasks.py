#!/usr/bin/env python3
"""Set up and run llmfn on a fresh machine that has only Python >= 3.11 and pip.

    python3 tasks.py demo    # create .venv, install, run the main job locally on the embedded default
    python3 tasks.py test    # create .venv, install with test extras, lint, format-check, run pytest

Uses only the standard library. The install is skipped when pyproject.toml is unchanged since the
last successful install into .venv (a stamp file holds its hash).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"


def run(*cmd: str | os.PathLike[str], env: dict[str, str] | None = None) -> None:
    """Run a command in the repository root, echoing it; exit with its status on failure."""
    print("+", " ".join(str(c) for c in cmd), flush=True)
    code = subprocess.call([str(c) for c in cmd], cwd=ROOT, env=env)
    if code != 0:
        sys.exit(code)


def ensure_venv(extras: str) -> None:
    """Create .venv and install the project editable with ``extras``, unless already done."""
    if sys.version_info < (3, 11):  # noqa: UP036 (tasks.py runs before any check of the interpreter)
        sys.exit(f"llmfn needs Python >= 3.11; this is {sys.version.split()[0]}")
    if not PY.exists():
        print(f"+ creating {VENV}", flush=True)
        venv.create(VENV, with_pip=True)
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()
    stamp = VENV / f".llmfn-installed-{extras}"
    if stamp.exists() and stamp.read_text() == digest:
        return
    run(PY, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    # torch is pinned in pyproject (torch==2.13.0, the CPU build where a local wheel is provided).
    run(PY, "-m", "pip", "install", "--quiet", "-e", f".[{extras}]")
    stamp.write_text(digest)


def _get_json(url: str) -> dict | None:
    """GET ``url`` as JSON; None while nothing answers there."""
    import json
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.load(response)
    except (urllib.error.URLError, OSError, ValueError):
        return None


def _port_is_free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


def demo() -> None:
    """The main job on the embedded default (see README): start ``llmfn dev`` with its defaults, send a
    few requests with ``llmfn invoke``, show the status, stop it and check that no process is left."""
    import signal
    import time

    ensure_venv("serve")
    port = 8080
    args = [str(BIN / "llmfn"), "dev"]
    if not _port_is_free(port):
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        print(f"+ port 8080 is taken; using {port}", flush=True)
        args += ["--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    print("+", " ".join(args), flush=True)
    dev = subprocess.Popen(args, cwd=ROOT)
    pids: set[int] = set()
    try:
        deadline = time.monotonic() + 600  # the first run builds the tiny model
        while True:
            status = _get_json(f"{url}/_llmfn/status")
            if status and any(w["state"] == "ready" for w in status["pool"]["workers"]):
                break
            if dev.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"llmfn dev did not become ready (exit status {dev.poll()})")
            time.sleep(0.5)
        for prompt in ("Hello! How can I help you today?", "def add(a, b): return a + b  # explain"):
            run(BIN / "llmfn", "invoke", prompt, "--url", url, "--max-tokens", "24")
        run(
            BIN / "llmfn",
            "invoke",
            "Summarise Little's law.",
            "--url",
            url,
            "--max-tokens",
            "24",
            "--no-stream",
        )
        status = _get_json(f"{url}/_llmfn/status") or {}
        pool, policy = status.get("pool", {}), status.get("policy", {})
        print(
            f"\n+ GET {url}/_llmfn/status  (policy {policy.get('name')} decides every {policy.get('tick_s')} s; "
            f"last decision {policy.get('decision') or 'none yet'})"
        )
        for w in pool.get("workers", []):
            pids.add(w["pid"])
            print(
                f"  worker {w['id']}: {w['kind']} {w['state']} pid {w['pid']} port {w['port']} served {w['served']} "
                f"ready after {w['cold_start']['ready_s']} s (preload stages {w['cold_start']['preload_s']})"
            )
        print(f"  counters {pool.get('counters')}  instance-seconds {pool.get('instance_seconds')}")
    finally:
        print("+ stopping llmfn dev (SIGTERM)", flush=True)
        dev.send_signal(signal.SIGTERM)
        dev.wait(timeout=60)
    left = sorted(pid for pid in pids if _alive(pid))
    if left:
        sys.exit(f"worker processes left behind: {left}")
    print(f"demo done: every process stopped (gateway and {len(pids)} worker(s)).")


def test() -> None:
    """Lint, check formatting, run the whole test suite. No test collected is a failure."""
    ensure_venv("test")
    run(BIN / "ruff", "check", ".")
    run(BIN / "ruff", "format", "--check", ".")
    run(PY, "-m", "pytest", *sys.argv[2:])


TASKS = {"demo": demo, "test": test}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in TASKS:
        sys.exit(f"usage: python3 tasks.py {{{'|'.join(TASKS)}}} [pytest args for test]")
    TASKS[sys.argv[1]]()

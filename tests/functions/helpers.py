"""Run an ASGI app on 127.0.0.1 over real HTTP (uvicorn in a thread, a free port)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running(app: Any, **options: Any) -> Iterator[str]:
    """Serve ``app`` until the block ends; yields its base URL. A port taken between choosing and
    binding it (other suites pick free ports too) is retried with another. ``options``: more
    ``uvicorn.Config`` keywords (``functions.guards.headers.server_options()``, as the servers run)."""
    for _attempt in range(3):
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **options)
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 60
        while not server.started and thread.is_alive():
            if time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start on port {port} within 60 s")
            time.sleep(0.01)
        if server.started:
            break
    else:
        raise RuntimeError("uvicorn could not bind a free port of 127.0.0.1 in 3 attempts")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def wait_listening(
    url: str, process: subprocess.Popen[bytes], describe: Callable[[], str], timeout_s: float = 60
) -> None:
    """Poll ``url``/healthz until the server answers; RuntimeError with ``describe()`` (its log, say) if
    ``process`` exits first or nothing answers within ``timeout_s`` seconds."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            httpx.get(url + "/healthz", timeout=1)
            return
        except httpx.TransportError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"did not listen (exit status {process.poll()}): {describe()}") from None
            time.sleep(0.05)


@contextmanager
def spawned(module: str, args: list[str], env: dict[str, str], port: int) -> Iterator[str]:
    """Run ``python -m module *args`` from the repo root until the block ends; yields its base URL
    once it accepts connections."""
    process = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        env={**os.environ, **env},
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_listening(url, process, lambda: f"{module}: {process.stderr.read().decode()}")
        yield url
    finally:
        process.terminate()
        process.wait(10)


def wait_ready(base_url: str, timeout_s: float = 60, api_key: str | None = None) -> dict[str, Any]:
    """Poll ``/readyz`` (with ``api_key`` when the server has one) until it answers 200; return its body."""
    deadline = time.monotonic() + timeout_s
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    while True:
        response = httpx.get(base_url + "/readyz", headers=headers)
        if response.status_code == 200:
            return response.json()
        if response.json().get("error"):
            raise RuntimeError(f"preload failed: {response.json()['error']}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"not ready after {timeout_s} s: {response.json()}")
        time.sleep(0.05)


def assert_openai_error(response: httpx.Response, status: int, param: str | None = None) -> dict[str, Any]:
    """The response is ``status`` with OpenAI's error body (and names ``param`` when given)."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    if param is not None:
        assert error["param"] == param, error
    return error

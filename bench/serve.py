"""Benchmark of the inference app with the null engine against a bare endpoint, in the same run.

    .venv/bin/python bench/serve.py [--runs 5] [--requests 400] [--connections 16] [--overload-s 3]
    .venv/bin/python bench/serve.py --smoke   # seconds: 1 run, 20 requests, 2 connections, 0.5 s overload

``--smoke`` proves that every part runs (``tests/bench`` runs it); its figures mean nothing.

Two servers, each its own uvicorn process (httptools + uvloop when installed, one worker), pinned to
CPU 0 while the load client runs on CPU 1 (``taskset``; skipped where there is only one CPU):

- **bare**: a minimal ASGI app that reads the body, parses the JSON and answers a fixed chat
  completion: the floor of uvicorn + HTTP + JSON.
- **app**: ``python -m functions.serve --engine null`` (auth, body limit, schema, shaping, complexity,
  bucket, slots, breaker, metrics and a JSON access-log line per request, to /dev/null).

Measurements (medians of ``--runs`` runs, each printed with its spread):
1. latency: one keep-alive connection, sequential requests; p50 / p99 per run; added = app - bare.
2. throughput: ``--connections`` keep-alive connections, closed loop; requests per second.
3. overload: the app with a token bucket of R req/s (``--capacity``), offered 5 x R open-loop from a
   paced client; every answer must be 200 or 429 with Retry-After; admitted p99 vs the same app at
   0.5 x R; the server's RSS before and after.

The load client is raw asyncio over keep-alive sockets (pre-encoded requests), several times faster
than the app, so it is not the bottleneck: the bare endpoint's throughput is printed beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BODY = json.dumps(
    {"model": "null", "messages": [{"role": "user", "content": "Say hello in one word."}], "max_tokens": 8}
).encode()
API_KEY = "sk-bench"


# -- the bare endpoint -------------------------------------------------------------------------------
ANSWER = json.dumps(
    {
        "id": "chatcmpl-bare",
        "object": "chat.completion",
        "created": 0,
        "model": "null",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "ok " * 8}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": 8, "total_tokens": 17},
    }
).encode()


async def bare_app(scope, receive, send) -> None:  # minimal ASGI: read, parse, answer
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    if body:
        json.loads(body)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(ANSWER)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": ANSWER})


# -- servers -------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pin(cpu: int) -> list[str]:
    return ["taskset", "-c", str(cpu)] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else []


def start_server(kind: str, extra: list[str] | None = None) -> tuple[subprocess.Popen, int]:
    port = free_port()
    if kind == "bare":
        command = [sys.executable, str(Path(__file__).resolve()), "--serve-bare", str(port)]
    else:
        command = [
            sys.executable,
            "-m",
            "functions.serve",
            "--engine",
            "null",
            "--model-name",
            "null",
            "--port",
            str(port),
            "--api-key",
            API_KEY,
            *(extra or []),
        ]
    process = subprocess.Popen(
        pin(0) + command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{kind} server did not start") from None
            time.sleep(0.05)
    return process, port


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# -- the load client -------------------------------------------------------------------------------------
def request_bytes(port: int) -> bytes:
    return (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {API_KEY}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(BODY)}\r\n\r\n"
    ).encode() + BODY


@dataclass
class Result:
    latencies_s: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    missing_retry_after: int = 0
    admitted_latencies_s: list[float] = field(default_factory=list)
    not_sent: int = 0


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> None:
        self.reader, self.writer, self.request = reader, writer, request

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer, request_bytes(port))

    async def call(self, result: Result) -> None:
        started = time.perf_counter()
        self.writer.write(self.request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        await self.reader.readexactly(int(headers.get("content-length", "0")))
        elapsed = time.perf_counter() - started
        result.latencies_s.append(elapsed)
        result.statuses[status] = result.statuses.get(status, 0) + 1
        if status == 200:
            result.admitted_latencies_s.append(elapsed)
        elif status == 429 and "retry-after" not in headers:
            result.missing_retry_after += 1

    def close(self) -> None:
        self.writer.close()


async def closed_loop(port: int, connections: int, requests: int) -> tuple[Result, float]:
    result = Result()
    pool = [await Connection.open(port) for _ in range(connections)]
    remaining = requests

    async def worker(conn: Connection) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await conn.call(result)

    started = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in pool))
    elapsed = time.perf_counter() - started
    for conn in pool:
        conn.close()
    return result, elapsed


async def open_loop(port: int, rate_per_s: float, seconds: float, connections: int) -> Result:
    """Send at ``rate_per_s`` regardless of answers; a request with no idle connection is counted
    in ``not_sent`` (the client's limit, reported)."""
    result = Result()
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(await Connection.open(port))
    tasks: set[asyncio.Task] = set()

    async def one(conn: Connection) -> None:
        await conn.call(result)
        idle.put_nowait(conn)

    interval = 1.0 / rate_per_s
    start = time.perf_counter()
    n = int(rate_per_s * seconds)
    for i in range(n):
        delay = start + i * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if idle.empty():
            result.not_sent += 1
            continue
        task = asyncio.create_task(one(idle.get_nowait()))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)
    while not idle.empty():
        idle.get_nowait().close()
    return result


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def spread(values: list[float]) -> str:
    return f"{min(values):.3f}-{max(values):.3f}"


def run_in_client_cpu(coro):
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})
    return asyncio.run(coro)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--requests", type=int, default=400, help="per latency run; x5 per throughput run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--capacity", type=float, default=100.0, help="overload: bucket rate R, req/s")
    parser.add_argument("--overload-s", type=float, default=3.0, help="seconds per overload run")
    parser.add_argument("--serve-bare", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument(
        "--smoke", action="store_true", help="seconds: 1 run, 20 requests, 2 connections, 0.5 s overload"
    )
    args = parser.parse_args()
    if args.smoke:
        args.runs, args.requests, args.connections, args.capacity, args.overload_s = 1, 20, 2, 20.0, 0.5
        print("smoke: tiny sizes; the figures below mean nothing")
    if args.serve_bare is not None:
        import uvicorn

        uvicorn.run(bare_app, host="127.0.0.1", port=args.serve_bare, log_level="warning", access_log=False)
        return

    try:
        import httptools  # noqa: F401
        import uvloop  # noqa: F401

        stack = "uvicorn + httptools + uvloop"
    except ImportError:
        stack = "uvicorn (h11, asyncio)"
    print(
        f"bench/serve.py: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start "
        f"(other engineers share this machine), servers on CPU 0, client on CPU 1, {stack}"
    )
    print(f"runs={args.runs} requests/latency-run={args.requests} connections={args.connections}\n")

    servers = {
        "bare": start_server("bare"),
        "app": start_server(
            "app",
            [
                "--rate-per-s",
                "1000000",
                "--burst",
                "1000000",
                "--max-concurrency",
                "256",
                "--max-queue",
                "1024",
            ],
        ),
    }
    try:
        lat: dict[str, list[tuple[float, float]]] = {k: [] for k in servers}
        thr: dict[str, list[float]] = {k: [] for k in servers}
        errors: dict[str, int] = {k: 0 for k in servers}
        for _, port in servers.values():  # warm-up
            run_in_client_cpu(closed_loop(port, 4, 200))
        for _ in range(args.runs):
            for name, (_, port) in servers.items():
                result, _ = run_in_client_cpu(closed_loop(port, 1, args.requests))
                errors[name] += sum(v for s, v in result.statuses.items() if s != 200)
                lat[name].append((pct(result.latencies_s, 50) * 1e3, pct(result.latencies_s, 99) * 1e3))
                result, elapsed = run_in_client_cpu(closed_loop(port, args.connections, args.requests * 5))
                errors[name] += sum(v for s, v in result.statuses.items() if s != 200)
                thr[name].append(len(result.latencies_s) / elapsed)
        print("| endpoint | p50 ms (median, spread) | p99 ms (median) | req/s (median, spread) | non-200 |")
        print("|---|---|---|---|---|")
        for name in servers:
            p50s, p99s = [v[0] for v in lat[name]], [v[1] for v in lat[name]]
            print(
                f"| {name} | {statistics.median(p50s):.3f} ({spread(p50s)}) | {statistics.median(p99s):.3f} | "
                f"{statistics.median(thr[name]):.0f} ({min(thr[name]):.0f}-{max(thr[name]):.0f}) | {errors[name]} |"
            )
        added = [a[0] - b[0] for a, b in zip(lat["app"], lat["bare"], strict=True)]
        ratio = statistics.median(thr["app"]) / statistics.median(thr["bare"])
        print(
            f"\nadded p50 latency (app - bare, paired per run): median {statistics.median(added):.3f} ms "
            f"(runs: {', '.join(f'{a:.3f}' for a in added)}); goal <= 1 ms"
        )
        print(
            f"app throughput {statistics.median(thr['app']):.0f} req/s = {ratio:.2f} x bare; goal >= 1,000 req/s\n"
        )
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.wait(10)

    overload(args)


def overload(args: argparse.Namespace) -> None:
    capacity = args.capacity
    process, port = start_server(
        "app",
        [
            "--rate-per-s",
            str(capacity),
            "--burst",
            str(max(1, int(capacity / 10))),
            "--max-concurrency",
            "64",
            "--max-queue",
            "256",
        ],
    )
    try:
        run_in_client_cpu(closed_loop(port, 4, 50))  # warm-up
        time.sleep(1.0)  # let the bucket refill
        rss_before = rss_mib(process.pid)
        rows = []
        for label, factor in (("unloaded 0.5x", 0.5), ("overload 5x", 5.0)):
            p99s, totals = [], Result()
            for _ in range(args.runs):
                result = run_in_client_cpu(open_loop(port, capacity * factor, args.overload_s, 256))
                p99s.append(pct(result.admitted_latencies_s, 99) * 1e3)
                for status, count in result.statuses.items():
                    totals.statuses[status] = totals.statuses.get(status, 0) + count
                totals.missing_retry_after += result.missing_retry_after
                totals.not_sent += result.not_sent
                time.sleep(1.0)
            rows.append((label, factor, p99s, totals))
        rss_after = rss_mib(process.pid)
    finally:
        process.terminate()
        process.wait(10)
    print(
        f"overload: token bucket R = {capacity:.0f} req/s (burst {max(1, int(capacity / 10))}), "
        f"{args.runs} runs x {args.overload_s:.0f} s per row, open loop"
    )
    print(
        "| offered | req/s | 200 | 429 | 429 without Retry-After | 5xx | not sent | admitted p99 ms (median, spread) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for label, factor, p99s, totals in rows:
        fivexx = sum(v for s, v in totals.statuses.items() if s >= 500)
        print(
            f"| {label} | {capacity * factor:.0f} | {totals.statuses.get(200, 0)} | {totals.statuses.get(429, 0)} | "
            f"{totals.missing_retry_after} | {fivexx} | {totals.not_sent} | {statistics.median(p99s):.3f} ({spread(p99s)}) |"
        )
    base, loaded = statistics.median(rows[0][2]), statistics.median(rows[1][2])
    print(
        f"\nadmitted p99 at 5x / at 0.5x = {loaded / base:.2f} (goal <= 1.5); "
        f"RSS {rss_before:.1f} MiB before, {rss_after:.1f} MiB after ({rss_after - rss_before:+.1f} MiB)"
    )


if __name__ == "__main__":
    main()

"""Fuzz the serving surfaces with a large budget and count what comes back.

    .venv/bin/python bench/fuzz.py [--cases 10000] [--wire-cases 2000] [--seeded]
    .venv/bin/python bench/fuzz.py --smoke   # 8 cases of each generator, seeded: every step, in seconds

Two surfaces, each a real process on 127.0.0.1 with an API key:

- **serve**: the inference app that ``llmfn serve`` runs (``python -m functions.serve``) on the embedded
  tiny model, answers capped at one token (fuzzing is about input, not generation), admission limits
  out of the way.
- **gateway**: ``llmfn dev --engine null`` (the gateway in front of a null-engine worker process).

Each gets ``--cases`` cases: half schemathesis cases of its OpenAPI document (positive and negative),
half hypothesis request bodies (hostile integers, lone surrogates, deep nesting, NaN, non-UTF-8 bytes,
wrong shapes; ``tests/fuzzing.py``); then ``--wire-cases`` hypothesis requests at the HTTP layer
(percent-encoded control characters and dot segments aimed at internal endpoints, near-miss routes,
every method, 0-3000 extra header fields, 100 KB header values, non-ASCII header bytes, empty and
malformed Bearer keys), and a tenth of ``--cases`` more of field-honesty cases (a
field the server cannot honour must be refused naming it, one it honours must be answered), each checked for a 5xx, a redirect, an internal endpoint reached, an answer
without the key, headers read past the bound and repeated ``date`` / ``server`` headers (counted as
"non-OpenAI errors / findings"). Printed per surface and generator: cases, answers by class (``closed``:
the parser refused an oversized head by closing), 5xx, findings, transport errors, and after the run
whether the process is alive, the breaker closed (serve), how many workers died and how many worker
slots are still leased with nothing in flight (gateway). Then API keys that are no key (empty, blank,
with a newline...) given to each place a key is read: how many are accepted. A clean run shows 0 in
every failure column; the script exits 1 when any failure column is above 0 (5xx, non-OpenAI errors /
findings, transport errors, a dead process or an open breaker, worker deaths, slots still leased, bad keys
accepted), naming each, so a run (the suite's ``--smoke``) can gate on it.

The gateway runs with ``--queue-timeout 5`` so that a leaked lease shows as slow 503s, not 30 s waits.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from llmfn.local.gateway import gateway_openapi  # noqa: E402
from llmfn.local.status import fetch_status  # noqa: E402
from llmfn.local.tiny_model import ensure_tiny_model  # noqa: E402
from llmfn.local.worker import free_port  # noqa: E402
from tests.fuzzing import Tally, run_bodies, run_field_honesty, run_openapi, run_wire  # noqa: E402

KEY = "sk-fuzz-bench"
START_TIMEOUT_S = 600  # a busy shared machine imports torch slowly
AUTH = {"Authorization": f"Bearer {KEY}"}


@contextmanager
def process(
    cmd: list[str], env: dict[str, str], url: str, ready_path: str, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``cmd`` until the block ends; yields once ``url + ready_path`` answers 200 with the key."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=REPO, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{cmd[:4]} exited with {proc.returncode}; see {log}")
            try:
                if httpx.get(url + ready_path, headers=AUTH, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} not ready within {START_TIMEOUT_S} s; see {log}")
            time.sleep(0.2)
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass(frozen=True)
class Budget:
    """Cases per surface: ``cases`` split between schemathesis and the body generator, ``field`` of
    field honesty, ``wire`` at the HTTP layer; ``seeded`` derandomizes hypothesis (a run repeats)."""

    cases: int
    wire: int
    field: int
    seeded: bool


SMOKE = Budget(cases=16, wire=8, field=8, seeded=True)
"""``--smoke``: a few cases of each generator, seeded, so each surface and each check runs once."""


def fuzz(url: str, document: dict[str, object], model: str, b: Budget) -> list[tuple[str, Tally, float]]:
    rows = []
    for name, run in (
        ("schemathesis", lambda: run_openapi(url, document, KEY, cases=b.cases // 2, seeded=b.seeded)),
        (
            "hypothesis bodies",
            lambda: run_bodies(url, model, KEY, cases=b.cases - b.cases // 2, seeded=b.seeded),
        ),
        ("field honesty", lambda: run_field_honesty(url, model, KEY, cases=b.field, seeded=b.seeded)),
        ("hypothesis wire", lambda: run_wire(url, KEY, cases=b.wire, seeded=b.seeded, timeout_s=60)),
    ):
        started = time.perf_counter()
        tally = run()
        rows.append((name, tally, time.perf_counter() - started))
    return rows


def field_cases(cases: int) -> int:
    """Cases of the field-honesty generator (issue 22, item 12: every request field honoured or refused
    with a 4xx naming it, never accepted and ignored): a tenth of the budget, at least 50."""
    return max(cases // 10, 50)


def serve_surface(
    model_dir: Path, budget: Budget, logs: Path
) -> tuple[list[tuple[str, Tally, float]], str, list[str]]:
    from functions.api.router import create_app
    from functions.settings import ServeSettings

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "LLMFN_API_KEY": KEY,
        "LLMFN_MAX_TOKENS_CAP": "1",
        "LLMFN_RATE_PER_S": "1000000",
        "LLMFN_BURST": "1000000",
        "LLMFN_ACCESS_LOG": "false",
        "LLMFN_LOG_LEVEL": "warning",
    }
    cmd = [sys.executable, "-m", "functions.serve", "--model", str(model_dir), "--model-name", "tiny"]
    cmd += ["--port", str(port), "--preload-workers", "2"]
    document = create_app(ServeSettings.build(engine="null")).openapi()
    with process(cmd, env, url, "/readyz", logs / "serve.log") as proc:
        rows = fuzz(url, document, "tiny", budget)
        alive = proc.poll() is None
        metrics = httpx.get(url + "/metrics", headers=AUTH, timeout=10).text if alive else ""
    breaker = "closed" if "llmfn_breaker_state 0.0" in metrics else "OPEN or unknown"
    failed = [] if alive else ["process died"]
    failed += [] if breaker == "closed" else [f"breaker {breaker}"]
    return rows, f"process alive: {alive}; breaker: {breaker}", failed


def gateway_surface(
    model_dir: Path, budget: Budget, logs: Path
) -> tuple[list[tuple[str, Tally, float]], str, list[str]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [
        sys.executable,
        "-m",
        "llmfn",
        "dev",
        "--model",
        str(model_dir),
        "--engine",
        "null",
        "--port",
        str(port),
    ]
    cmd += ["--policy", "fixed", "--reserved", "1", "--max", "2", "--slots", "4", "--api-key", KEY]
    cmd += ["--queue-timeout", "5"]
    with (
        process(cmd, {}, url, "/v1/models", logs / "gateway.log") as proc,
        httpx.Client(headers=AUTH, timeout=10) as status_client,
    ):
        model = httpx.get(url + "/v1/models", headers=AUTH).json()["data"][0]["id"]
        deadline = time.monotonic() + 120
        while not fetch_status(status_client, url).pool.counters.completed:  # type: ignore[union-attr]
            httpx.post(
                url + "/v1/completions",
                json={"model": model, "prompt": "hi"},
                headers=AUTH,
                timeout=60,
            )
            if time.monotonic() > deadline:
                raise RuntimeError("the gateway's worker never answered")
        rows = fuzz(url, gateway_openapi(), model, budget)
        alive = proc.poll() is None
        status = fetch_status(status_client, url) if alive else None
    deaths = status.pool.counters.worker_deaths if status else "?"
    leased = status.pool.busy_slots if status else "?"
    failed = [] if alive else ["process died"]
    failed += [] if deaths == 0 else [f"worker deaths: {deaths}"]
    failed += [] if leased == 0 else [f"slots still leased: {leased}"]
    return rows, f"process alive: {alive}; worker deaths: {deaths}; slots still leased: {leased}", failed


BAD_KEYS = (
    "",
    " ",
    "   ",
    "\t",
    "\n",
    "key\n",
    "a\nb",
    "key\r\nx-injected: 1",
    " key",
    "key ",
    "k e y",
    "ключ",
)
"""API keys that are no key: empty, blank, a newline (header injection), spaces, non-ASCII."""


def key_readers() -> list[tuple[str, object]]:
    """Each place a key is read at start-up, as a function of the key that raises when it refuses it."""
    from functions.settings import ServeSettings
    from llmfn.local.config import DevConfig

    def serve_env(key: str) -> object:  # the cloud entry points and `python -m functions.serve`
        return ServeSettings.from_env({"LLMFN_API_KEY": key, "LLMFN_ENGINE": "null"})

    def serve_flag(key: str) -> object:  # `llmfn serve --api-key KEY` on a public host
        return ServeSettings.build(engine="null", host="0.0.0.0", api_key=key)

    def dev(key: str) -> object:  # `llmfn dev --api-key KEY`
        return DevConfig(model_dir=REPO, engine="null", api_key=key)

    return [
        ("serve settings from LLMFN_API_KEY", serve_env),
        ("serve --api-key", serve_flag),
        ("dev --api-key", dev),
    ]


def key_table() -> tuple[list[str], int]:
    """The table's rows, and how many bad keys were accepted in all."""
    rows, total = [], 0
    for name, read in key_readers():
        accepted = []
        for key in BAD_KEYS:
            try:
                read(key)  # type: ignore[operator]
            except ValueError:
                continue
            accepted.append(repr(key))
        total += len(accepted)
        rows.append(f"| {name} | {len(BAD_KEYS)} | {len(accepted)} | {', '.join(accepted) or '-'} |")
    return rows, total


def tally_failures(surface: str, name: str, tally: Tally) -> list[str]:
    """The failure columns of one row of the table that are above 0, each as ``surface/generator: column n``."""
    columns = {
        "5xx": tally.statuses["5xx"],
        "non-OpenAI errors": tally.bad_errors,
        "findings": sum(tally.findings.values()),
        "transport errors": tally.transport_errors,
    }
    return [f"{surface}/{name}: {column} {n}" for column, n in columns.items() if n > 0]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=10_000, help="cases per surface (half per generator)")
    parser.add_argument("--wire-cases", type=int, default=2000, help="HTTP-layer cases per surface")
    parser.add_argument("--seeded", action="store_true", help="derandomize the generators: a run repeats")
    parser.add_argument("--smoke", action="store_true", help=f"tiny seeded budget: {SMOKE}")
    args = parser.parse_args()
    budget = (
        SMOKE if args.smoke else Budget(args.cases, args.wire_cases, field_cases(args.cases), args.seeded)
    )
    model_dir = ensure_tiny_model()
    logs = Path(os.environ.get("TMPDIR", "/tmp")) / f"llmfn-fuzz-{os.getpid()}"
    logs.mkdir(parents=True, exist_ok=True)
    print(
        f"cases per surface: {budget.cases} (+{budget.field} field, +{budget.wire} wire; seeded: {budget.seeded}); server logs in {logs}\n"
    )
    print(
        "| surface | generator | cases | 2xx | 4xx | 5xx | non-OpenAI errors | transport errors | seconds |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    notes, problems, failures = [], [], []
    wire_rows: list[tuple[str, str, Tally, float]] = []
    for surface, run in (("serve", serve_surface), ("gateway", gateway_surface)):
        rows, after, failed = run(model_dir, budget, logs)
        failures += [f"{surface}: {f}" for f in failed]
        wire_rows += [(surface, name, tally, seconds) for name, tally, seconds in rows if "wire" in name]
        for name, tally, seconds in rows:
            s = tally.statuses
            print(
                f"| {surface} | {name} | {tally.cases} | {s['2xx']} | {s['4xx']} | {s['5xx']} | "
                f"{tally.bad_errors} | {tally.transport_errors} | {seconds:.0f} |",
                flush=True,
            )
            problems += [f"{surface}/{name}: {p}" for p in tally.problems[:5]]
            failures += tally_failures(surface, name, tally)
        notes.append(f"{surface}: {after}")
    print()
    for line in notes:
        print(line)
    print("\n| surface | class of hostile request (issue 22 item) | wire cases tried | with a finding |")
    print("|---|---|---|---|")
    for surface, _name, tally, _seconds in wire_rows:
        for cls, (tried, failed) in sorted(tally.classes.items()):
            print(f"| {surface} | {cls} | {tried} | {failed} |")
    print("\n| surface | wire finding (issue 22 item) | cases |\n|---|---|---|")
    for surface, _name, tally, _seconds in wire_rows:
        for kind, count in sorted(tally.findings.items()):
            print(f"| {surface} | {kind} | {count} |")
        if not tally.findings:
            print(f"| {surface} | none | 0 |")
    print()
    for line in problems:
        print(line)
    print("\n| where a key is read | keys that are no key | accepted | which |\n|---|---|---|---|")
    rows, accepted = key_table()
    for row in rows:
        print(row)
    failures += [f"bad keys accepted: {accepted}"] if accepted else []
    print(f"\nfailures: {'; '.join(failures) or 'none'}")
    if failures:
        sys.exit(1)


if __name__ == "__main__":
    main()

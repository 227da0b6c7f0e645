"""A bounded load generator for OpenAI-compatible endpoints (``llmfn load``).

It replays planned arrivals (a slice of a trace, or a seeded Poisson process) open-loop: each request
is sent at its planned time whatever happened to the previous ones, up to ``max_in_flight`` at once
(beyond that, arrivals are counted as dropped by the client, never queued silently). Every request
streams, so time to first token and end-to-end time are both measured.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import httpx

from core.errors import InputError
from llmfn.local.client import Completion, chat

MAX_DURATION_S = 3600.0
MAX_REQUESTS = 20_000
_PROMPT_WORD = "the "  # one token in the tiny model's tokenizer and in Qwen's


@dataclass(frozen=True)
class PlannedRequest:
    """One request to send: ``at_s`` seconds after the replay starts, token counts to ask for."""

    at_s: float
    prompt_tokens: int
    output_tokens: int


def check_target(url: str, allow_remote: bool) -> None:
    """Refuse a non-loopback URL unless ``allow_remote`` (a load test must not hit others by mistake)."""
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and not allow_remote:
        raise InputError(
            f"{url!r}: {host or 'no host'} is not a loopback address; set allow_remote to load a remote endpoint",
            field="url",
            value=url,
        )


def poisson_plan(
    rps: float, duration_s: float, prompt_tokens: int, output_tokens: int, seed: int = 0
) -> list[PlannedRequest]:
    """Seeded Poisson arrivals at ``rps`` req/s for ``duration_s`` seconds, fixed token counts."""
    if not (rps > 0 and math.isfinite(rps)):
        raise InputError(f"must be > 0 requests per second, got {rps!r}", field="rps", value=rps)
    _check_duration(duration_s)
    if rps * duration_s > MAX_REQUESTS:
        raise InputError(
            f"{rps:g} for duration_s {duration_s:g} s plans ~{rps * duration_s:.0f} requests; at most {MAX_REQUESTS}",
            field="rps",
            value=rps,
        )
    rng = random.Random(seed)
    plan, t = [], rng.expovariate(rps)
    while t < duration_s:
        plan.append(PlannedRequest(t, prompt_tokens, output_tokens))
        t += rng.expovariate(rps)
    return _bounded(plan)


def trace_plan(
    arrivals_s: list[float],
    prompt_tokens: list[int],
    output_tokens: list[int],
    start_s: float,
    duration_s: float,
    time_scale: float = 1.0,
    token_scale: float = 1.0,
    max_prompt_tokens: int = 1024,
    max_output_tokens: int = 256,
) -> list[PlannedRequest]:
    """The trace's requests arriving in [start_s, start_s + duration_s) (seconds from its first request),
    replayed ``time_scale`` times faster, token counts scaled by ``token_scale`` and capped."""
    _check_duration(duration_s)
    if not (time_scale > 0 and math.isfinite(time_scale)):
        raise InputError(
            f"must be > 0 (2 = twice as fast), got {time_scale!r}", field="time_scale", value=time_scale
        )
    if not (token_scale > 0 and math.isfinite(token_scale)):
        raise InputError(f"must be > 0, got {token_scale!r}", field="token_scale", value=token_scale)
    if start_s < 0:
        raise InputError(f"must be >= 0 seconds, got {start_s!r}", field="start_s", value=start_s)
    plan = [
        PlannedRequest(
            (at - start_s) / time_scale,
            max(1, min(max_prompt_tokens, round(p * token_scale))),
            max(1, min(max_output_tokens, round(o * token_scale))),
        )
        for at, p, o in zip(arrivals_s, prompt_tokens, output_tokens, strict=True)
        if start_s <= at < start_s + duration_s
    ]
    if not plan:
        raise InputError(
            f"{start_s:g} duration_s {duration_s:g}: no request of the trace falls in that slice",
            field="start_s",
            value=start_s,
        )
    return _bounded(plan)


def _check_duration(duration_s: float) -> None:
    if not (0 < duration_s <= MAX_DURATION_S):
        raise InputError(
            f"must be in (0, {MAX_DURATION_S:g}] seconds, got {duration_s!r}",
            field="duration_s",
            value=duration_s,
        )


def _bounded(plan: list[PlannedRequest]) -> list[PlannedRequest]:
    if len(plan) > MAX_REQUESTS:
        raise InputError(
            f"the load plan has {len(plan)} requests; at most {MAX_REQUESTS} (shorten duration_s)"
        )
    return plan


def prompt_of(tokens: int) -> str:
    """A prompt of about ``tokens`` tokens (the chat template adds a few)."""
    return _PROMPT_WORD * tokens


@dataclass
class Outcome:
    """A planned request and what became of it (``completion`` None: dropped by the client's bound)."""

    planned: PlannedRequest
    sent_at_s: float | None
    completion: Completion | None
    transport_error: str | None = None


async def replay(
    base: str,
    model: str,
    plan: list[PlannedRequest],
    headers: dict[str, str],
    max_in_flight: int = 64,
    timeout_s: float = 300.0,
) -> list[Outcome]:
    """Send every planned request at its time (open loop), at most ``max_in_flight`` at once."""
    limits = httpx.Limits(max_connections=max_in_flight, max_keepalive_connections=max_in_flight)
    in_flight = 0
    outcomes: list[Outcome] = []
    async with httpx.AsyncClient(timeout=httpx.Timeout(timeout_s, connect=10.0), limits=limits) as client:
        start = time.perf_counter()

        async def one(planned: PlannedRequest) -> None:
            nonlocal in_flight
            outcome = Outcome(planned, sent_at_s=time.perf_counter() - start, completion=None)
            outcomes.append(outcome)
            body = {
                "model": model,
                "messages": [{"role": "user", "content": prompt_of(planned.prompt_tokens)}],
                "max_tokens": planned.output_tokens,
                "temperature": 0,
                "stream": True,
                "stream_options": {"include_usage": True},
            }
            try:
                outcome.completion = await chat(client, base, body, headers)
            except (httpx.TransportError, ValueError) as exc:
                outcome.transport_error = f"{type(exc).__name__}: {exc}"
            finally:
                in_flight -= 1

        tasks = []
        for planned in sorted(plan, key=lambda p: p.at_s):
            delay = planned.at_s - (time.perf_counter() - start)
            if delay > 0:
                await asyncio.sleep(delay)
            if in_flight >= max_in_flight:
                outcomes.append(Outcome(planned, sent_at_s=None, completion=None))
                continue
            in_flight += 1
            tasks.append(asyncio.create_task(one(planned)))
        await asyncio.gather(*tasks)
    return outcomes


def save_outcomes(outcomes: list[Outcome], path: Path) -> None:
    """One JSON line per request: planned and sent times, tokens, status, TTFT, end-to-end, routing."""
    with path.open("w") as out:
        for o in sorted(outcomes, key=lambda o: o.planned.at_s):
            c = o.completion
            record = {
                "at_s": o.planned.at_s,
                "sent_at_s": o.sent_at_s,
                "status": c.status if c else None,
                "ttft_s": c.ttft_s if c else None,
                "e2e_s": c.e2e_s if c else None,
                "prompt_tokens": c.prompt_tokens if c else None,
                "completion_tokens": c.completion_tokens if c else None,
                "worker": c.headers.get("x-llmfn-worker") if c else None,
                "cold_start": c.cold_start if c else None,
                "queue_s": float(c.headers.get("x-llmfn-queue-seconds", "nan")) if c else None,
                "error": (c.error if c else None) or o.transport_error,
            }
            out.write(json.dumps(record) + "\n")


def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-quantile (0..1) by linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


@dataclass(frozen=True)
class LoadSummary:
    """What a replay measured. Latencies in seconds over the answered (2xx) requests."""

    planned: int
    answered: int
    rejected_429: int
    server_errors: int
    client_errors: int
    transport_errors: int
    dropped_by_client: int
    cold_starts_seen: int
    ttft_p50_s: float | None
    ttft_p95_s: float | None
    ttft_p99_s: float | None
    e2e_p50_s: float | None
    e2e_p95_s: float | None
    e2e_p99_s: float | None
    mean_prompt_tokens: float | None
    mean_completion_tokens: float | None
    span_s: float


def summarize(outcomes: list[Outcome]) -> LoadSummary:
    """Percentiles and counts of a replay."""
    done = [o.completion for o in outcomes if o.completion is not None]
    answered = [c for c in done if c.status < 400 and c.error is None]
    ttfts = [c.ttft_s for c in answered if c.ttft_s is not None]
    e2es = [c.e2e_s for c in answered]
    prompts = [c.prompt_tokens for c in answered if c.prompt_tokens is not None]
    outputs = [c.completion_tokens for c in answered if c.completion_tokens is not None]
    ends = [
        o.sent_at_s + o.completion.e2e_s
        for o in outcomes
        if o.completion is not None and o.sent_at_s is not None
    ]
    return LoadSummary(
        planned=len(outcomes),
        answered=len(answered),
        rejected_429=sum(c.status == 429 for c in done),
        server_errors=sum(c.status >= 500 or (c.status < 400 and c.error is not None) for c in done),
        client_errors=sum(400 <= c.status < 500 and c.status != 429 for c in done),
        transport_errors=sum(o.transport_error is not None for o in outcomes),
        dropped_by_client=sum(o.sent_at_s is None for o in outcomes),
        cold_starts_seen=sum(c.cold_start for c in done),
        ttft_p50_s=percentile(ttfts, 0.50),
        ttft_p95_s=percentile(ttfts, 0.95),
        ttft_p99_s=percentile(ttfts, 0.99),
        e2e_p50_s=percentile(e2es, 0.50),
        e2e_p95_s=percentile(e2es, 0.95),
        e2e_p99_s=percentile(e2es, 0.99),
        mean_prompt_tokens=sum(prompts) / len(prompts) if prompts else None,
        mean_completion_tokens=sum(outputs) / len(outputs) if outputs else None,
        span_s=max(ends, default=0.0),
    )

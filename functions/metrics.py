"""Prometheus metrics of one app (its own registry, so several apps can live in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from functions.guards.breaker import BREAKER_STATE_VALUE, BreakerState
from preload.events import StageEvent

LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class ServeMetrics:
    """Requests, latency (total and time to first token), in-flight, queue, tokens, preload stages,
    breaker state, rejections and the complexity score; all names start with ``llmfn_``."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter("llmfn_requests", "Requests answered", ["route", "status"], registry=r)
        self.latency = Histogram(
            "llmfn_request_seconds",
            "Request latency, seconds",
            ["route"],
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.ttft = Histogram(
            "llmfn_time_to_first_token_seconds",
            "Arrival to first generated token, seconds",
            ["route"],
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.in_flight = Gauge("llmfn_in_flight", "Requests holding an engine slot", registry=r)
        self.queue_length = Gauge("llmfn_queue_length", "Requests waiting for an engine slot", registry=r)
        self.held_sessions = Gauge("llmfn_held_sessions", "Slots held for sessions", registry=r)
        self.prompt_tokens = Counter("llmfn_prompt_tokens", "Prompt tokens processed", registry=r)
        self.completion_tokens = Counter("llmfn_completion_tokens", "Tokens generated", registry=r)
        self.tokens_per_s = Histogram(
            "llmfn_generation_tokens_per_second",
            "Per-request generation speed, tokens/s",
            buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000, 5000),
            registry=r,
        )
        self.rejections = Counter("llmfn_rejections", "Refused requests", ["reason"], registry=r)
        self.breaker_state = Gauge("llmfn_breaker_state", "0 closed, 1 half-open, 2 open", registry=r)
        self.complexity = Histogram(
            "llmfn_complexity_score",
            "Request complexity fingerprint (0-5)",
            buckets=(0.1, 0.5, 1.2, 2, 3, 4, 5),
            registry=r,
        )
        self.complexity_tier = Counter("llmfn_complexity_tier", "Requests per tier", ["tier"], registry=r)
        self.ready = Gauge("llmfn_ready", "1 once the preload finished", registry=r)
        self.preload_stage_seconds = Gauge(
            "llmfn_preload_stage_seconds", "Duration of each preload stage, seconds", ["stage"], registry=r
        )
        self.preload_stage_bytes = Gauge(
            "llmfn_preload_stage_bytes", "Bytes loaded by each preload stage", ["stage"], registry=r
        )

    def on_breaker(self, state: BreakerState) -> None:
        self.breaker_state.set(BREAKER_STATE_VALUE[state])

    def on_stage(self, event: StageEvent) -> None:
        if event.kind == "end":
            self.preload_stage_seconds.labels(event.stage).set(event.seconds)
            self.preload_stage_bytes.labels(event.stage).set(event.bytes)

    def render(self) -> bytes:
        return generate_latest(self.registry)

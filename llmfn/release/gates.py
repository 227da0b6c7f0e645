"""The checks between promotion steps: the new version's error rate and P95 from the cloud's
metrics, and one smoke request (an OpenAI chat completion through the public endpoint, or a direct
invocation of the new version where the stack has no endpoint)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import SecretStr

from core.errors import InputError
from functions.cloud.types import CloudControl, WindowMetrics
from functions.secrets import as_secret, reveal


@dataclass(frozen=True)
class GateThresholds:
    """max_error_rate: errors / invocations allowed, in [0, 1]. max_p95_s: P95 duration allowed,
    seconds (None: not checked)."""

    max_error_rate: float = 0.01
    max_p95_s: float | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.max_error_rate <= 1:
            raise InputError(
                f"must be in [0, 1], got {self.max_error_rate}",
                field="max_error_rate",
                value=self.max_error_rate,
            )
        if self.max_p95_s is not None and self.max_p95_s <= 0:
            raise InputError(
                f"must be > 0 seconds, got {self.max_p95_s}", field="max_p95_s", value=self.max_p95_s
            )


@dataclass(frozen=True)
class SmokeResult:
    """One smoke request: ``ok``, how it was sent (``via``), its latency in seconds, and a detail."""

    ok: bool
    via: str
    latency_s: float
    detail: str


@dataclass(frozen=True)
class SmokeCheck:
    """prompt: what to ask. endpoint_url: the stack's HTTP endpoint (None: invoke the version directly).
    api_key: bearer key for the endpoint (a ``SecretStr``; a string given is wrapped, so the repr
    masks it). timeout_s: request timeout, seconds."""

    prompt: str = "Reply with the word OK."
    endpoint_url: str | None = None
    api_key: SecretStr | None = None
    timeout_s: float = 30.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "api_key", as_secret(self.api_key))

    def _http(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        assert self.endpoint_url is not None
        request = urllib.request.Request(
            self.endpoint_url.rstrip("/") + path,
            data=json.dumps(body).encode() if body is not None else None,
            method=method,
            headers={"Content-Type": "application/json"}
            | ({"Authorization": f"Bearer {reveal(self.api_key)}"} if self.api_key else {}),
        )
        with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
            return json.loads(response.read())

    def run(self, control: CloudControl, version: str) -> SmokeResult:
        """Send the smoke request; never raises (a failure is a failed result)."""
        start = time.perf_counter()
        if self.endpoint_url is None:
            result = control.invoke(version, {"llmfn": "smoke", "prompt": self.prompt})
            return SmokeResult(result.ok, f"invoke {version}", time.perf_counter() - start, result.body[:200])
        try:
            model = self._http("GET", "/v1/models")["data"][0]["id"]
            answer = self._http(
                "POST",
                "/v1/chat/completions",
                {"model": model, "messages": [{"role": "user", "content": self.prompt}], "max_tokens": 16},
            )
            content = answer["choices"][0]["message"]["content"]
        except (urllib.error.URLError, OSError, KeyError, IndexError, ValueError, TypeError) as exc:
            return SmokeResult(False, "http", time.perf_counter() - start, f"{type(exc).__name__}: {exc}")
        ok = isinstance(content, str)
        return SmokeResult(ok, "http", time.perf_counter() - start, str(content)[:200])


@dataclass(frozen=True)
class GateResult:
    """Whether a step may go on; ``reasons`` says what failed."""

    passed: bool
    reasons: list[str] = field(default_factory=list)
    error_rate: float = 0.0
    invocations: float = 0.0
    p95_s: float | None = None
    p95_source: str = ""
    smoke: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate(metrics: WindowMetrics, smoke: SmokeResult, thresholds: GateThresholds) -> GateResult:
    """Compare the new version's window of metrics and the smoke result with the thresholds."""
    reasons = []
    if metrics.error_rate > thresholds.max_error_rate:
        reasons.append(f"error rate {metrics.error_rate:.4f} > {thresholds.max_error_rate}")
    p95 = metrics.p95_duration_s
    if thresholds.max_p95_s is not None and p95 is not None and p95 > thresholds.max_p95_s:
        reasons.append(f"P95 {p95:.3f} s > {thresholds.max_p95_s} s ({metrics.p95_source})")
    if not smoke.ok:
        reasons.append(f"smoke request failed ({smoke.via}): {smoke.detail}")
    return GateResult(
        passed=not reasons,
        reasons=reasons,
        error_rate=metrics.error_rate,
        invocations=metrics.invocations,
        p95_s=p95,
        p95_source=metrics.p95_source,
        smoke=asdict(smoke),
    )

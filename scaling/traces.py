"""Workload traces: readers for the shipped public traces, a generic request format, synthetic
generators, and the hourly rate profile ``llmfn plan`` needs.

A trace is a set of **request groups**: ``count`` requests arriving in second ``second`` (from the
trace start) with ``input_tokens`` / ``output_tokens`` each. A per-request trace has one request per
group and its exact ``arrival_s``; a rate trace (ServeGen) has one group per second with window-mean
tokens and no individual arrival times, so only the time-step simulator can replay it.

Generic request file (CSV with a header, or JSON Lines), one request per row:
``timestamp`` (seconds as a number, or an ISO-8601 date-time), ``input_tokens``, ``output_tokens``.
The Azure LLM 2023 columns ``TIMESTAMP, ContextTokens, GeneratedTokens`` are read as the same thing.
A malformed row raises :class:`TraceFormatError` naming the file and the line.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

SECONDS_PER_DAY = 86400
SECONDS_PER_HOUR = 3600


class TraceFormatError(ValueError):
    """A trace file row that cannot be read; the message names the file and line."""


@dataclass(frozen=True)
class Trace:
    """Request groups over ``duration_s`` seconds.

    second: int array, the second (from trace start) each group arrives in.
    count: int array, requests in each group (1 for per-request traces).
    input_tokens / output_tokens: float arrays, tokens per request of each group.
    arrival_s: exact arrival times (seconds from start) of per-request traces, else ``None``.
    start_of_day_s: seconds after midnight at which the trace starts (for hour of day).
    """

    name: str
    second: np.ndarray
    count: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    duration_s: int
    start_of_day_s: float = 0.0
    arrival_s: np.ndarray | None = None

    @property
    def requests(self) -> int:
        """Total requests in the trace."""
        return int(self.count.sum())

    @property
    def per_request(self) -> bool:
        """True when every group is one request with an exact arrival time."""
        return self.arrival_s is not None

    def arrivals_per_second(self) -> np.ndarray:
        """Requests arriving in each second, length ``duration_s``."""
        return np.bincount(self.second, weights=self.count, minlength=self.duration_s)[: self.duration_s]

    def hourly_profile(self) -> list[float]:
        """Mean arrival rate (req/s) per hour of day, hour 0 first; hours the trace never covers get
        the trace's overall mean rate (so a 1-hour trace gives a flat profile at its mean)."""
        per_s = self.arrivals_per_second()
        hours = ((np.arange(self.duration_s) + self.start_of_day_s) // SECONDS_PER_HOUR).astype(int) % 24
        totals = np.bincount(hours, weights=per_s, minlength=24)
        seconds = np.bincount(hours, minlength=24)
        mean = float(per_s.sum() / max(self.duration_s, 1))
        return [float(totals[h] / seconds[h]) if seconds[h] >= 600 else mean for h in range(24)]


def _from_requests(
    name: str, arrival_s: np.ndarray, tokens_in: np.ndarray, tokens_out: np.ndarray, start_of_day_s: float
) -> Trace:
    order = np.argsort(arrival_s, kind="stable")
    arrival_s = arrival_s[order] - arrival_s[order][0] if len(arrival_s) else arrival_s
    second = np.floor(arrival_s).astype(np.int64)
    duration = int(second[-1]) + 1 if len(second) else 0
    return Trace(
        name=name,
        second=second,
        count=np.ones(len(arrival_s), dtype=np.int64),
        input_tokens=tokens_in[order].astype(float),
        output_tokens=tokens_out[order].astype(float),
        duration_s=duration,
        start_of_day_s=start_of_day_s,
        arrival_s=arrival_s,
    )


_COLUMN_SETS = {
    ("TIMESTAMP", "ContextTokens", "GeneratedTokens"): "azure",
    ("timestamp", "input_tokens", "output_tokens"): "generic",
}


def _parse_time(value: str | float | int) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value)
    except ValueError:
        stamp = datetime.fromisoformat(value.strip()[:26])  # Azure has 7 fractional digits
        return stamp.timestamp() if stamp.tzinfo else (stamp - datetime(1970, 1, 1)).total_seconds()


def _row_values(path: Path, line: int, ts: object, tin: object, tout: object) -> tuple[float, int, int]:
    try:
        t = _parse_time(ts)  # type: ignore[arg-type]
        i, o = int(float(tin)), int(float(tout))  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise TraceFormatError(
            f"{path}:{line}: bad request row ({exc}); want timestamp, input_tokens, output_tokens"
        ) from None
    if not math.isfinite(t) or i < 0 or o < 0:
        raise TraceFormatError(
            f"{path}:{line}: timestamp must be finite and token counts >= 0, got {ts!r}, {tin!r}, {tout!r}"
        )
    return t, i, o


def read_request_file(path: str | Path) -> Trace:
    """Read a per-request trace: the Azure LLM 2023 CSV or the generic CSV / JSON Lines format."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"trace file not found: {path}")
    rows: list[tuple[float, int, int]] = []
    with path.open(newline="", encoding="utf-8") as fh:
        if path.suffix in (".jsonl", ".ndjson"):
            for line, text in enumerate(fh, start=1):
                if not text.strip():
                    continue
                try:
                    obj = json.loads(text)
                    rows.append(
                        _row_values(path, line, obj["timestamp"], obj["input_tokens"], obj["output_tokens"])
                    )
                except (json.JSONDecodeError, KeyError, TypeError) as exc:
                    raise TraceFormatError(f"{path}:{line}: not a JSON request object ({exc!s})") from None
        else:
            reader = csv.reader(fh)
            header = tuple(h.strip() for h in next(reader, ()))
            if header not in _COLUMN_SETS:
                raise TraceFormatError(
                    f"{path}:1: unknown header {list(header)}; want timestamp,input_tokens,output_tokens "
                    "(or Azure's TIMESTAMP,ContextTokens,GeneratedTokens)"
                )
            for line, row in enumerate(reader, start=2):
                if not row:
                    continue
                if len(row) != 3:
                    raise TraceFormatError(f"{path}:{line}: expected 3 columns, got {len(row)}: {row!r}")
                rows.append(_row_values(path, line, *row))
    if not rows:
        raise TraceFormatError(f"{path}: no requests in the file")
    data = np.array(rows, dtype=float)
    start = float(data[:, 0].min())
    return _from_requests(path.stem, data[:, 0], data[:, 1], data[:, 2], start % SECONDS_PER_DAY)


def read_servegen(path: str | Path, seed: int = 0) -> Trace:
    """Read ServeGen per-window rates and regenerate per-second arrival counts.

    Arrivals in a window follow a renewal process with the window's rate and client CV. For such
    a process the count in one second has mean rate and variance rate x CV^2 (the renewal CLT; the
    variances of independent clients add), so each second's count is drawn from a Gamma with that
    mean and variance (non-negative even for CV >> 1) and rounded stochastically. Seeded: the same
    seed gives the same counts.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"trace file not found: {path}")
    cols = (
        "t_s",
        "window_s",
        "rate_rps",
        "rate_weighted_client_cv",
        "mean_input_tokens_est",
        "mean_output_tokens_est",
    )
    windows: list[tuple[float, ...]] = []
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in cols if c not in (reader.fieldnames or [])]
        if missing:
            raise TraceFormatError(f"{path}:1: ServeGen header lacks columns {missing}")
        for line, row in enumerate(reader, start=2):
            try:
                values = tuple(float(row[c]) for c in cols)
            except (TypeError, ValueError) as exc:
                raise TraceFormatError(f"{path}:{line}: bad ServeGen row ({exc})") from None
            if values[1] <= 0 or values[2] < 0 or not all(math.isfinite(v) for v in values):
                raise TraceFormatError(f"{path}:{line}: window_s must be > 0 and rate_rps >= 0, got {row!r}")
            windows.append(values)
    if not windows:
        raise TraceFormatError(f"{path}: no windows in the file")
    w = np.array(windows)
    start = w[0, 0]
    seconds_per_window = w[:, 1].astype(int)
    rate = np.repeat(w[:, 2], seconds_per_window)
    cv = np.repeat(np.maximum(w[:, 3], 1e-3), seconds_per_window)
    rng = np.random.default_rng(seed)
    shape = np.where(rate > 0, rate / cv**2, 1.0)
    draws = np.where(rate > 0, rng.gamma(shape, cv**2), 0.0)
    counts = np.floor(draws + rng.random(len(draws))).astype(np.int64)
    seconds = np.arange(len(counts), dtype=np.int64)
    keep = counts > 0
    return Trace(
        name=path.stem,
        second=seconds[keep],
        count=counts[keep],
        input_tokens=np.repeat(w[:, 4], seconds_per_window)[keep],
        output_tokens=np.repeat(w[:, 5], seconds_per_window)[keep],
        duration_s=len(counts),
        start_of_day_s=float(start % SECONDS_PER_DAY),
    )


def read_trace(path: str | Path, seed: int = 0) -> Trace:
    """Read any supported trace file, choosing the reader from its header."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"trace file not found: {path}")
    with path.open(encoding="utf-8") as fh:
        first = fh.readline()
    return read_servegen(path, seed) if first.startswith("t_s,window_s,rate_rps") else read_request_file(path)


# --------------------------------------------------------------------------- synthetic traces


def _synthetic(name: str, rate_per_s: np.ndarray, seed: int, tokens_in: float, tokens_out: float) -> Trace:
    """Poisson arrivals with a per-second rate; per-request, exponential token counts around the means."""
    rng = np.random.default_rng(seed)
    counts = rng.poisson(rate_per_s)
    seconds = np.repeat(np.arange(len(rate_per_s)), counts)
    arrival = seconds + rng.random(len(seconds))
    tin = np.maximum(1, np.round(rng.exponential(tokens_in, len(seconds))))
    tout = np.maximum(1, np.round(rng.exponential(tokens_out, len(seconds))))
    trace = _from_requests(name, arrival, tin, tout, 0.0)
    return Trace(**{**trace.__dict__, "duration_s": len(rate_per_s)})


def poisson_trace(
    rate_rps: float, duration_s: int, seed: int = 0, tokens_in: float = 512, tokens_out: float = 64
) -> Trace:
    """Constant-rate Poisson arrivals (req/s) for ``duration_s`` seconds."""
    if rate_rps < 0 or duration_s <= 0:
        raise ValueError(f"need rate_rps >= 0 and duration_s > 0, got {rate_rps!r}, {duration_s!r}")
    return _synthetic("poisson", np.full(duration_s, float(rate_rps)), seed, tokens_in, tokens_out)


def diurnal_trace(
    mean_rps: float,
    days: float = 1.0,
    peak_to_mean: float = 2.0,
    seed: int = 0,
    tokens_in: float = 512,
    tokens_out: float = 64,
) -> Trace:
    """Poisson arrivals whose rate follows a daily sine peaking at 14:00 (peak = mean x peak_to_mean)."""
    if not 1.0 <= peak_to_mean <= 2.0:
        raise ValueError(
            f"peak_to_mean must be in [1, 2] (a sine cannot go below zero), got {peak_to_mean!r}"
        )
    t = np.arange(int(days * SECONDS_PER_DAY))
    rate = mean_rps * (
        1 + (peak_to_mean - 1) * np.cos(2 * np.pi * (t - 14 * SECONDS_PER_HOUR) / SECONDS_PER_DAY)
    )
    return _synthetic("diurnal", rate, seed, tokens_in, tokens_out)


def spike_trace(
    base_rps: float, spike_rps: float, duration_s: int, spike_every_s: int, spike_len_s: int, seed: int = 0
) -> Trace:
    """Poisson arrivals at ``base_rps`` with ``spike_len_s``-second spikes to ``spike_rps`` every ``spike_every_s``."""
    if spike_len_s <= 0 or spike_every_s <= spike_len_s:
        raise ValueError("need 0 < spike_len_s < spike_every_s")
    t = np.arange(duration_s)
    rate = np.where(t % spike_every_s < spike_len_s, float(spike_rps), float(base_rps))
    return _synthetic("spikes", rate, seed, 512, 64)

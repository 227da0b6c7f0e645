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
import io
import json
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from scaling.errors import ScalingError

SECONDS_PER_DAY = 86400
SECONDS_PER_HOUR = 3600


class TraceFormatError(ScalingError):
    """A trace file (or one of its rows) that cannot be read; the message names the file, the line
    and the field where there is one."""


MAX_SPAN_S = 31 * SECONDS_PER_DAY
"""Longest trace llmfn replays, seconds (31 days = 2,678,400 s): the simulators keep a few per-second
arrays of this length (~21 MB each), so a timestamp typo (a row at t = 2e9) is refused with one line
instead of asking for gigabytes. Split longer traces into months."""
MAX_TOKENS_PER_REQUEST = 10_000_000
"""Most input or output tokens one request may have: 10 M, the longest context window announced
for an open-weight model (Llama 4 Scout). Larger counts are typos or corrupt rows."""
MAX_RATE_RPS = 1_000_000.0
"""Highest ServeGen window rate accepted, req/s (1 M/s: far above any single service's traffic)."""


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


def _check_file(path: Path) -> None:
    """Refuse what is not a readable regular file, naming it (a directory, a FIFO, a device)."""
    if path.is_dir():
        raise TraceFormatError(f"trace {str(path)!r} is a directory; give a trace file")
    if not path.exists():
        raise FileNotFoundError(f"trace file not found: {path}")
    if not path.is_file():
        raise TraceFormatError(f"trace {str(path)!r} is not a regular file (a FIFO, socket or device)")


def _parse_time(value: str | float | int) -> float:
    if isinstance(value, bool):
        raise ScalingError(f"timestamp must be a number or a date-time, got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    if not isinstance(value, str):
        raise ScalingError(f"timestamp must be a number or a date-time, got {value!r}")
    try:
        return float(value)
    except ValueError:
        try:
            stamp = datetime.fromisoformat(value.strip()[:26])  # Azure has 7 fractional digits
        except ValueError:
            raise ScalingError(f"timestamp {value!r} is neither seconds nor an ISO-8601 date-time") from None
        return stamp.timestamp() if stamp.tzinfo else (stamp - datetime(1970, 1, 1)).total_seconds()


def _tokens(field_name: str, value: object) -> int:
    """A token count in [0, MAX_TOKENS_PER_REQUEST]; ValueError naming the field otherwise."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ScalingError(f"{field_name} must be a whole number of tokens, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise ScalingError(f"{field_name} must be a whole number of tokens, got {value!r}") from None
    if not (0 <= number <= MAX_TOKENS_PER_REQUEST):
        raise ScalingError(f"{field_name} must be in [0, {MAX_TOKENS_PER_REQUEST:,}] tokens, got {value!r}")
    return int(number)


def _row_values(path: Path, line: int, ts: object, tin: object, tout: object) -> tuple[float, int, int]:
    try:
        t = _parse_time(ts)  # type: ignore[arg-type]
        if not math.isfinite(t):
            raise ScalingError(f"timestamp must be finite, got {ts!r}")
        return t, _tokens("input_tokens", tin), _tokens("output_tokens", tout)
    except (TypeError, ValueError, OverflowError) as exc:
        raise TraceFormatError(f"{path}:{line}: {exc}") from None


def _check_span(path: Path, span_s: float, where: str) -> None:
    if span_s > MAX_SPAN_S:
        raise TraceFormatError(
            f"{path}: {where} span {span_s:,.0f} s; llmfn replays at most {MAX_SPAN_S:,} s (31 days): "
            "fix the stray timestamp or split the trace"
        )


def _read_text(path: Path) -> str:
    """The file as text; a binary or non-UTF-8 file is one clear error naming it."""
    data = path.read_bytes()
    if b"\x00" in data[:65536]:
        raise TraceFormatError(f"{path}: binary file (NUL bytes), not a CSV or JSON Lines trace")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TraceFormatError(
            f"{path}: not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start}); want a CSV or JSON Lines trace"
        ) from None


def _request_rows(path: Path, text: str) -> list[tuple[float, int, int]]:
    rows: list[tuple[float, int, int]] = []
    if path.suffix in (".jsonl", ".ndjson"):
        for line, raw in enumerate(text.splitlines(), start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except (json.JSONDecodeError, RecursionError) as exc:
                raise TraceFormatError(f"{path}:{line}: not a JSON object ({exc!s:.80})") from None
            if not isinstance(obj, dict):
                raise TraceFormatError(f"{path}:{line}: want a JSON object, got {type(obj).__name__}")
            missing = [k for k in ("timestamp", "input_tokens", "output_tokens") if k not in obj]
            if missing:
                raise TraceFormatError(f"{path}:{line}: JSON object lacks {missing}")
            rows.append(_row_values(path, line, obj["timestamp"], obj["input_tokens"], obj["output_tokens"]))
        return rows
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = tuple(h.strip() for h in next(reader, ()))
        if header not in _COLUMN_SETS:
            raise TraceFormatError(
                f"{path}:1: unknown header {list(header)[:6]}; want timestamp,input_tokens,output_tokens "
                "(or Azure's TIMESTAMP,ContextTokens,GeneratedTokens)"
            )
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != 3:
                raise TraceFormatError(f"{path}:{line}: expected 3 columns, got {len(row)}")
            rows.append(_row_values(path, line, *row))
    except csv.Error as exc:
        raise TraceFormatError(f"{path}:{reader.line_num}: not CSV ({exc})") from None
    return rows


def read_request_file(path: str | Path) -> Trace:
    """Read a per-request trace: the Azure LLM 2023 CSV or the generic CSV / JSON Lines format."""
    path = Path(path)
    _check_file(path)
    rows = _request_rows(path, _read_text(path))
    if not rows:
        raise TraceFormatError(f"{path}: no requests in the file")
    data = np.array(rows, dtype=float)
    first, last = int(data[:, 0].argmin()), int(data[:, 0].argmax())
    _check_span(path, float(data[last, 0] - data[first, 0]), "timestamps")
    start = float(data[first, 0])
    return _from_requests(path.stem, data[:, 0], data[:, 1], data[:, 2], start % SECONDS_PER_DAY)


_SERVEGEN_COLUMNS = (
    "t_s",
    "window_s",
    "rate_rps",
    "rate_weighted_client_cv",
    "mean_input_tokens_est",
    "mean_output_tokens_est",
)


def _servegen_window(path: Path, line: int, row: dict[str, str | None]) -> tuple[float, ...]:
    """One window's values, in ``_SERVEGEN_COLUMNS`` order. A window with rate 0 is a valid quiet
    period or collection gap: its client CV and token means may be empty (read as 0)."""
    values: dict[str, float] = {}
    for name in _SERVEGEN_COLUMNS:
        raw = (row.get(name) or "").strip()
        if raw == "" and name not in ("t_s", "window_s", "rate_rps"):
            values[name] = math.nan  # empty statistic: allowed only when no request arrives
            continue
        try:
            values[name] = float(raw)
        except ValueError:
            raise TraceFormatError(f"{path}:{line}: {name} must be a number, got {raw!r}") from None
        if not math.isfinite(values[name]):
            raise TraceFormatError(f"{path}:{line}: {name} must be finite, got {raw!r}")
    window = values["window_s"]
    if not (window >= 1 and window == int(window)):
        raise TraceFormatError(
            f"{path}:{line}: window_s must be a whole number of seconds >= 1, got {row['window_s']!r}"
        )
    if window > MAX_SPAN_S:
        raise TraceFormatError(
            f"{path}:{line}: window_s must be <= {MAX_SPAN_S:,} s (31 days), got {row['window_s']!r}"
        )
    rate = values["rate_rps"]
    if not 0 <= rate <= MAX_RATE_RPS:
        raise TraceFormatError(
            f"{path}:{line}: rate_rps must be in [0, {MAX_RATE_RPS:,.0f}] req/s, got {row['rate_rps']!r}"
        )
    limits = {
        "rate_weighted_client_cv": 1e6,
        "mean_input_tokens_est": MAX_TOKENS_PER_REQUEST,
        "mean_output_tokens_est": MAX_TOKENS_PER_REQUEST,
    }
    for name, most in limits.items():
        value = values[name]
        if math.isnan(value):
            if rate > 0:
                raise TraceFormatError(f"{path}:{line}: {name} is empty but rate_rps is {rate:g} > 0")
            values[name] = 0.0
        elif not 0 <= value <= most:
            raise TraceFormatError(f"{path}:{line}: {name} must be in [0, {most:,.0f}], got {row[name]!r}")
    return tuple(values[name] for name in _SERVEGEN_COLUMNS)


def _window_counts(
    rate: np.ndarray, cv: np.ndarray, lengths: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Per-second counts of every window, laid end to end, keeping each window's total.

    The total of window w is round(rate_w x length_w) (ServeGen's ``requests_est``), whatever the
    CV. It is spread over the window's seconds in proportion to Gamma draws with mean rate and
    variance rate x CV^2 (the renewal process's counting variance: bursty windows get bursty
    seconds), by systematic rounding: one uniform offset per window, so every count is a whole
    number and the window's counts add up to its total exactly.
    """
    per_second_rate = np.repeat(rate, lengths)
    per_second_cv = np.repeat(np.maximum(cv, 1e-3), lengths)
    busy = per_second_rate > 0
    shape = np.where(busy, per_second_rate / per_second_cv**2, 1.0)
    draws = np.where(busy, rng.gamma(shape, per_second_cv**2), 0.0)
    window_of = np.repeat(np.arange(len(lengths)), lengths)
    sums = np.bincount(window_of, weights=draws, minlength=len(lengths))
    totals = np.round(rate * lengths)
    # a window whose draws are all zero (tiny rates with huge CV) spreads its total evenly
    even = sums[window_of] <= 0
    share = np.where(even, 1.0 / lengths[window_of], draws / np.where(even, 1.0, sums[window_of]))
    expected = totals[window_of] * share
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    cum = np.cumsum(expected)
    before = np.where(starts > 0, cum[starts - 1], 0.0)  # expected requests of earlier windows
    offset = rng.random(len(lengths))
    inside = cum - before[window_of] + offset[window_of]
    ends = np.floor(inside)
    previous = np.concatenate(([0.0], ends[:-1]))
    previous[starts] = np.floor(offset)  # each window starts from its own offset
    counts = np.maximum(ends - previous, 0)
    # float round-off at the window's end: force the exact total into its last second
    last = starts + lengths - 1
    got = np.bincount(window_of, weights=counts, minlength=len(lengths))
    counts[last] += totals - got
    return counts.astype(np.int64)


def read_servegen(path: str | Path, seed: int = 0) -> Trace:
    """Read ServeGen per-window rates and regenerate per-second arrival counts.

    Windows are placed at their ``t_s`` (from the first window's); gaps between windows and windows
    with rate 0 are quiet time. Each window keeps its request total round(rate x window_s); its
    seconds vary as a renewal process with the window's client CV would (see :func:`_window_counts`).
    Seeded: the same seed gives the same counts.
    """
    path = Path(path)
    _check_file(path)
    text = _read_text(path)
    windows: list[tuple[float, ...]] = []
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        missing = [c for c in _SERVEGEN_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise TraceFormatError(f"{path}:1: ServeGen header lacks columns {missing}")
        end = -math.inf
        for line, row in enumerate(reader, start=2):
            values = _servegen_window(path, line, row)
            if values[0] < end - 1e-9:
                raise TraceFormatError(
                    f"{path}:{line}: t_s {values[0]:g} starts before the previous window ends ({end:g}); "
                    "windows must be in time order and not overlap"
                )
            if windows:
                _check_span(path, values[0] + values[1] - windows[0][0], f"windows up to line {line}")
            end = values[0] + values[1]
            windows.append(values)
    except csv.Error as exc:
        raise TraceFormatError(f"{path}:{reader.line_num}: not CSV ({exc})") from None
    if not windows:
        raise TraceFormatError(f"{path}: no windows in the file")
    w = np.array(windows)
    offsets = np.round(w[:, 0] - w[0, 0]).astype(np.int64)
    lengths = w[:, 1].astype(np.int64)
    # gaps between windows become rate-0 windows so that every second is laid out once
    gap_at = np.concatenate((offsets[1:], [offsets[-1] + lengths[-1]])) - (offsets + lengths)
    gaps = np.maximum(gap_at, 0)
    all_rate = np.ravel(np.column_stack((w[:, 2], np.zeros(len(w)))))
    all_cv = np.ravel(np.column_stack((w[:, 3], np.zeros(len(w)))))
    all_len = np.ravel(np.column_stack((lengths, gaps)))
    tin = np.ravel(np.column_stack((w[:, 4], np.zeros(len(w)))))
    tout = np.ravel(np.column_stack((w[:, 5], np.zeros(len(w)))))
    used = all_len > 0
    all_rate, all_cv, all_len, tin, tout = (a[used] for a in (all_rate, all_cv, all_len, tin, tout))
    counts = _window_counts(all_rate, all_cv, all_len, np.random.default_rng(seed))
    seconds = np.arange(len(counts), dtype=np.int64)
    keep = counts > 0
    return Trace(
        name=path.stem,
        second=seconds[keep],
        count=counts[keep],
        input_tokens=np.repeat(tin, all_len)[keep],
        output_tokens=np.repeat(tout, all_len)[keep],
        duration_s=len(counts),
        start_of_day_s=float(w[0, 0] % SECONDS_PER_DAY),
    )


def read_trace(path: str | Path, seed: int = 0) -> Trace:
    """Read any supported trace file, choosing the reader from its header.

    Every problem with the file is one :class:`TraceFormatError` (a ``ValueError``) naming the file
    and, for a row, its line and field; a missing file is a ``FileNotFoundError``.
    """
    path = Path(path)
    _check_file(path)
    with path.open("rb") as fh:
        first = fh.readline(4096)
    is_servegen = first.lstrip(b"\xef\xbb\xbf").startswith(b"t_s,window_s,rate_rps")
    return read_servegen(path, seed) if is_servegen else read_request_file(path)


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
        raise ScalingError(f"need rate_rps >= 0 and duration_s > 0, got {rate_rps!r}, {duration_s!r}")
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
        raise ScalingError(
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
        raise ScalingError("need 0 < spike_len_s < spike_every_s")
    t = np.arange(duration_s)
    rate = np.where(t % spike_every_s < spike_len_s, float(spike_rps), float(base_rps))
    return _synthetic("spikes", rate, seed, 512, 64)

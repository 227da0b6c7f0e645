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

Files are read as a stream (a row at a time into compact columns, 16 bytes per request), with an
optional progress callback, and a file whose requests cannot fit in the memory available is refused
before it is read, saying how much it would need.
"""

from __future__ import annotations

import array
import csv
import io
import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO

import numpy as np

from core.errors import ScalingError

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
MAX_TRACE_REQUESTS = 10_000_000_000
"""Most requests one trace may hold (10 billion: 3,700 req/s sustained for 31 days). A ServeGen row's
requests are rate_rps x window_s; a row at 1 M req/s for 31 days (2.7 trillion requests) is a typo, not
traffic, and replaying it would need hundreds of GiB."""
BYTES_PER_REQUEST = 160
"""Memory one request of a per-request trace takes while it is read and replayed, bytes: the reader's
columns (16) and sort (24), the Trace's five arrays (40) and the simulator's per-request arrays (80)."""
ProgressFn = Callable[[int, int], None]
"""Called as ``progress(bytes_read, file_bytes)`` while a trace file is read."""
_PROGRESS_EVERY_ROWS = 1 << 16


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


_EXTRA_FRACTION = re.compile(r"(\.[0-9]{6})[0-9]+")


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
            # Azure writes 7 fractional digits, Python reads at most 6: drop the extra digits only,
            # keeping a UTC offset that follows them ("...46.6805900+08:00")
            stamp = datetime.fromisoformat(_EXTRA_FRACTION.sub(r"\1", value.strip(), count=1))
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
    if number != int(number):  # a fraction of a token is a corrupt row, not something to truncate
        raise ScalingError(f"{field_name} must be a whole number of tokens, got {value!r}")
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


def _read_int(path: str) -> int | None:
    try:
        with open(path, encoding="ascii") as fh:
            return int(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None  # absent, or "max" (no limit)


def available_memory_bytes() -> int | None:
    """Memory a process can have now, bytes: Linux ``MemAvailable``, lowered to the cgroup v2 limit
    minus its usage inside a container; None when unknown."""
    available = None
    try:
        with open("/proc/meminfo", encoding="ascii") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        available = None
    limit, used = _read_int("/sys/fs/cgroup/memory.max"), _read_int("/sys/fs/cgroup/memory.current")
    if limit is not None and used is not None:
        available = min(available if available is not None else limit, max(limit - used, 0))
    return available


def _gib(n: float) -> str:
    return f"{n / 2**30:,.1f} GiB"


def _estimated_rows(path: Path, size: int) -> int:
    """Rows of a file from the mean length of the lines in its first MiB."""
    with path.open("rb") as fh:
        head = fh.read(1 << 20)
    lines = max(head.count(b"\n"), 1)
    return max(1, int(size / (len(head) / lines))) if head else 0


def _check_fits(path: Path, memory_limit_bytes: int | None) -> None:
    """Refuse a per-request file whose requests cannot fit in memory, saying how much they need."""
    size = path.stat().st_size
    limit = available_memory_bytes() if memory_limit_bytes is None else memory_limit_bytes
    rows = _estimated_rows(path, size)
    needed = rows * BYTES_PER_REQUEST
    if limit is not None and needed > limit:
        raise TraceFormatError(
            f"{path}: {size / 2**20:,.0f} MiB holds about {rows:,} requests, which need about "
            f"{_gib(needed)} of memory to read and replay ({BYTES_PER_REQUEST} bytes each); "
            f"{_gib(limit)} is available: split the trace by time, or run on a machine with more memory"
        )


def _text_lines(path: Path, fh: IO[bytes]) -> Iterator[str]:
    """The file's lines as text, streamed; a binary or non-UTF-8 file is one error naming it."""
    if b"\x00" in fh.peek(65536)[:65536]:  # type: ignore[attr-defined]
        raise TraceFormatError(f"{path}: binary file (NUL bytes), not a CSV or JSON Lines trace")
    text = io.TextIOWrapper(fh, encoding="utf-8-sig", newline="")
    line = 0
    try:
        for line, raw in enumerate(text, start=1):  # noqa: B007
            yield raw
    except UnicodeDecodeError as exc:
        raise TraceFormatError(
            f"{path}: not UTF-8 text (byte {exc.object[exc.start]:#04x} near line {line + 1}); want a CSV or "
            "JSON Lines trace"
        ) from None


class _Columns:
    """Request rows kept as compact columns: seconds (float64) and token counts (uint32)."""

    def __init__(self) -> None:
        self.time = array.array("d")
        self.tokens_in = array.array("I")
        self.tokens_out = array.array("I")

    def add(self, row: tuple[float, int, int]) -> None:
        self.time.append(row[0])
        self.tokens_in.append(row[1])
        self.tokens_out.append(row[2])

    def __len__(self) -> int:
        return len(self.time)


def _request_rows(path: Path, lines: Iterator[str], on_row: Callable[[int], None]) -> _Columns:
    rows = _Columns()
    if path.suffix in (".jsonl", ".ndjson"):
        for line, raw in enumerate(lines, start=1):
            on_row(line)
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
            rows.add(_row_values(path, line, obj["timestamp"], obj["input_tokens"], obj["output_tokens"]))
        return rows
    reader = csv.reader(lines)
    try:
        header = tuple(h.strip() for h in next(reader, ()))
        if header not in _COLUMN_SETS:
            raise TraceFormatError(
                f"{path}:1: unknown header {list(header)[:6]}; want timestamp,input_tokens,output_tokens "
                "(or Azure's TIMESTAMP,ContextTokens,GeneratedTokens)"
            )
        for line, row in enumerate(reader, start=2):
            on_row(line)
            if not row:
                continue
            if len(row) != 3:
                raise TraceFormatError(f"{path}:{line}: expected 3 columns, got {len(row)}")
            rows.add(_row_values(path, line, *row))
    except csv.Error as exc:
        raise TraceFormatError(f"{path}:{reader.line_num}: not CSV ({exc})") from None
    return rows


def _reporter(fh: IO[bytes], size: int, progress: ProgressFn | None) -> Callable[[int], None]:
    """A per-row hook calling ``progress(bytes_read, size)`` every few thousand rows."""

    def on_row(line: int) -> None:
        if progress is not None and line % _PROGRESS_EVERY_ROWS == 0:
            progress(min(fh.tell(), size), size)

    return on_row


def read_request_file(
    path: str | Path, progress: ProgressFn | None = None, memory_limit_bytes: int | None = None
) -> Trace:
    """Read a per-request trace: the Azure LLM 2023 CSV or the generic CSV / JSON Lines format.

    Streams the file (``progress(bytes_read, file_bytes)`` as it goes); refuses, before reading, a file
    whose requests need more than ``memory_limit_bytes`` (default: the memory available now).
    """
    path = Path(path)
    _check_file(path)
    _check_fits(path, memory_limit_bytes)
    size = path.stat().st_size
    with path.open("rb") as fh:
        rows = _request_rows(path, _text_lines(path, fh), _reporter(fh, size, progress))
    if progress is not None:
        progress(size, size)
    if not len(rows):
        raise TraceFormatError(f"{path}: no requests in the file")
    times = np.frombuffer(rows.time, dtype=float)
    first, last = int(times.argmin()), int(times.argmax())
    _check_span(path, float(times[last] - times[first]), "timestamps")
    start = float(times[first])
    tokens_in = np.frombuffer(rows.tokens_in, dtype=np.uint32)
    tokens_out = np.frombuffer(rows.tokens_out, dtype=np.uint32)
    return _from_requests(path.stem, times, tokens_in, tokens_out, start % SECONDS_PER_DAY)


def check_has_work(trace: Trace, path: str | Path) -> None:
    """Refuse a trace whose requests all have zero input and zero output tokens: a simulation prices the
    work requests do, and such a trace has none (the error names the trace's token columns)."""
    if trace.requests and not (np.any(trace.input_tokens > 0) or np.any(trace.output_tokens > 0)):
        columns = (
            "input_tokens and output_tokens (Azure: ContextTokens, GeneratedTokens)"
            if trace.per_request
            else "mean_input_tokens_est and mean_output_tokens_est"
        )
        raise TraceFormatError(
            f"{path}: {columns} are 0 in every row: the simulator prices the work requests do and this "
            "trace has none; give each request its token counts"
        )


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


def read_servegen(path: str | Path, seed: int = 0, progress: ProgressFn | None = None) -> Trace:
    """Read ServeGen per-window rates and regenerate per-second arrival counts.

    Windows are placed at their ``t_s`` (from the first window's); gaps between windows and windows
    with rate 0 are quiet time. Each window keeps its request total round(rate x window_s); its
    seconds vary as a renewal process with the window's client CV would (see :func:`_window_counts`).
    Seeded: the same seed gives the same counts. A file whose windows add up to more than
    :data:`MAX_TRACE_REQUESTS` requests is refused at the row that passes it.
    """
    path = Path(path)
    _check_file(path)
    size = path.stat().st_size
    with path.open("rb") as fh:
        windows = _servegen_windows(path, _text_lines(path, fh), _reporter(fh, size, progress))
    if progress is not None:
        progress(size, size)
    return _servegen_trace(path, windows, seed)


def _servegen_windows(
    path: Path, lines: Iterator[str], on_row: Callable[[int], None]
) -> list[tuple[float, ...]]:
    windows: list[tuple[float, ...]] = []
    reader = csv.DictReader(lines)
    try:
        missing = [c for c in _SERVEGEN_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise TraceFormatError(f"{path}:1: ServeGen header lacks columns {missing}")
        end = -math.inf
        requests = 0.0
        for line, row in enumerate(reader, start=2):
            on_row(line)
            values = _servegen_window(path, line, row)
            requests += round(values[2] * values[1])
            if requests > MAX_TRACE_REQUESTS:
                raise TraceFormatError(
                    f"{path}:{line}: rate_rps x window_s = {values[2]:g} x {values[1]:g} brings the trace to "
                    f"{requests:,.0f} requests; llmfn replays at most {MAX_TRACE_REQUESTS:,} requests per "
                    "trace: fix the rate or window, or split the trace"
                )
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
    return windows


def _servegen_trace(path: Path, windows: list[tuple[float, ...]], seed: int) -> Trace:
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


def read_trace(
    path: str | Path,
    seed: int = 0,
    progress: ProgressFn | None = None,
    memory_limit_bytes: int | None = None,
) -> Trace:
    """Read any supported trace file, choosing the reader from its header.

    Every problem with the file is one :class:`TraceFormatError` (a ``ValueError``) naming the file
    and, for a row, its line and field; a missing file is a ``FileNotFoundError``. ``progress`` is
    called as ``progress(bytes_read, file_bytes)``; ``memory_limit_bytes`` bounds a per-request file
    (default: the memory available now).
    """
    path = Path(path)
    _check_file(path)
    with path.open("rb") as fh:
        first = fh.readline(4096)
    is_servegen = first.lstrip(b"\xef\xbb\xbf").startswith(b"t_s,window_s,rate_rps")
    if is_servegen:
        return read_servegen(path, seed, progress)
    return read_request_file(path, progress, memory_limit_bytes)


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
